//! Accounts and sessions: sign-up, login (rate-limited, bcrypt hashes upgraded), logout, the
//! session behind a token, and the user's own profile.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::auth::password::{self, Verdict};
use crate::auth::token::{self, Claim};
use crate::cache::{Kind, Scope};
use crate::db::{sessions, users, users::UserRow};
use crate::domain::UtcTime;
use crate::error::{Error, Result, ResultExt};
use crate::service::invalidation::{self, Subjects, Write};
use crate::service::rate_limit;
use crate::state::AppState;

/// A session as the cache keeps it: never the token, only whose it is and until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    pub expires: UtcTime,
}

/// A new session: the token goes to the client once and is stored only as its hash.
pub struct OpenedSession {
    pub token: String,
    pub expires_at: UtcTime,
    pub user: UserRow,
}

/// Creates an account. A taken e-mail is 409, decided by one lookup before anything is
/// written or hashed; past that, each client address may hash `auth.signups_per_window`
/// sign-ups per window (429 beyond).
pub async fn signup(state: &AppState, name: &str, email: &str, client: &str, password: String) -> Result<UserRow> {
    let taken = || Error::Conflict("an account with this e-mail exists".into());
    if users::email_taken(&state.pool, email).await? {
        return Err(taken());
    }
    let limit = Some(state.settings.auth.signups_per_window);
    rate_limit::reserve(&state.pool, &[rate_limit::Key { name: rate_limit::signup_key(client), limit }]).await?;
    let hash = password::hash(&state.hashes, password).await?;
    // Two signups racing for one e-mail: the unique index decides.
    users::create(&state.pool, &token::new_id(), name, email, &hash).await.on_unique_violation("User_email_key", taken)
}

/// Verifies the password and opens a session. Unknown e-mails cost the same as wrong
/// passwords; the rate limits are in `service::rate_limit`.
pub async fn login(state: &AppState, email: &str, client: &str, password: String) -> Result<OpenedSession> {
    let keys = rate_limit::login_keys(email, client);
    let reservation = rate_limit::reserve(&state.pool, &keys).await?;
    if let Some(wait) = rate_limit::account_slowdown(reservation.failures_before[rate_limit::ACCOUNT_KEY]) {
        // Holds no connection: the reservation is committed.
        tokio::time::sleep(wait).await;
    }

    let credentials = users::credentials_by_email(&state.pool, email).await?;
    let stored = credentials.as_ref().map(|c| c.password.clone());
    let verdict = password::verify(&state.hashes, password.clone(), stored).await?;
    // The hash the password was verified against: the session is opened only while it is
    // still the user's, so a password changed meanwhile wins over this login.
    let (user_id, verified_hash) = match (verdict, credentials) {
        // The reservation stays: it is the failure.
        (Verdict::Invalid, _) | (_, None) => return Err(Error::Unauthorized),
        (Verdict::ValidNeedsRehash, Some(credentials)) => {
            let rehashed = password::hash(&state.hashes, password).await?;
            let replaced =
                users::replace_password_hash(&state.pool, &credentials.id, &credentials.password, &rehashed).await?;
            if !replaced {
                return Err(Error::Unauthorized);
            }
            tracing::info!(user = %credentials.id, "Phase-1 bcrypt hash replaced by argon2id");
            (credentials.id, rehashed)
        }
        (Verdict::Valid, Some(credentials)) => (credentials.id, credentials.password),
    };
    rate_limit::succeeded(&state.pool, reservation).await?;

    let (session_token, token_hash) = token::new_session_token(&user_id);
    let ttl = Duration::days(i64::from(state.settings.auth.session_ttl_days));
    let expires_at = UtcTime((chrono::Utc::now() + ttl).naive_utc());
    if !sessions::create(&state.pool, &token_hash, &user_id, expires_at, &verified_hash).await? {
        return Err(Error::Unauthorized);
    }
    let user = users::by_id(&state.pool, &user_id).await?.ok_or(Error::Unauthorized)?;
    invalidation::after(&state.cache, Write::Login, Subjects::default()).await;
    Ok(OpenedSession { token: session_token, expires_at, user })
}

/// The live session behind a presented token (its claim and hash), through the cache; 401
/// otherwise. A token that carries a user id is looked up by it (a router query on Citus); one
/// without, by its hash alone (`sessions::live_unkeyed`, transitional).
pub async fn session(state: &AppState, claim: &Claim, token_hash: &str) -> Result<Session> {
    let scope = Scope::Session(token_hash.to_owned());
    let session = state
        .cache
        .get_or_load(Kind::Session, &scope, "", || async {
            let found = match claim {
                Claim::User(user_id) => {
                    sessions::live(&state.pool, token_hash, user_id).await?.map(|expires| (user_id.clone(), expires))
                }
                Claim::Unkeyed => sessions::live_unkeyed(&state.pool, token_hash).await?,
            };
            let (user_id, expires) = found.ok_or(Error::Unauthorized)?;
            Ok::<_, Error>(Session { user_id, expires })
        })
        .await?;
    // The cache is keyed by the hash of the whole token, user part included, so a cached
    // session is the claimed user's. It is only as good as its expiry.
    if session.expires <= UtcTime::now() {
        return Err(Error::Unauthorized);
    }
    Ok(session)
}

/// Ends the caller's session (`user_id` is the session's, so the delete is by the user's key
/// whatever the token's kind).
pub async fn logout(state: &AppState, user_id: &str, token_hash: &str) -> Result<()> {
    sessions::delete(&state.pool, token_hash, user_id).await?;
    let ended = [token_hash.to_owned()];
    invalidation::after(&state.cache, Write::Logout, Subjects { sessions: &ended, ..Subjects::default() }).await;
    Ok(())
}

/// Replaces the caller's password once the current one is verified, and ends every other
/// session of theirs: a thief holding one of them is out on every instance as a logout is.
/// Wrong current passwords are limited as logins are, per user (429 past the limit), so a
/// stolen session cannot be used to guess the password.
pub async fn change_password(
    state: &AppState,
    user_id: &str,
    token_hash: &str,
    current: String,
    new: String,
) -> Result<()> {
    let key = rate_limit::Key { name: format!("password:{user_id}"), limit: Some(rate_limit::MAX_FAILURES) };
    let reservation = rate_limit::reserve(&state.pool, &[key]).await?;
    let stored = users::password_hash(&state.pool, user_id).await?.ok_or(Error::Unauthorized)?;
    if password::verify(&state.hashes, current, Some(stored)).await? == Verdict::Invalid {
        return Err(Error::Forbidden("the current password is wrong".into()));
    }
    rate_limit::succeeded(&state.pool, reservation).await?;
    let hash = password::hash(&state.hashes, new).await?;
    let mut tx = state.pool.begin().await?;
    users::set_password_hash(&mut *tx, user_id, &hash).await?;
    let ended = sessions::delete_others(&mut *tx, user_id, token_hash).await?;
    tx.commit().await?;
    tracing::info!(user = %user_id, sessions_ended = ended.len(), "password changed");
    invalidation::after(&state.cache, Write::ChangePassword, Subjects { sessions: &ended, ..Subjects::default() })
        .await;
    Ok(())
}

/// The user's own profile, through the cache.
pub async fn profile(state: &AppState, user_id: &str) -> Result<UserRow> {
    let scope = Scope::User(user_id.to_owned());
    let load = || async { users::by_id(&state.pool, user_id).await?.ok_or(Error::Unauthorized) };
    state.cache.get_or_load(Kind::User, &scope, "", load).await
}
