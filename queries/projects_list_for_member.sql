-- One keyset page of the member's project list: $1 user, $2/$3 the last (updatedAt, id) seen,
-- $4 limit. A range scan of UserProject_userId_updatedAt_projectId_idx by "userId" alone (a
-- router query on the user's shard under Citus); the page's projects and their counts are read
-- next, by their ids (queries/projects_summaries.sql).
SELECT "projectId" AS "project_id", "access", "updatedAt" AS "updated_at"
FROM "UserProject"
WHERE "userId" = $1 AND ("updatedAt", "projectId") < ($2, $3)
ORDER BY "updatedAt" DESC, "projectId" DESC
LIMIT $4
