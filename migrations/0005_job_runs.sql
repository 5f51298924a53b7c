-- The background jobs' bookkeeping: when each last ran, how long it took and how it ended.
-- Several instances share it: a job is due when no instance succeeded within its interval.
CREATE TABLE "JobRun" (
    "job" TEXT PRIMARY KEY,
    "lastStartedAt" TIMESTAMP(3) NOT NULL,
    "lastFinishedAt" TIMESTAMP(3) NOT NULL,
    "lastSucceededAt" TIMESTAMP(3),
    "durationMs" DOUBLE PRECISION NOT NULL,
    "outcome" TEXT NOT NULL CHECK ("outcome" IN ('ok', 'error')),
    "detail" TEXT,
    "runs" BIGINT NOT NULL DEFAULT 0
);
