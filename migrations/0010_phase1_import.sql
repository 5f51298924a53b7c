-- The Phase-1 import (`vibing2 import`, docs/import.md).

-- An account whose stored password was no hash (plaintext, a placeholder, empty) keeps no
-- credential: it refuses password login and needs a reset. Phase-2 databases get the same
-- mark for such values.
ALTER TABLE "User" ADD COLUMN "passwordResetRequired" BOOLEAN NOT NULL DEFAULT false;
UPDATE "User" SET "passwordResetRequired" = true
WHERE NOT ("password" ~ '^\$2[aby]\$.{56}$' OR "password" LIKE '$argon2id$%');

-- The import's ledger: which source it copies, and when it finished. One row at most.
CREATE TABLE "_vibing2_import" (
    "id" BOOLEAN PRIMARY KEY DEFAULT true CHECK ("id"),
    "fingerprint" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    "completedAt" TIMESTAMP(3)
);

-- Per stage (a table, or the files made from currentCode): the last source rowid committed,
-- the rows it came to, and the sum of the imported rows' digests (the content checksum).
-- Each batch updates its row in the transaction that writes the batch.
CREATE TABLE "_vibing2_import_progress" (
    "stage" TEXT PRIMARY KEY,
    "lastRowid" BIGINT NOT NULL DEFAULT 0,
    "imported" BIGINT NOT NULL DEFAULT 0,
    "quarantined" BIGINT NOT NULL DEFAULT 0,
    "dropped" BIGINT NOT NULL DEFAULT 0,
    "digestSum" NUMERIC NOT NULL DEFAULT 0,
    "done" BOOLEAN NOT NULL DEFAULT false
);

-- Rows kept out of the target, with the reason: written to the reject file at the end.
CREATE TABLE "_vibing2_import_reject" (
    "id" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "stage" TEXT NOT NULL,
    "rowId" TEXT NOT NULL,
    "row" JSONB NOT NULL,
    "reason" TEXT NOT NULL
);

-- The unique keys, indexes and foreign keys of the platform's tables (not the primary keys), dropped for the load and
-- rebuilt from these definitions when it is done (as pg_restore does): one set-based build
-- or check each, instead of one per row. A row leaves when its object is back.
CREATE TABLE "_vibing2_import_deferred" (
    "name" TEXT PRIMARY KEY,
    "tableName" TEXT NOT NULL,
    "kind" TEXT NOT NULL CHECK ("kind" IN ('key', 'index', 'foreign key')),
    "definition" TEXT NOT NULL
);

-- How many values each rule changed, per stage and column.
CREATE TABLE "_vibing2_import_change" (
    "stage" TEXT NOT NULL,
    "columnName" TEXT NOT NULL,
    "change" TEXT NOT NULL,
    "count" BIGINT NOT NULL,
    PRIMARY KEY ("stage", "columnName", "change")
);
