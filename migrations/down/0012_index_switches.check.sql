-- A disabled index would be neither rebuilt nor remembered once this table is gone.
SELECT format('index %s is disabled (vibing2 index enable %s first)', "name", "name")
FROM (SELECT DISTINCT ON ("name") "name", "state" FROM "_vibing2_index_switches"
      ORDER BY "name", "id" DESC) latest
WHERE "state" = 'disabled'
