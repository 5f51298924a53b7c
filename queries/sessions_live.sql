-- The expiry of a live (unexpired) session: $1 the SHA-256 of its token, $2 the user id the
-- token carries (a router query by user on Citus).
SELECT "expires" AS "expires: UtcTime" FROM "Session"
WHERE "tokenHash" = $1 AND "userId" = $2 AND "expires" > now() AT TIME ZONE 'UTC'
