//! Failed login attempts per key (`email:...`, `addr:...`), within a sliding window.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};

pub struct KeyCount {
    pub failures: i64,
    /// When the oldest failure in the window leaves it.
    pub seconds_until_oldest_expires: i64,
}

pub async fn recent(db: impl PgExecutor<'_>, keys: &[String], window: Duration) -> sqlx::Result<Vec<KeyCount>> {
    let rows = sqlx::query!(
        r#"SELECT count(*) AS "failures!", EXTRACT(EPOCH FROM min("at") + make_interval(secs => $2)
                                     - (now() AT TIME ZONE 'UTC'))::float8 AS "seconds!"
           FROM "LoginFailure"
           WHERE "key" = ANY($1) AND "at" > (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
           GROUP BY "key""#,
        keys,
        window.as_secs_f64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| KeyCount { failures: row.failures, seconds_until_oldest_expires: row.seconds.ceil() as i64 })
        .collect())
}

/// Takes the key's advisory lock until the transaction ends: attempts on one key queue here,
/// so each sees the failures of those before it.
pub async fn lock(tx: &mut PgConnection, key: &str) -> sqlx::Result<()> {
    sqlx::query!(r#"SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text AS "locked""#, key)
        .fetch_one(&mut *tx)
        .await?;
    Ok(())
}

/// Records one attempt under every key, as a failure until [`forget_attempt`] takes it back,
/// and forgets failures older than the window.
pub async fn record(db: impl PgExecutor<'_>, keys: &[String], window: Duration, attempt: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"WITH expired AS (
               DELETE FROM "LoginFailure"
               WHERE "key" = ANY($1) AND "at" <= (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
           )
           INSERT INTO "LoginFailure" ("key", "attempt") SELECT unnest($1::text[]), $3"#,
        keys,
        window.as_secs_f64(),
        attempt
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Removes one attempt's rows: the attempt succeeded.
pub async fn forget_attempt(db: impl PgExecutor<'_>, attempt: &str) -> sqlx::Result<()> {
    sqlx::query!(r#"DELETE FROM "LoginFailure" WHERE "attempt" = $1"#, attempt).execute(db).await?;
    Ok(())
}

pub async fn clear(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query!(r#"DELETE FROM "LoginFailure" WHERE "key" = $1"#, key).execute(db).await?;
    Ok(())
}
