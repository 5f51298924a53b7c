-- The member's project list: $1 user, $2/$3 the last (updatedAt, id) seen, $4 limit. Each side
-- is an ordered index scan cut at the limit; the two are merged, and the counts are taken
-- only for the rows of the page.
WITH candidates AS (
    (SELECT p.*, 'owner' AS "access" FROM "Project" p
     WHERE p."userId" = $1 AND (p."updatedAt", p."id") < ($2, $3)
     ORDER BY p."updatedAt" DESC, p."id" DESC LIMIT $4)
    UNION ALL
    (SELECT p.*, lower(c."role") FROM "ProjectCollaborator" c
     JOIN "Project" p ON p."id" = c."projectId"
     WHERE c."userId" = $1 AND p."userId" <> $1 AND (p."updatedAt", p."id") < ($2, $3)
     ORDER BY p."updatedAt" DESC, p."id" DESC LIMIT $4)
), page AS (
    SELECT * FROM candidates ORDER BY "updatedAt" DESC, "id" DESC LIMIT $4
)
SELECT page."id" AS "id!", page."name" AS "name!", page."description", page."projectType" AS "project_type!",
       page."visibility" AS "visibility!: Visibility", page."previewUrl" AS "preview_url",
       page."likeCount" AS "like_count!", page."forkCount" AS "fork_count!", page."viewCount" AS "view_count!",
       page."access" AS "access!: Access",
       (SELECT count(*) FROM "Message" m WHERE m."projectId" = page."id") AS "message_count!",
       (SELECT count(*) FROM "ProjectFile" f WHERE f."projectId" = page."id") AS "file_count!",
       page."createdAt" AS "created_at!: UtcTime", page."updatedAt" AS "updated_at!: UtcTime"
FROM page ORDER BY page."updatedAt" DESC, page."id" DESC
