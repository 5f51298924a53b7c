-- `vibing2 import` writes its batches over two connections, so they can commit out of order.
-- Each batch now records the source rowids it covers; a resume skips every covered range,
-- and a stage's progress is the sum of its batches. An unfinished import's progress carries
-- over as one batch per stage.
CREATE TABLE "_vibing2_import_batch" (
    "id" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "stage" TEXT NOT NULL,
    -- The batch covers the source rowids in ("afterRowid", "lastRowid"].
    "afterRowid" BIGINT NOT NULL,
    "lastRowid" BIGINT NOT NULL,
    "imported" BIGINT NOT NULL,
    "quarantined" BIGINT NOT NULL,
    "dropped" BIGINT NOT NULL,
    "digestSum" NUMERIC NOT NULL
);

INSERT INTO "_vibing2_import_batch"
    ("stage", "afterRowid", "lastRowid", "imported", "quarantined", "dropped", "digestSum")
SELECT "stage", 0, "lastRowid", "imported", "quarantined", "dropped", "digestSum"
FROM "_vibing2_import_progress";

DROP TABLE "_vibing2_import_progress";
