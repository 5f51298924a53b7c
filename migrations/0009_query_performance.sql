-- The slow-query history (the seed's `QueryPerformance`): each call of the service slower
-- than `monitor.slow_query_ms`, by query name. Written off the request path in batches, and
-- kept to the newest `monitor.slow_history_rows` rows, so it never grows without bound.
CREATE TABLE "QueryPerformance" (
    "id" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "query" TEXT NOT NULL,
    "durationMs" DOUBLE PRECISION NOT NULL,
    "rows" BIGINT NOT NULL,
    "failed" BOOLEAN NOT NULL,
    "recordedAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
