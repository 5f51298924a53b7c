-- TokenUsage range-partitioned by month on "timestamp" (docs/operations.md, "Partitioning").
--
-- The partitioned table is built beside the live one and filled in batches by the backfill
-- "token usage into monthly partitions" (src/db/backfill.rs) while the service keeps writing:
-- a trigger mirrors every new row into it, and both tables carry the foreign keys, so deletes
-- and SET NULLs reach both. The second part checks that the two hold the same rows and swaps
-- them. Its columns come from the live table (LIKE), so their types, defaults and collations
-- carry over as they are.

-- One month's partition of `parent`, named TokenUsage_yYYYYmMM: created unless it exists.
-- Returns the name of the partition it created, or NULL. The partition job, `bench seed` and
-- `vibing2 import` create partitions through it, so the naming rule lives here only.
CREATE FUNCTION "_vibing2_token_usage_partition"(parent regclass, month date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    partition_name text := 'TokenUsage_' || to_char(first_day, '"y"YYYY"m"MM');
BEGIN
    IF to_regclass(format('%I', partition_name)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', partition_name, parent,
                   first_day::timestamp, (first_day + interval '1 month')::timestamp);
    RETURN partition_name;
END $$;

-- A partitioned table's unique keys must hold the partition key: the primary key becomes
-- (id, timestamp). Ids stay generated collision-resistant, so they remain unique in practice.
CREATE TABLE "_vibing2_token_usage_partitioned" (LIKE "TokenUsage" INCLUDING ALL EXCLUDING INDEXES)
    PARTITION BY RANGE ("timestamp");
ALTER TABLE "_vibing2_token_usage_partitioned"
    ADD CONSTRAINT "_vibing2_token_usage_partitioned_pkey" PRIMARY KEY ("id", "timestamp"),
    ADD CONSTRAINT "TokenUsage_userId_fkey" FOREIGN KEY ("userId")
        REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    ADD CONSTRAINT "TokenUsage_projectId_fkey" FOREIGN KEY ("projectId")
        REFERENCES "Project"("id") ON DELETE SET NULL ON UPDATE CASCADE;
CREATE INDEX "_vibing2_token_usage_userId_timestamp_id_idx"
    ON "_vibing2_token_usage_partitioned" ("userId", "timestamp", "id");
CREATE INDEX "_vibing2_token_usage_projectId_idx"
    ON "_vibing2_token_usage_partitioned" ("projectId");

-- A partition for every month that holds rows, and for this month and the next three (the
-- partition job keeps its own horizon from then on).
SELECT "_vibing2_token_usage_partition"('"_vibing2_token_usage_partitioned"', "month")
FROM (SELECT DISTINCT date_trunc('month', "timestamp")::date AS "month" FROM "TokenUsage"
      UNION
      SELECT generate_series(date_trunc('month', now() AT TIME ZONE 'UTC'),
                             date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
                             interval '1 month')::date) months
ORDER BY "month";

-- Rows the service writes during the move reach the new table at once; the batches skip them.
CREATE FUNCTION "_vibing2_token_usage_mirror"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "_vibing2_token_usage_partitioned" SELECT (NEW).* ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_token_usage_mirror" AFTER INSERT ON "TokenUsage"
    FOR EACH ROW EXECUTE FUNCTION "_vibing2_token_usage_mirror"();

-- vibing2:backfill
-- The swap: no write in between, and nothing is dropped unless both tables agree.
LOCK TABLE "TokenUsage" IN ACCESS EXCLUSIVE MODE;
DO $$
DECLARE
    unpartitioned text;
    partitioned text;
BEGIN
    SELECT format('%s rows, %s tokens, %s context, %s saved, %s cost', count(*), sum("tokensUsed"),
                  sum("contextUsed"::numeric), sum("savedTokens"), sum("cost"))
    INTO unpartitioned FROM "TokenUsage";
    SELECT format('%s rows, %s tokens, %s context, %s saved, %s cost', count(*), sum("tokensUsed"),
                  sum("contextUsed"::numeric), sum("savedTokens"), sum("cost"))
    INTO partitioned FROM "_vibing2_token_usage_partitioned";
    IF unpartitioned IS DISTINCT FROM partitioned THEN
        RAISE EXCEPTION 'TokenUsage holds %, its partitioned copy %: nothing was swapped; run migrate again',
            unpartitioned, partitioned;
    END IF;
END $$;

DROP MATERIALIZED VIEW user_token_summary;
DROP TABLE "TokenUsage";
DROP FUNCTION "_vibing2_token_usage_mirror"();
ALTER TABLE "_vibing2_token_usage_partitioned" RENAME TO "TokenUsage";
ALTER TABLE "TokenUsage" RENAME CONSTRAINT "_vibing2_token_usage_partitioned_pkey" TO "TokenUsage_pkey";
ALTER INDEX "_vibing2_token_usage_userId_timestamp_id_idx" RENAME TO "TokenUsage_userId_timestamp_id_idx";
ALTER INDEX "_vibing2_token_usage_projectId_idx" RENAME TO "TokenUsage_projectId_idx";

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
CREATE UNIQUE INDEX "user_token_summary_key"
    ON user_token_summary ("userId", "day", "endpoint", "model");
