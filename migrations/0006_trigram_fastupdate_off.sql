-- The search indexes write through instead of buffering new entries in GIN's pending list.
-- A full pending list makes the planner price the trigram indexes out (measured: a search
-- fell back to reading every public project, 17-36 ms instead of 0.4 ms, until VACUUM ran).
-- Projects are created far less often than they are searched, so the slower insert is cheap.
ALTER INDEX "Project_public_name_trgm_idx" SET (fastupdate = off);
ALTER INDEX "Project_public_description_trgm_idx" SET (fastupdate = off);
SELECT gin_clean_pending_list('"Project_public_name_trgm_idx"'::regclass);
SELECT gin_clean_pending_list('"Project_public_description_trgm_idx"'::regclass);
