//! Failed login attempts per key (`email:...`, `addr:...`), within a sliding window.

use std::time::Duration;

use sqlx::PgExecutor;

pub struct KeyCount {
    pub failures: i64,
    /// When the oldest failure in the window leaves it.
    pub seconds_until_oldest_expires: i64,
}

pub async fn recent(db: impl PgExecutor<'_>, keys: &[String], window: Duration) -> sqlx::Result<Vec<KeyCount>> {
    let rows: Vec<(i64, f64)> = sqlx::query_as(
        r#"SELECT count(*), EXTRACT(EPOCH FROM min("at") + make_interval(secs => $2)
                                     - (now() AT TIME ZONE 'UTC'))::float8
           FROM "LoginFailure"
           WHERE "key" = ANY($1) AND "at" > (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
           GROUP BY "key""#,
    )
    .bind(keys)
    .bind(window.as_secs_f64())
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(failures, seconds)| KeyCount { failures, seconds_until_oldest_expires: seconds.ceil() as i64 })
        .collect())
}

/// Records one failure under every key, and forgets failures older than the window.
pub async fn record(db: impl PgExecutor<'_>, keys: &[String], window: Duration) -> sqlx::Result<()> {
    sqlx::query(
        r#"WITH expired AS (
               DELETE FROM "LoginFailure"
               WHERE "key" = ANY($1) AND "at" <= (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
           )
           INSERT INTO "LoginFailure" ("key") SELECT unnest($1::text[])"#,
    )
    .bind(keys)
    .bind(window.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

pub async fn clear(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query(r#"DELETE FROM "LoginFailure" WHERE "key" = $1"#).bind(key).execute(db).await?;
    Ok(())
}
