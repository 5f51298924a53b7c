-- Runs only when 0014_token_usage_partitions.check.sql finds nothing: every id is unique, so
-- the rows go back into one table keyed by "id", in one transaction. Partitions that
-- retention dropped stay gone: their rows were deleted, not moved.
CREATE TABLE "_vibing2_token_usage_unpartitioned" (LIKE "TokenUsage" INCLUDING ALL EXCLUDING INDEXES);
INSERT INTO "_vibing2_token_usage_unpartitioned" SELECT * FROM "TokenUsage";
DROP MATERIALIZED VIEW user_token_summary;
DROP TABLE "TokenUsage";
DROP FUNCTION "_vibing2_token_usage_partition"(regclass, date);
ALTER TABLE "_vibing2_token_usage_unpartitioned" RENAME TO "TokenUsage";
ALTER TABLE "TokenUsage"
    ADD CONSTRAINT "TokenUsage_pkey" PRIMARY KEY ("id"),
    ADD CONSTRAINT "TokenUsage_userId_fkey" FOREIGN KEY ("userId")
        REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    ADD CONSTRAINT "TokenUsage_projectId_fkey" FOREIGN KEY ("projectId")
        REFERENCES "Project"("id") ON DELETE SET NULL ON UPDATE CASCADE;
CREATE INDEX "TokenUsage_userId_timestamp_id_idx" ON "TokenUsage" ("userId", "timestamp", "id");
CREATE INDEX "TokenUsage_projectId_idx" ON "TokenUsage" ("projectId");

-- The view as migration 2 defined it. Its "ViewRefresh" row stays as it was: the view now
-- covers at least the days that row claims, and the summary reads live rows after them.
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
CREATE UNIQUE INDEX "user_token_summary_key" ON user_token_summary ("userId", "day", "endpoint", "model");
