-- A project with its owner's public face: $1 project.
SELECT p."id", p."name", p."description", p."projectType" AS "project_type",
       p."visibility" AS "visibility: Visibility", p."activeAgents" AS "active_agents",
       p."previewUrl" AS "preview_url", p."likeCount" AS "like_count", p."forkCount" AS "fork_count",
       p."viewCount" AS "view_count", p."isFeatured" AS "is_featured",
       p."userId" AS "owner_id", u."name" AS "owner_name", u."image" AS "owner_image",
       p."createdAt" AS "created_at: UtcTime", p."updatedAt" AS "updated_at: UtcTime"
FROM "Project" p LEFT JOIN "UserFace" u ON u."id" = p."userId" WHERE p."id" = $1
