-- Runs only when 0012_index_switches.check.sql finds nothing: no index is disabled, so the
-- history of past switches is all that goes.
DROP TABLE "_vibing2_index_switches";
