//! Failed login attempts per key (`pair:...`, `addr:...`, `email:...`, `signup:...`), within a
//! sliding window.

use std::time::Duration;

use crate::telemetry::queries::timed;
use sqlx::{PgConnection, PgExecutor};

pub struct KeyCount {
    pub key: String,
    pub failures: i64,
    /// When the oldest failure in the window leaves it.
    pub seconds_until_oldest_expires: i64,
}

pub async fn recent(db: impl PgExecutor<'_>, keys: &[String], window: Duration) -> sqlx::Result<Vec<KeyCount>> {
    timed("login_failures.recent", async move {
        let rows = sqlx::query!(
            r#"SELECT "key", count(*) AS "failures!", EXTRACT(EPOCH FROM min("at") + make_interval(secs => $2)
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
            .map(|row| KeyCount {
                key: row.key,
                failures: row.failures,
                seconds_until_oldest_expires: row.seconds.ceil() as i64,
            })
            .collect())
    })
    .await
}

/// Takes each key's advisory lock until the transaction ends, in one round trip: attempts on a
/// key queue here, so each sees the failures of those before it. The locks are taken in the
/// order of `keys` (the function scan yields the array in order).
pub async fn lock(tx: &mut PgConnection, keys: &[String]) -> sqlx::Result<()> {
    timed("login_failures.lock", async move {
        sqlx::query!(
            r#"SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) AS "locked!"
               FROM unnest($1::text[]) AS k"#,
            keys
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(())
    })
    .await
}

/// Records one attempt under every key, as a failure until [`forget_attempt`] takes it back,
/// and forgets failures older than the window.
pub async fn record(db: impl PgExecutor<'_>, keys: &[String], window: Duration, attempt: &str) -> sqlx::Result<()> {
    timed("login_failures.record", async move {
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
    })
    .await
}

/// A successful attempt: removes its own rows under `keys`, and every failure of `forgiven`,
/// in one statement served by the key index.
pub async fn forget(db: impl PgExecutor<'_>, keys: &[String], attempt: &str, forgiven: &str) -> sqlx::Result<()> {
    timed("login_failures.forget", async move {
        sqlx::query!(
            r#"DELETE FROM "LoginFailure" WHERE "key" = ANY($1) AND ("attempt" = $2 OR "key" = $3)"#,
            keys,
            attempt,
            forgiven
        )
        .execute(db)
        .await?;
        Ok(())
    })
    .await
}
