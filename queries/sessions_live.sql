-- The user and expiry of a live (unexpired) session: $1 the SHA-256 of its token.
SELECT "userId" AS "user_id", "expires" AS "expires: UtcTime" FROM "Session"
WHERE "tokenHash" = $1 AND "expires" > now() AT TIME ZONE 'UTC'
