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

/// One login attempt's place under the limit, counted as a failure until it succeeds.
pub struct Reservation(String);

/// Reserves one attempt under both keys before the password is verified, or refuses it with
/// 429 and `Retry-After` if either key is at the limit. The check and the reservation happen
/// under each key's advisory lock, so of N parallel attempts at most the limit get through.
/// The e-mail key is always locked before the address key, so two attempts never wait on
/// each other in a cycle.
pub async fn reserve(pool: &PgPool, keys: &[String; 2]) -> Result<Reservation> {
    let mut tx = pool.begin().await?;
    for key in keys {
        login_failures::lock(&mut tx, key).await?;
    }
    let counts = login_failures::recent(&mut *tx, keys, WINDOW).await?;
    let blocked = counts.iter().filter(|count| count.failures >= MAX_FAILURES);
    if let Some(retry_after_secs) = blocked.map(|count| count.seconds_until_oldest_expires).max() {
        return Err(Error::RateLimited { retry_after_secs: retry_after_secs.max(1) as u64 });
    }
    let attempt = crate::auth::token::new_id();
    login_failures::record(&mut *tx, keys, WINDOW, &attempt).await?;
    tx.commit().await?;
    Ok(Reservation(attempt))
}

/// A successful login takes its own reservation back and forgives the e-mail's failures; the
/// address keeps its count.
pub async fn succeeded(pool: &PgPool, keys: &[String; 2], reservation: Reservation) -> Result<()> {
    login_failures::forget_attempt(pool, &reservation.0).await?;
    login_failures::clear(pool, &keys[0]).await?;
    Ok(())
}
