//! Password hashing: argon2id for everything new; Phase-1 bcrypt hashes still verify and are
//! replaced on the next successful login. Hashing is slow on purpose, so it runs on the
//! blocking pool, a few at a time, never on the async workers.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// What a stored `User.password` value turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An argon2id hash that matches.
    Valid,
    /// A bcrypt hash that matches: the caller should store a fresh argon2id hash.
    ValidNeedsRehash,
    Invalid,
}

/// Hashing could not run: the blocking pool shut down or the hashing task panicked.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

/// Argon2 takes ~19 MiB per hash; bound how many run at once.
static HASHING_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

/// A hash of a random password, verified against when the account does not exist or holds no
/// real hash, so such a login costs what a wrong password costs.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let random: [u8; 16] = rand::random();
    hash_blocking(&hex::encode(random))
});

pub async fn hash(password: String) -> Result<String, HashingError> {
    run_blocking(move || hash_blocking(&password)).await
}

/// Verifies `password` against the stored value. A missing user (`None`) or a stored value
/// that is not a hash at all still pays for one argon2 verification, and is always invalid.
pub async fn verify(password: String, stored: Option<String>) -> Result<Verdict, HashingError> {
    run_blocking(move || verify_blocking(&password, stored.as_deref())).await
}

/// Computes the dummy hash now rather than on the first login for an unknown e-mail.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a valid salt")
        .to_string()
}

fn verify_blocking(password: &str, stored: Option<&str>) -> Verdict {
    match stored {
        Some(hash) if hash.starts_with("$argon2id$") => match PasswordHash::new(hash) {
            Ok(parsed) if Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() => Verdict::Valid,
            _ => Verdict::Invalid,
        },
        Some(hash) if is_bcrypt(hash) => match bcrypt::verify(password, hash) {
            Ok(true) => Verdict::ValidNeedsRehash,
            _ => Verdict::Invalid,
        },
        _ => {
            let parsed = PasswordHash::new(&DUMMY_HASH).expect("the dummy hash is well-formed");
            let _ = Argon2::default().verify_password(password.as_bytes(), &parsed);
            Verdict::Invalid
        }
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| hash.starts_with(prefix))
}

async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
    let _slot = HASHING_SLOTS.clone().acquire_owned().await.map_err(|error| HashingError(error.to_string()))?;
    tokio::task::spawn_blocking(work).await.map_err(|error| HashingError(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_round_trip() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(verify("correct horse".into(), Some(hash.clone())).await.unwrap(), Verdict::Valid);
        assert_eq!(verify("wrong horse".into(), Some(hash)).await.unwrap(), Verdict::Invalid);
    }

    #[tokio::test]
    async fn phase1_bcrypt_hashes_verify_and_ask_for_a_rehash() {
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let hash = bcrypt::hash("phase1-owner-pass", 4).unwrap().replacen("$2b$", prefix, 1);
            assert_eq!(
                verify("phase1-owner-pass".into(), Some(hash.clone())).await.unwrap(),
                Verdict::ValidNeedsRehash,
                "{prefix}"
            );
            assert_eq!(verify("nope".into(), Some(hash)).await.unwrap(), Verdict::Invalid);
        }
    }

    #[tokio::test]
    async fn a_stored_value_that_is_no_hash_never_verifies() {
        for stored in ["password_hash", "", "$argon2id$garbage", "$2b$garbage"] {
            assert_eq!(verify(stored.into(), Some(stored.into())).await.unwrap(), Verdict::Invalid, "{stored}");
        }
        assert_eq!(verify("anything".into(), None).await.unwrap(), Verdict::Invalid);
    }
}
