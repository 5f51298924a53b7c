-- Runs only when 0010_phase1_import.check.sql finds nothing: no import was recorded, and every
-- user's "passwordResetRequired" is what the up step recomputes from the stored password.
-- The per-stage progress is empty here: the down step of migration 11 recreated it so.
DROP TABLE "_vibing2_import_progress";
DROP TABLE "_vibing2_import_change";
DROP TABLE "_vibing2_import_deferred";
DROP TABLE "_vibing2_import_reject";
DROP TABLE "_vibing2_import";
ALTER TABLE "User" DROP COLUMN "passwordResetRequired";
