//! The login rate limit, as the seed's auth limiter: at most 5 failed attempts per 15 minutes
//! per e-mail and per client address. Failures are kept in PostgreSQL, so every instance of
//! the service counts the same attempts.

use std::time::Duration;

use sqlx::PgPool;

use crate::db::login_failures;
use crate::error::{Error, Result};

pub const MAX_FAILURES: i64 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The keys one login attempt counts against.
pub fn keys(email: &str, client: &str) -> [String; 2] {
    [format!("email:{email}"), format!("addr:{client}")]
}

/// Refuses the attempt with 429 and `Retry-After` if either key is over the limit.
pub async fn check(pool: &PgPool, keys: &[String; 2]) -> Result<()> {
    let counts = login_failures::recent(pool, keys, WINDOW).await?;
    let blocked = counts.iter().filter(|count| count.failures >= MAX_FAILURES);
    if let Some(retry_after_secs) = blocked.map(|count| count.seconds_until_oldest_expires).max() {
        return Err(Error::RateLimited { retry_after_secs: retry_after_secs.max(1) as u64 });
    }
    Ok(())
}

pub async fn record_failure(pool: &PgPool, keys: &[String; 2]) -> Result<()> {
    login_failures::record(pool, keys, WINDOW).await?;
    Ok(())
}

/// A successful login forgives the e-mail's failures; the address keeps its count.
pub async fn record_success(pool: &PgPool, keys: &[String; 2]) -> Result<()> {
    login_failures::clear(pool, &keys[0]).await?;
    Ok(())
}
