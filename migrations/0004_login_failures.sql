-- Failed login attempts, for the login rate limit (5 per 15 minutes per e-mail and per client
-- address). Kept in PostgreSQL so every instance of the service sees the same counts.
CREATE TABLE "LoginFailure" (
    "key" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX "LoginFailure_key_at_idx" ON "LoginFailure" ("key", "at");
