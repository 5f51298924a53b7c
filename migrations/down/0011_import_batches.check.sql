-- Batches that commit out of order cannot be folded back into one row per stage.
SELECT format('the import recorded %s batch(es)', count(*))
FROM "_vibing2_import_batch"
HAVING count(*) > 0
