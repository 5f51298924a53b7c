-- The search indexes buffer new entries in GIN's pending list again (the default).
ALTER INDEX "Project_public_name_trgm_idx" RESET (fastupdate);
ALTER INDEX "Project_public_description_trgm_idx" RESET (fastupdate);
