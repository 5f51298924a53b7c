//! Sessions, keyed by the SHA-256 of their token.

use chrono::NaiveDateTime;
use sqlx::PgExecutor;

pub async fn create(
    db: impl PgExecutor<'_>,
    token_hash: &str,
    user_id: &str,
    expires: NaiveDateTime,
) -> sqlx::Result<()> {
    sqlx::query(r#"INSERT INTO "Session" ("tokenHash", "userId", "expires") VALUES ($1, $2, $3)"#)
        .bind(token_hash)
        .bind(user_id)
        .bind(expires)
        .execute(db)
        .await?;
    Ok(())
}

/// The user and expiry of a live (unexpired) session.
pub async fn live(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<Option<(String, NaiveDateTime)>> {
    sqlx::query_as(
        r#"SELECT "userId", "expires" FROM "Session"
           WHERE "tokenHash" = $1 AND "expires" > now() AT TIME ZONE 'UTC'"#,
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<bool> {
    let result = sqlx::query(r#"DELETE FROM "Session" WHERE "tokenHash" = $1"#).bind(token_hash).execute(db).await?;
    Ok(result.rows_affected() > 0)
}
