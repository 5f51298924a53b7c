-- What the down step would lose: an import's ledger, and reset marks the up step would not
-- recompute (a mark set or cleared since).
SELECT format('%s user(s) have a passwordResetRequired that the stored password does not imply',
              count(*))
FROM "User"
WHERE "passwordResetRequired" <> NOT ("password" ~ '^\$2[aby]\$.{56}$' OR "password" LIKE '$argon2id$%')
HAVING count(*) > 0
UNION ALL
SELECT format('the import tables hold %s row(s) (a Phase-1 import ran here)', sum(n))
FROM (SELECT count(*) AS n FROM "_vibing2_import"
      UNION ALL SELECT count(*) FROM "_vibing2_import_reject"
      UNION ALL SELECT count(*) FROM "_vibing2_import_deferred"
      UNION ALL SELECT count(*) FROM "_vibing2_import_change") counts
HAVING sum(n) > 0
