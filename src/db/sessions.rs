//! Sessions, keyed by the SHA-256 of their token, found with their user's id (`auth::token`).

use sqlx::PgExecutor;

use crate::domain::UtcTime;
use crate::telemetry::queries::timed;

/// Opens a session for `user_id` while `password_hash` is still the user's password (a
/// password changed since it was verified refuses the login); whether it was opened. The
/// user's row is share-locked, so a password change in flight is waited for and seen.
pub async fn create(
    db: impl PgExecutor<'_>,
    token_hash: &str,
    user_id: &str,
    expires: UtcTime,
    password_hash: &str,
) -> sqlx::Result<bool> {
    timed("sessions.create", async move {
        let opened = sqlx::query!(
            r#"INSERT INTO "Session" ("tokenHash", "userId", "expires")
               SELECT $1, $2, $3 FROM "User" WHERE "id" = $2 AND "password" = $4 FOR SHARE"#,
            token_hash,
            user_id,
            expires as UtcTime,
            password_hash
        )
        .execute(db)
        .await?;
        Ok(opened.rows_affected() == 1)
    })
    .await
}

/// The expiry of `user_id`'s live (unexpired) session with this token hash: a token of the
/// form `<userId>.<secret>` (`auth::token`), found by the user's key. A token whose user part
/// is not the session's user finds nothing.
pub const LIVE_SQL: &str = include_str!("../../queries/sessions_live.sql");

pub async fn live(db: impl PgExecutor<'_>, token_hash: &str, user_id: &str) -> sqlx::Result<Option<UtcTime>> {
    timed("sessions.live", async move {
        sqlx::query_file_scalar!("queries/sessions_live.sql", token_hash, user_id).fetch_optional(db).await
    })
    .await
}

/// The user and expiry of a live session whose token carries no user id (`Claim::Unkeyed`:
/// imported Phase-1 and migrated Phase-2 sessions, and this service's own from before tokens
/// carried it), found by the token hash alone. Transitional: no new session is of this kind,
/// so it serves nobody once the last of them expires.
pub async fn live_unkeyed(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<Option<(String, UtcTime)>> {
    timed("sessions.live_unkeyed", async move {
        let row = sqlx::query!(
            r#"SELECT "userId" AS "user_id", "expires" AS "expires: UtcTime" FROM "Session"
               WHERE "tokenHash" = $1 AND "expires" > now() AT TIME ZONE 'UTC'"#,
            token_hash
        )
        .fetch_optional(db)
        .await?;
        Ok(row.map(|row| (row.user_id, row.expires)))
    })
    .await
}

/// Ends `user_id`'s session with this token hash (the user is the authenticated session's,
/// whatever the token's kind).
pub async fn delete(db: impl PgExecutor<'_>, token_hash: &str, user_id: &str) -> sqlx::Result<bool> {
    timed("sessions.delete", async move {
        let result =
            sqlx::query!(r#"DELETE FROM "Session" WHERE "tokenHash" = $1 AND "userId" = $2"#, token_hash, user_id)
                .execute(db)
                .await?;
        Ok(result.rows_affected() > 0)
    })
    .await
}

/// Ends every session of `user_id` but `keep`; the hashes of those ended.
pub async fn delete_others(db: impl PgExecutor<'_>, user_id: &str, keep: &str) -> sqlx::Result<Vec<String>> {
    timed("sessions.delete_others", async move {
        sqlx::query_scalar!(
            r#"DELETE FROM "Session" WHERE "userId" = $1 AND "tokenHash" <> $2 RETURNING "tokenHash""#,
            user_id,
            keep
        )
        .fetch_all(db)
        .await
    })
    .await
}
