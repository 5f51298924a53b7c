//! The auth rate limits, as the seed's auth limiter: at most 5 failed logins per 15 minutes per
//! e-mail and per client address, and `auth.signups_per_window` sign-ups per client address.
//! Attempts are kept in PostgreSQL (`LoginFailure`), so every instance counts the same ones.

use std::time::Duration;

use sqlx::PgPool;

use crate::db::login_failures;
use crate::error::{Error, Result};

pub const MAX_FAILURES: i64 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The key of a client address's sign-ups: each one counts, successful or not.
pub fn signup_key(client: &str) -> String {
    format!("signup:{client}")
}

/// The keys one login attempt counts against.
pub fn keys(email: &str, client: &str) -> [String; 2] {
    [format!("email:{email}"), format!("addr:{client}")]
}

/// One attempt's place under the limit, counted until a successful login takes it back.
pub struct Reservation(String);

/// Reserves one attempt under every key before any password is hashed, or refuses it with
/// 429 and `Retry-After` if a key is at `limit`. The check and the reservation happen
/// under each key's advisory lock, so of N parallel attempts at most the limit get through.
/// Keys are locked in the order given (for a login, the e-mail's before the address's), so two
/// attempts never wait on each other in a cycle.
pub async fn reserve(pool: &PgPool, keys: &[String], limit: i64) -> Result<Reservation> {
    let mut tx = pool.begin().await?;
    login_failures::lock(&mut tx, keys).await?;
    let counts = login_failures::recent(&mut *tx, keys, WINDOW).await?;
    let blocked = counts.iter().filter(|count| count.failures >= limit);
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
    login_failures::forget(pool, keys, &reservation.0, &keys[0]).await?;
    Ok(())
}
