-- The invitee's page of PENDING invites: $1 user, $2/$3 the last (createdAt, id) seen, $4 limit.
-- A range scan of CollaborationInvite_toUserId_status_createdAt_idx; the sender and project are
-- joined for the page's rows only.
WITH i AS (
    SELECT * FROM "CollaborationInvite"
    WHERE "toUserId" = $1 AND "status" = 'PENDING' AND ("createdAt", "id") < ($2, $3)
      AND "expiresAt" > now() AT TIME ZONE 'UTC'
    ORDER BY "createdAt" DESC, "id" DESC LIMIT $4
)
SELECT i."id" AS "id!", i."projectId" AS "project_id!", p."name" AS "project_name",
       u."id" AS "from_user_id", u."name" AS "from_user_name", u."image" AS "from_user_image",
       i."role" AS "role!: Role", i."status" AS "status!: InviteStatus", i."createdAt" AS "created_at!: UtcTime"
FROM i JOIN "Project" p ON p."id" = i."projectId" JOIN "User" u ON u."id" = i."fromUserId"
ORDER BY i."createdAt" DESC, i."id" DESC
