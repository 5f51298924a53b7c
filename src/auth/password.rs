//! Password hashing: argon2id for everything new; Phase-1 bcrypt hashes still verify and are
//! replaced on the next successful login. Hashing is slow on purpose, so it runs on the
//! blocking pool, a few at a time, never on the async workers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// As many hashes as the queue holds are already waiting: the caller should come back.
    #[error("too many password checks are waiting")]
    Busy,
    /// The blocking pool shut down or the hashing task panicked.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Where hashes wait for a slot. Argon2 takes ~19 MiB and a core's worth of time per hash, so
/// a few run at once; the rest wait, and past `max_waiting` a new one is refused at once
/// rather than queued without end.
pub struct HashQueue {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    verified: Arc<VerificationCounts>,
}

/// How many verifications this queue ran, by what they checked against: what a login cost,
/// whatever the machine's speed.
#[derive(Debug, Default)]
struct VerificationCounts {
    argon2: AtomicU64,
    bcrypt: AtomicU64,
    dummy: AtomicU64,
}

/// A snapshot of [`HashQueue::verifications`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verifications {
    /// Against a stored argon2id hash.
    pub argon2: u64,
    /// Against a stored Phase-1 bcrypt hash.
    pub bcrypt: u64,
    /// Against the dummy hash: no account, or a stored value that is no hash.
    pub dummy: u64,
}

impl HashQueue {
    pub fn new(workers: usize, max_waiting: usize) -> Self {
        HashQueue {
            slots: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            verified: Arc::default(),
        }
    }

    pub fn verifications(&self) -> Verifications {
        let counts = &self.verified;
        Verifications {
            argon2: counts.argon2.load(Ordering::Relaxed),
            bcrypt: counts.bcrypt.load(Ordering::Relaxed),
            dummy: counts.dummy.load(Ordering::Relaxed),
        }
    }

    /// One slot per core.
    pub fn per_core(max_waiting: usize) -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()), max_waiting)
    }

    /// Takes a slot until the guard drops, as a running hash would: for tests that need a busy
    /// queue.
    pub async fn hold(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.slots.clone().acquire_owned().await.expect("the queue's semaphore is never closed")
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(HashingError::Busy);
                }
                let slot = self.slots.clone().acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                slot.map_err(|error| HashingError::Failed(error.to_string()))?
            }
        };
        let outcome = tokio::task::spawn_blocking(work).await;
        drop(slot);
        outcome.map_err(|error| HashingError::Failed(error.to_string()))
    }
}

/// A hash of a random password, verified against when the account does not exist or holds no
/// real hash, so such a login costs what a wrong password costs.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let random: [u8; 16] = rand::random();
    hash_blocking(&hex::encode(random))
});

pub async fn hash(queue: &HashQueue, password: String) -> Result<String, HashingError> {
    queue.run(move || hash_blocking(&password)).await
}

/// Verifies `password` against the stored value. A missing user (`None`) or a stored value
/// that is not a hash at all still pays for one argon2 verification, and is always invalid.
pub async fn verify(queue: &HashQueue, password: String, stored: Option<String>) -> Result<Verdict, HashingError> {
    let counts = queue.verified.clone();
    queue.run(move || verify_blocking(&password, stored.as_deref(), &counts)).await
}

/// Computes the dummy hash now rather than on the first login for an unknown e-mail.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// An argon2id hash of `password` with the service's parameters, on this thread (the service
/// itself hashes through [`hash`]'s queue; `bench http --data seeded` sets seeded users' passwords).
pub fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a valid salt")
        .to_string()
}

fn verify_blocking(password: &str, stored: Option<&str>, counts: &VerificationCounts) -> Verdict {
    let parsed_argon2 = stored.filter(|hash| hash.starts_with("$argon2id$")).map(PasswordHash::new);
    match (stored, parsed_argon2) {
        (_, Some(Ok(parsed))) => {
            counts.argon2.fetch_add(1, Ordering::Relaxed);
            match Argon2::default().verify_password(password.as_bytes(), &parsed) {
                Ok(()) => Verdict::Valid,
                Err(_) => Verdict::Invalid,
            }
        }
        (Some(hash), None) if is_bcrypt(hash) => {
            counts.bcrypt.fetch_add(1, Ordering::Relaxed);
            match bcrypt::verify(password, hash) {
                Ok(true) => Verdict::ValidNeedsRehash,
                _ => Verdict::Invalid,
            }
        }
        _ => {
            counts.dummy.fetch_add(1, Ordering::Relaxed);
            let parsed = PasswordHash::new(&DUMMY_HASH).expect("the dummy hash is well-formed");
            let _ = Argon2::default().verify_password(password.as_bytes(), &parsed);
            Verdict::Invalid
        }
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| hash.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> HashQueue {
        HashQueue::new(2, 16)
    }

    #[tokio::test]
    async fn argon2id_round_trip() {
        let queue = queue();
        let hash = hash(&queue, "correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(verify(&queue, "correct horse".into(), Some(hash.clone())).await.unwrap(), Verdict::Valid);
        assert_eq!(verify(&queue, "wrong horse".into(), Some(hash)).await.unwrap(), Verdict::Invalid);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_instead_of_waiting() {
        let queue = Arc::new(HashQueue::new(1, 2));
        // The one slot is taken, and two hashes wait for it: the queue is full.
        let taken = queue.slots.clone().try_acquire_owned().unwrap();
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move { hash(&queue, "x".repeat(20)).await })
            })
            .collect();
        while queue.waiting.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hash(&queue, "one more".into()).await, Err(HashingError::Busy)));
        drop(taken);
        for task in busy {
            assert!(task.await.unwrap().is_ok());
        }
        assert!(hash(&queue, "after the rush".into()).await.is_ok(), "the queue drains");
    }

    #[tokio::test]
    async fn phase1_bcrypt_hashes_verify_and_ask_for_a_rehash() {
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let hash = bcrypt::hash("phase1-owner-pass", 4).unwrap().replacen("$2b$", prefix, 1);
            assert_eq!(
                verify(&queue(), "phase1-owner-pass".into(), Some(hash.clone())).await.unwrap(),
                Verdict::ValidNeedsRehash,
                "{prefix}"
            );
            assert_eq!(verify(&queue(), "nope".into(), Some(hash)).await.unwrap(), Verdict::Invalid);
        }
    }

    #[tokio::test]
    async fn a_stored_value_that_is_no_hash_never_verifies() {
        for stored in ["password_hash", "", "$argon2id$garbage", "$2b$garbage"] {
            assert_eq!(
                verify(&queue(), stored.into(), Some(stored.into())).await.unwrap(),
                Verdict::Invalid,
                "{stored}"
            );
        }
        assert_eq!(verify(&queue(), "anything".into(), None).await.unwrap(), Verdict::Invalid);
    }
}
