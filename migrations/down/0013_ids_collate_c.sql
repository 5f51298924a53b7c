-- Gives the ids, the columns that reference them and the session token hashes the database's
-- default collation again. The materialized views read these columns, so they are dropped and
-- built again from their own definitions, as the migration did.
CREATE TEMP TABLE saved_views ON COMMIT DROP AS
SELECT v.matviewname AS name, v.definition,
       ARRAY(SELECT i.indexdef FROM pg_indexes i
             WHERE i.schemaname = v.schemaname AND i.tablename = v.matviewname) AS indexes
FROM pg_matviews v WHERE v.schemaname = current_schema();

DO $$
DECLARE view record;
BEGIN
    FOR view IN SELECT name FROM saved_views LOOP
        EXECUTE format('DROP MATERIALIZED VIEW %I', view.name);
    END LOOP;
END $$;

ALTER TABLE "User" ALTER COLUMN "id" TYPE TEXT COLLATE "default";
ALTER TABLE "Account" ALTER COLUMN "userId" TYPE TEXT COLLATE "default";
ALTER TABLE "Session" ALTER COLUMN "userId" TYPE TEXT COLLATE "default",
                      ALTER COLUMN "tokenHash" TYPE TEXT COLLATE "default";
ALTER TABLE "Project" ALTER COLUMN "id" TYPE TEXT COLLATE "default",
                      ALTER COLUMN "userId" TYPE TEXT COLLATE "default";
ALTER TABLE "ProjectFile" ALTER COLUMN "id" TYPE TEXT COLLATE "default",
                          ALTER COLUMN "projectId" TYPE TEXT COLLATE "default";
ALTER TABLE "Message" ALTER COLUMN "id" TYPE TEXT COLLATE "default",
                      ALTER COLUMN "projectId" TYPE TEXT COLLATE "default";
ALTER TABLE "TokenUsage" ALTER COLUMN "id" TYPE TEXT COLLATE "default",
                         ALTER COLUMN "userId" TYPE TEXT COLLATE "default",
                         ALTER COLUMN "projectId" TYPE TEXT COLLATE "default";
ALTER TABLE "ProjectCollaborator" ALTER COLUMN "id" TYPE TEXT COLLATE "default",
                                  ALTER COLUMN "projectId" TYPE TEXT COLLATE "default",
                                  ALTER COLUMN "userId" TYPE TEXT COLLATE "default";
ALTER TABLE "CollaborationInvite" ALTER COLUMN "id" TYPE TEXT COLLATE "default",
                                  ALTER COLUMN "projectId" TYPE TEXT COLLATE "default",
                                  ALTER COLUMN "fromUserId" TYPE TEXT COLLATE "default",
                                  ALTER COLUMN "toUserId" TYPE TEXT COLLATE "default";
ALTER TABLE "ProjectLike" ALTER COLUMN "projectId" TYPE TEXT COLLATE "default",
                          ALTER COLUMN "userId" TYPE TEXT COLLATE "default";
ALTER TABLE "Competition" ALTER COLUMN "id" TYPE TEXT COLLATE "default",
                          ALTER COLUMN "projectId" TYPE TEXT COLLATE "default";
ALTER TABLE "MigrationIssue" ALTER COLUMN "rowId" TYPE TEXT COLLATE "default";
ALTER TABLE "_vibing2_import_reject" ALTER COLUMN "rowId" TYPE TEXT COLLATE "default";

DO $$
DECLARE view record; index_definition text;
BEGIN
    FOR view IN SELECT * FROM saved_views LOOP
        EXECUTE format('CREATE MATERIALIZED VIEW %I AS %s', view.name, view.definition);
        FOREACH index_definition IN ARRAY view.indexes LOOP
            EXECUTE index_definition;
        END LOOP;
    END LOOP;
END $$;
