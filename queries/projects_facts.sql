-- What access to a project depends on: $1 project, $2 the caller (NULL when anonymous).
SELECT p."userId" AS "owner_id", p."visibility" = 'PUBLIC' AS "is_public!",
       c."role" AS "caller_role?: Role"
FROM "Project" p
LEFT JOIN "ProjectCollaborator" c ON c."projectId" = p."id" AND c."userId" = $2
WHERE p."id" = $1
