-- The projects of one page of a member's list: $1 their ids. Pinned to those ids (under Citus,
-- pruned to their shards), each project's counts from its own co-located rows.
SELECT p."id", p."name", p."description", p."projectType" AS "project_type", p."visibility",
       p."previewUrl" AS "preview_url", p."likeCount" AS "like_count", p."forkCount" AS "fork_count",
       p."viewCount" AS "view_count",
       (SELECT count(*) FROM "Message" m WHERE m."projectId" = p."id") AS "message_count",
       (SELECT count(*) FROM "ProjectFile" f WHERE f."projectId" = p."id") AS "file_count",
       p."createdAt" AS "created_at"
FROM "Project" p
WHERE p."id" = ANY($1::text[])
