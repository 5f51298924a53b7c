//! Failed login attempts per key (`email:...`, `addr:...`), within a sliding window.

use std::time::Duration;

use sqlx::PgExecutor;

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

/// Records one failure under every key, and forgets failures older than the window.
pub async fn record(db: impl PgExecutor<'_>, keys: &[String], window: Duration) -> sqlx::Result<()> {
    sqlx::query!(
        r#"WITH expired AS (
               DELETE FROM "LoginFailure"
               WHERE "key" = ANY($1) AND "at" <= (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
           )
           INSERT INTO "LoginFailure" ("key") SELECT unnest($1::text[])"#,
        keys,
        window.as_secs_f64()
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn clear(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query!(r#"DELETE FROM "LoginFailure" WHERE "key" = $1"#, key).execute(db).await?;
    Ok(())
}
