-- A page of a project's file listing in path order: $1 project, $2 the last path seen, $3 limit.
SELECT "path", "language", "size", "checksum", "updatedAt" AS "updated_at: UtcTime" FROM "ProjectFile"
WHERE "projectId" = $1 AND "path" > $2 ORDER BY "path" LIMIT $3
