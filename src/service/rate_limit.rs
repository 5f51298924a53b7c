//! The auth rate limits. Failed logins are limited per (e-mail, client address) and per client
//! address: 5 per 15 minutes each, as the seed's auth limiter, then 429. Per e-mail alone they
//! are only counted: nobody can lock an owner out by failing on their e-mail, but past
//! `ACCOUNT_SLOWDOWN_AFTER` failures from anywhere each attempt on it waits a little first.
//! Sign-ups are limited per client address (`auth.signups_per_window`), invites per sender,
//! and forks per user and hour by plan. Attempts are kept in PostgreSQL (`LoginFailure`), so
//! every instance counts the same ones.

use std::time::Duration;

use crate::db::login_failures;
use crate::db::Pool;
use crate::error::{Error, Result};

pub const MAX_FAILURES: i64 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The window of the fork limit (`limits.forks_per_hour_*`).
pub const HOUR: Duration = Duration::from_secs(60 * 60);
/// The longest window any limit counts in: attempts older than it count for none, and the
/// cleanup job may delete them.
pub const LONGEST_WINDOW: Duration = HOUR;

/// The key of a client address's sign-ups: each one counts, successful or not.
pub fn signup_key(client: &str) -> String {
    format!("signup:{client}")
}

/// Failures on one e-mail, from any address, before its attempts are slowed down.
pub const ACCOUNT_SLOWDOWN_AFTER: i64 = 20;
const ACCOUNT_SLOWDOWN: Duration = Duration::from_secs(1);

/// A key attempts count against, and the failures in the window past which it refuses them.
pub struct Key {
    pub name: String,
    /// None: counted, never refused.
    pub limit: Option<i64>,
}

/// Where the e-mail's own key is among [`login_keys`].
pub const ACCOUNT_KEY: usize = 2;

/// The keys of one login attempt: (e-mail, client) and client, limited; the e-mail alone,
/// counted. In this order, always, so two attempts never wait on each other's locks in a cycle.
pub fn login_keys(email: &str, client: &str) -> [Key; 3] {
    [
        Key { name: format!("pair:{email}|{client}"), limit: Some(MAX_FAILURES) },
        Key { name: format!("addr:{client}"), limit: Some(MAX_FAILURES) },
        Key { name: format!("email:{email}"), limit: None },
    ]
}

/// How long an attempt on an account with `failures` recent failures waits before its
/// password is checked.
pub fn account_slowdown(failures: i64) -> Option<Duration> {
    (failures >= ACCOUNT_SLOWDOWN_AFTER).then_some(ACCOUNT_SLOWDOWN)
}

/// One attempt's place under the limits, counted until a successful login takes it back,
/// with the failures each key had before it.
pub struct Reservation {
    attempt: String,
    keys: Vec<String>,
    pub failures_before: Vec<i64>,
}

/// Reserves one attempt under every key before any password is hashed, or refuses it with
/// 429 and `Retry-After` if a limited key is at its limit. The check and the reservation
/// happen under each key's advisory lock, so of N parallel attempts at most the limit get
/// through. Keys are locked in the order given.
pub async fn reserve(pool: &Pool, keys: &[Key]) -> Result<Reservation> {
    reserve_within(pool, keys, WINDOW).await
}

/// [`reserve`], counting the attempts of the last `window`.
pub async fn reserve_within(pool: &Pool, keys: &[Key], window: Duration) -> Result<Reservation> {
    let names: Vec<String> = keys.iter().map(|key| key.name.clone()).collect();
    let mut tx = pool.begin().await?;
    login_failures::lock(&mut tx, &names).await?;
    let counts = login_failures::recent(&mut *tx, &names, window).await?;
    let count_of = |name: &str| counts.iter().find(|count| count.key == name);
    let blocked = keys.iter().filter_map(|key| {
        let count = count_of(&key.name)?;
        (count.failures >= key.limit?).then_some(count.seconds_until_oldest_expires)
    });
    if let Some(retry_after_secs) = blocked.max() {
        return Err(Error::RateLimited { retry_after_secs: retry_after_secs.max(1) as u64 });
    }
    let attempt = crate::auth::token::new_id();
    login_failures::record(&mut *tx, &names, window, &attempt).await?;
    tx.commit().await?;
    let failures_before = names.iter().map(|name| count_of(name).map_or(0, |count| count.failures)).collect();
    Ok(Reservation { attempt, keys: names, failures_before })
}

/// A successful login takes its own reservation back and forgives the failures of its first
/// key, its own (e-mail, client) pair, and no others: the address and the account keep their
/// counts, so a success elsewhere never lifts an attacker's limit.
pub async fn succeeded(pool: &Pool, reservation: Reservation) -> Result<()> {
    login_failures::forget(pool, &reservation.keys, &reservation.attempt, &reservation.keys[0]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_slowed_down_past_its_threshold_and_never_locked() {
        assert_eq!(account_slowdown(ACCOUNT_SLOWDOWN_AFTER - 1), None);
        assert_eq!(account_slowdown(ACCOUNT_SLOWDOWN_AFTER), Some(ACCOUNT_SLOWDOWN));
        assert_eq!(account_slowdown(10_000), Some(ACCOUNT_SLOWDOWN), "a wait, never a refusal");
        let [pair, address, account] = login_keys("a@example.com", "203.0.113.7");
        assert_eq!((pair.limit, address.limit, account.limit), (Some(MAX_FAILURES), Some(MAX_FAILURES), None));
    }
}
