//! Sessions, keyed by the SHA-256 of their token.

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

/// The user and expiry of a live session: `$1` the SHA-256 of its token.
pub const LIVE_SQL: &str = include_str!("../../queries/sessions_live.sql");

/// The user and expiry of a live (unexpired) session.
pub async fn live(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<Option<(String, UtcTime)>> {
    timed("sessions.live", async move {
        let row = sqlx::query_file!("queries/sessions_live.sql", token_hash).fetch_optional(db).await?;
        Ok(row.map(|row| (row.user_id, row.expires)))
    })
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<bool> {
    timed("sessions.delete", async move {
        let result = sqlx::query!(r#"DELETE FROM "Session" WHERE "tokenHash" = $1"#, token_hash).execute(db).await?;
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
