-- The reservation id of a login attempt; like the failures themselves, it lives 15 minutes.
ALTER TABLE "LoginFailure" DROP COLUMN "attempt";
