-- Each login attempt reserves its failure rows before the password is verified, under an
-- advisory lock per key, so parallel attempts cannot all pass the limit before one is
-- recorded. A login that succeeds removes its own reservation, found by this id.
ALTER TABLE "LoginFailure" ADD COLUMN "attempt" TEXT;
