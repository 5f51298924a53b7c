-- The login rate limit's failures live 15 minutes: dropping them only forgets the current window.
DROP TABLE "LoginFailure";
