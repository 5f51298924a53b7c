-- Takes a seeded Phase-2 database to the state the platform's own optimization left it: the
-- report's optimized Prisma schema pushed on top of init_postgresql (as in
-- tests/fixtures/phase2_seed_optimized.sql), values as the report's code kept them, and the
-- report's index set. Deterministic: every value derives from the row.
ALTER TABLE "User" ALTER COLUMN "contextUsed" SET DEFAULT 0;

ALTER TABLE "Project"
    ADD COLUMN "likeCount" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "forkCount" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "viewCount" INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN "isFeatured" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "previewUrl" TEXT;
-- The report's counters ran ahead of the legacy columns on some projects, behind on others.
UPDATE "Project" SET
    "likeCount" = "likes" + (hashtext("id") & 3),
    "forkCount" = GREATEST("forks" - (hashtext("id") & 1), 0),
    "viewCount" = (hashtext("id") & 1023),
    "isFeatured" = (hashtext("id") & 63) = 0,
    "previewUrl" = CASE WHEN "visibility" = 'PUBLIC' THEN 'https://preview.example.com/' || "id" END;

-- Sizes were kept for most files; some rows still have the Prisma default of 0 and no checksum.
ALTER TABLE "ProjectFile" ADD COLUMN "size" INTEGER NOT NULL DEFAULT 0, ADD COLUMN "checksum" TEXT;
UPDATE "ProjectFile" SET "size" = octet_length("content"),
                         "checksum" = encode(sha256(convert_to("content", 'UTF8')), 'hex')
WHERE (hashtext("id") & 15) <> 0;

-- The SERIAL numbers rows in the order they lie on disk, not in createdAt order.
ALTER TABLE "Message" ADD COLUMN "cursor" SERIAL NOT NULL, ADD COLUMN "tokens" INTEGER NOT NULL DEFAULT 0;
UPDATE "Message" SET "tokens" = octet_length("content") / 4 WHERE "role" = 'assistant';

ALTER TABLE "TokenUsage"
    ALTER COLUMN "contextUsed" SET DEFAULT 0,
    ADD COLUMN "projectId" TEXT,
    ADD COLUMN "model" TEXT,
    ADD COLUMN "cost" DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE "TokenUsage" SET "model" = CASE WHEN (hashtext("id") & 1) = 0 THEN 'claude-3-5-sonnet' ELSE 'gpt-4o-mini' END,
                        "cost" = "tokensUsed" * 0.000002;

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX idx_project_user_updated ON "Project" ("userId", "updatedAt" DESC);
CREATE INDEX idx_project_visibility_likes ON "Project" ("visibility", "likeCount" DESC);
CREATE INDEX idx_project_visibility_views ON "Project" ("visibility", "viewCount" DESC);
CREATE INDEX idx_project_visibility_created ON "Project" ("visibility", "createdAt" DESC);
CREATE INDEX idx_project_visibility_type_updated ON "Project" ("visibility", "projectType", "updatedAt" DESC);
CREATE INDEX idx_project_name_gin ON "Project" USING gin ("name" gin_trgm_ops);
CREATE INDEX idx_message_project_cursor ON "Message" ("projectId", "cursor");
CREATE INDEX idx_project_file_project_updated ON "ProjectFile" ("projectId", "updatedAt" DESC);
CREATE INDEX idx_token_usage_user_endpoint_timestamp ON "TokenUsage" ("userId", "endpoint", "timestamp" DESC);
CREATE INDEX idx_token_usage_timestamp ON "TokenUsage" ("timestamp");
ANALYZE;
