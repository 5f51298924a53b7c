-- Upgrade the Phase-2 schema to the optimized schema of DESIGN.md §4, in place and without
-- data loss. Runs in two transactions around the marker line below: the first changes the
-- schema and adds the computed columns empty, then `vibing2 migrate` fills them in batches
-- (src/db/backfill.rs: file sizes and checksums, message cursors), and the second makes them
-- NOT NULL and builds the materialized views. Indexes on tables that may already hold data are
-- built by the next, non-transactional migration with CREATE INDEX CONCURRENTLY.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Values the upgrade could not carry over as they were. Rows here are reported by
-- `vibing2 migrate`; nothing is dropped silently.
CREATE TABLE "MigrationIssue" (
    "id" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "tableName" TEXT NOT NULL,
    "rowId" TEXT NOT NULL,
    "columnName" TEXT NOT NULL,
    "originalValue" TEXT,
    "problem" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

-- Parse text as JSON; a JSON string that itself holds JSON (the Phase-1 double encoding) is
-- decoded once more. NULL means the text is not JSON at all.
CREATE FUNCTION pg_temp.decode_legacy_json(raw TEXT) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    parsed JSONB;
BEGIN
    parsed := raw::jsonb;
    IF jsonb_typeof(parsed) = 'string' THEN
        BEGIN
            parsed := (parsed #>> '{}')::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            RETURN parsed;
        END;
    END IF;
    RETURN parsed;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END;
$$;

------------------------------------------------------------------------------------------------
-- User: e-mails are stored lower-case, counters are sane.
------------------------------------------------------------------------------------------------
DO $$
DECLARE
    clash TEXT;
BEGIN
    SELECT string_agg(lower_email, ', ') INTO clash FROM (
        SELECT lower("email") AS lower_email FROM "User"
        GROUP BY lower("email") HAVING count(*) > 1
    ) clashes;
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION 'users whose e-mails differ only in case must be merged by hand first: %', clash;
    END IF;
END;
$$;
UPDATE "User" SET "email" = lower("email") WHERE "email" <> lower("email");

ALTER TABLE "User"
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "User_email_lower_check" CHECK ("email" = lower("email")),
    ADD CONSTRAINT "User_plan_check" CHECK ("plan" IN ('FREE', 'PRO', 'TEAM', 'ENTERPRISE')),
    ADD CONSTRAINT "User_tokenBalance_check" CHECK ("tokenBalance" >= 0),
    ADD CONSTRAINT "User_contextUsed_check" CHECK ("contextUsed" >= 0);

------------------------------------------------------------------------------------------------
-- Session: the row keeps a SHA-256 of the token, never the token itself.
------------------------------------------------------------------------------------------------
ALTER TABLE "Session" RENAME COLUMN "sessionToken" TO "tokenHash";
UPDATE "Session" SET "tokenHash" = encode(sha256(convert_to("tokenHash", 'UTF8')), 'hex');
ALTER INDEX "Session_sessionToken_key" RENAME TO "Session_tokenHash_key";
ALTER TABLE "Session"
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "Session_pkey" PRIMARY KEY USING INDEX "Session_tokenHash_key";

------------------------------------------------------------------------------------------------
-- Project: counters are the one source of truth; activeAgents is jsonb.
------------------------------------------------------------------------------------------------
ALTER TABLE "Project"
    ADD COLUMN "likeCount" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "forkCount" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "viewCount" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "isFeatured" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "previewUrl" TEXT;

UPDATE "Project" SET "likeCount" = GREATEST("likes", 0), "forkCount" = GREATEST("forks", 0)
WHERE "likes" <> 0 OR "forks" <> 0;
ALTER TABLE "Project" DROP COLUMN "likes", DROP COLUMN "forks";

INSERT INTO "MigrationIssue" ("tableName", "rowId", "columnName", "originalValue", "problem")
SELECT 'Project', "id", 'activeAgents', "activeAgents",
       'not a JSON array; replaced by []'
FROM "Project"
WHERE jsonb_typeof(pg_temp.decode_legacy_json("activeAgents")) IS DISTINCT FROM 'array';

ALTER TABLE "Project" ALTER COLUMN "activeAgents" DROP DEFAULT;
ALTER TABLE "Project" ALTER COLUMN "activeAgents" TYPE JSONB USING
    CASE WHEN jsonb_typeof(pg_temp.decode_legacy_json("activeAgents")) = 'array'
         THEN pg_temp.decode_legacy_json("activeAgents")
         ELSE '[]'::jsonb END;
ALTER TABLE "Project"
    ALTER COLUMN "activeAgents" SET DEFAULT '[]'::jsonb,
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "Project_activeAgents_check" CHECK (jsonb_typeof("activeAgents") = 'array'),
    ADD CONSTRAINT "Project_visibility_check" CHECK ("visibility" IN ('PRIVATE', 'PUBLIC')),
    ADD CONSTRAINT "Project_name_check" CHECK (char_length("name") BETWEEN 1 AND 200),
    ADD CONSTRAINT "Project_counters_check"
        CHECK ("likeCount" >= 0 AND "forkCount" >= 0 AND "viewCount" >= 0);
COMMENT ON COLUMN "Project"."currentCode" IS
    'Deprecated: migrate moves it into the file index.html of projects without files.';

------------------------------------------------------------------------------------------------
-- ProjectFile: size and SHA-256 checksum, computed by the server.
------------------------------------------------------------------------------------------------
-- Both are filled by the backfill, then made NOT NULL below the marker.
ALTER TABLE "ProjectFile"
    ADD COLUMN "size" INTEGER,
    ADD COLUMN "checksum" TEXT,
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "ProjectFile_path_check" CHECK (octet_length("path") BETWEEN 1 AND 255);

-- The deprecated currentCode becomes index.html where a project has no files yet.
INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "createdAt", "updatedAt")
SELECT 'mig_' || p."id", p."id", 'index.html', p."currentCode", 'html', p."updatedAt", p."updatedAt"
FROM "Project" p
WHERE p."currentCode" IS NOT NULL AND p."currentCode" <> ''
  AND NOT EXISTS (SELECT 1 FROM "ProjectFile" f WHERE f."projectId" = p."id");
UPDATE "Project" p SET "currentCode" = NULL
WHERE p."currentCode" IS NOT NULL
  AND EXISTS (SELECT 1 FROM "ProjectFile" f
              WHERE f."projectId" = p."id" AND f."id" = 'mig_' || p."id");

------------------------------------------------------------------------------------------------
-- Message: a monotonically increasing cursor for keyset pagination, and token counts.
------------------------------------------------------------------------------------------------
-- The cursor is numbered in (createdAt, id) order by the backfill; its sequence is set below
-- the marker.
CREATE SEQUENCE "Message_cursor_seq" AS BIGINT;
ALTER TABLE "Message" ADD COLUMN "cursor" BIGINT, ADD COLUMN "tokens" INTEGER NOT NULL DEFAULT 0;
ALTER SEQUENCE "Message_cursor_seq" OWNED BY "Message"."cursor";
ALTER TABLE "Message"
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "Message_role_check" CHECK ("role" IN ('user', 'assistant', 'system')) NOT VALID,
    ADD CONSTRAINT "Message_tokens_check" CHECK ("tokens" >= 0);

-- Phase-1 roles outside the three known ones are reported, then the check is enforced.
INSERT INTO "MigrationIssue" ("tableName", "rowId", "columnName", "originalValue", "problem")
SELECT 'Message', "id", 'role', "role", 'unknown role; stored lower-case or as user'
FROM "Message" WHERE "role" NOT IN ('user', 'assistant', 'system');
UPDATE "Message" SET "role" = CASE WHEN lower("role") IN ('user', 'assistant', 'system')
                                   THEN lower("role") ELSE 'user' END
WHERE "role" NOT IN ('user', 'assistant', 'system');
ALTER TABLE "Message" VALIDATE CONSTRAINT "Message_role_check";

------------------------------------------------------------------------------------------------
-- TokenUsage: project, model and cost; usage outlives a deleted project.
------------------------------------------------------------------------------------------------
ALTER TABLE "TokenUsage"
    ADD COLUMN "projectId" TEXT,
    ADD COLUMN "model" TEXT NOT NULL DEFAULT 'unknown',
    ADD COLUMN "cost" NUMERIC(14, 6) NOT NULL DEFAULT 0,
    ALTER COLUMN "timestamp" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "TokenUsage_projectId_fkey" FOREIGN KEY ("projectId")
        REFERENCES "Project"("id") ON DELETE SET NULL ON UPDATE CASCADE,
    ADD CONSTRAINT "TokenUsage_amounts_check"
        CHECK ("tokensUsed" >= 0 AND "contextUsed" >= 0 AND "savedTokens" >= 0 AND "cost" >= 0);

------------------------------------------------------------------------------------------------
-- Collaboration.
------------------------------------------------------------------------------------------------
ALTER TABLE "ProjectCollaborator"
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "ProjectCollaborator_role_check" CHECK ("role" IN ('VIEWER', 'EDITOR', 'ADMIN'));

ALTER TABLE "CollaborationInvite"
    ADD COLUMN "role" TEXT NOT NULL DEFAULT 'VIEWER',
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ADD CONSTRAINT "CollaborationInvite_role_check" CHECK ("role" IN ('VIEWER', 'EDITOR', 'ADMIN')),
    ADD CONSTRAINT "CollaborationInvite_status_check"
        CHECK ("status" IN ('PENDING', 'ACCEPTED', 'DECLINED')),
    ADD CONSTRAINT "CollaborationInvite_not_self_check" CHECK ("fromUserId" <> "toUserId");

------------------------------------------------------------------------------------------------
-- New tables: likes (a user likes a project once), competitions, and view refreshes.
------------------------------------------------------------------------------------------------
CREATE TABLE "ProjectLike" (
    "projectId" TEXT NOT NULL REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    "userId" TEXT NOT NULL REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT "ProjectLike_pkey" PRIMARY KEY ("projectId", "userId")
);

CREATE TABLE "Competition" (
    "id" TEXT NOT NULL,
    "projectId" TEXT NOT NULL REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    "title" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'ACTIVE',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT "Competition_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Competition_status_check" CHECK ("status" IN ('ACTIVE', 'CLOSED')),
    CONSTRAINT "Competition_title_check" CHECK (char_length("title") BETWEEN 1 AND 200)
);

CREATE TABLE "ViewRefresh" (
    "viewName" TEXT PRIMARY KEY,
    "refreshedAt" TIMESTAMP(3) NOT NULL,
    "durationMs" DOUBLE PRECISION NOT NULL
);

-- vibing2:backfill
------------------------------------------------------------------------------------------------
-- Materialized views, built from the complete data, and when each was last refreshed.
------------------------------------------------------------------------------------------------
-- Daily usage per user, endpoint and model, for complete UTC days before the refresh. Reads
-- add live rows from the refresh day on, so a summary is exact however stale the view is.
CREATE MATERIALIZED VIEW user_token_summary AS
SELECT "userId",
       ("timestamp")::date AS "day",
       "endpoint",
       "model",
       count(*) AS "requests",
       sum("tokensUsed")::BIGINT AS "tokensUsed",
       sum("contextUsed") AS "contextUsed",
       sum("savedTokens")::BIGINT AS "savedTokens",
       sum("cost") AS "cost"
FROM "TokenUsage"
WHERE "timestamp" < date_trunc('day', now() AT TIME ZONE 'UTC')
GROUP BY "userId", ("timestamp")::date, "endpoint", "model";

-- One row per project, joined from per-table pre-aggregates: no fan-out between one-to-many
-- tables, so counts never multiply.
CREATE MATERIALIZED VIEW project_stats AS
SELECT p."id" AS "projectId",
       COALESCE(m."messageCount", 0) AS "messageCount",
       COALESCE(m."messageTokens", 0) AS "messageTokens",
       m."lastMessageAt",
       COALESCE(f."fileCount", 0) AS "fileCount",
       COALESCE(f."totalFileSize", 0) AS "totalFileSize",
       f."lastFileUpdateAt",
       COALESCE(c."collaboratorCount", 0) AS "collaboratorCount",
       GREATEST(p."updatedAt", m."lastMessageAt", f."lastFileUpdateAt") AS "lastActivityAt"
FROM "Project" p
LEFT JOIN (SELECT "projectId", count(*) AS "messageCount", sum("tokens")::BIGINT AS "messageTokens",
                  max("createdAt") AS "lastMessageAt"
           FROM "Message" GROUP BY "projectId") m ON m."projectId" = p."id"
LEFT JOIN (SELECT "projectId", count(*) AS "fileCount", sum("size")::BIGINT AS "totalFileSize",
                  max("updatedAt") AS "lastFileUpdateAt"
           FROM "ProjectFile" GROUP BY "projectId") f ON f."projectId" = p."id"
LEFT JOIN (SELECT "projectId", count(*) AS "collaboratorCount"
           FROM "ProjectCollaborator" GROUP BY "projectId") c ON c."projectId" = p."id";

INSERT INTO "ViewRefresh" ("viewName", "refreshedAt", "durationMs")
VALUES ('user_token_summary', now() AT TIME ZONE 'UTC', 0),
       ('project_stats', now() AT TIME ZONE 'UTC', 0);

------------------------------------------------------------------------------------------------
-- The computed columns are complete. Last, so their tables are locked only for these checks.
------------------------------------------------------------------------------------------------
ALTER TABLE "ProjectFile"
    ALTER COLUMN "size" SET NOT NULL,
    ALTER COLUMN "checksum" SET NOT NULL,
    ADD CONSTRAINT "ProjectFile_size_check" CHECK ("size" >= 0),
    ADD CONSTRAINT "ProjectFile_checksum_check" CHECK ("checksum" ~ '^[0-9a-f]{64}$');

SELECT setval('"Message_cursor_seq"', COALESCE((SELECT max("cursor") FROM "Message"), 0) + 1, false);
ALTER TABLE "Message"
    ALTER COLUMN "cursor" SET DEFAULT nextval('"Message_cursor_seq"'),
    ALTER COLUMN "cursor" SET NOT NULL;
