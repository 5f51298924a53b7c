-- A user's recorded calls, newest first: $1 user, $2/$3 the last (timestamp, id) seen, $4 limit.
SELECT "id", "projectId" AS "project_id", "endpoint", "model", "tokensUsed" AS "tokens_used",
       "contextUsed" AS "context_used", "savedTokens" AS "saved_tokens", "cost"::float8 AS "cost!",
       "timestamp" AS "timestamp: UtcTime"
FROM "TokenUsage" WHERE "userId" = $1 AND ("timestamp", "id") < ($2, $3)
ORDER BY "timestamp" DESC, "id" DESC LIMIT $4
