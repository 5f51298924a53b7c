-- The jobs' bookkeeping: without it every job is due at once, which is harmless.
DROP TABLE "JobRun";
