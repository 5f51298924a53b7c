-- `vibing2 index disable NAME` and `enable NAME` (docs/operations.md, "Index switches"): one row
-- per change, the newest row per index being its state. `migrate` neither rebuilds a disabled
-- index nor counts it as missing.
CREATE TABLE "_vibing2_index_switches" (
    "id" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "name" TEXT NOT NULL,
    "state" TEXT NOT NULL CHECK ("state" IN ('enabled', 'disabled')),
    "changedAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    "by" TEXT NOT NULL
);
