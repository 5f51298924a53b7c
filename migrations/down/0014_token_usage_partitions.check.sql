-- The unpartitioned table's primary key is "id" alone: ids the partitioned key, (id,
-- timestamp), let in twice cannot go back.
SELECT format('%s usage id(s) occur more than once (rows of different months)', count(*))
FROM (SELECT "id" FROM "TokenUsage" GROUP BY "id" HAVING count(*) > 1) repeated
HAVING count(*) > 0
