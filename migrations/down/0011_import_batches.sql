-- Runs only when 0011_import_batches.check.sql finds nothing: the per-stage progress table of
-- migration 10 comes back empty, as migration 11 found it.
CREATE TABLE "_vibing2_import_progress" (
    "stage" TEXT PRIMARY KEY,
    "lastRowid" BIGINT NOT NULL DEFAULT 0,
    "imported" BIGINT NOT NULL DEFAULT 0,
    "quarantined" BIGINT NOT NULL DEFAULT 0,
    "dropped" BIGINT NOT NULL DEFAULT 0,
    "digestSum" NUMERIC NOT NULL DEFAULT 0,
    "done" BOOLEAN NOT NULL DEFAULT false
);
DROP TABLE "_vibing2_import_batch";
