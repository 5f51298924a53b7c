//! Session tokens: `<userId>.<secret>`, the secret 256 random bits, URL-safe. Only the
//! SHA-256 of the whole token is ever stored or cached. The user id makes the session's lookup
//! a query by the user's distribution key (docs/scaling.md); the hash covers it, so a token
//! whose user part was changed matches no session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// The longest session token accepted, in bytes. A token of this service is a user id (22
/// characters, or an imported cuid or uuid) and 44 more; a Phase-1 token is a uuid.
pub const MAX_SESSION_TOKEN_BYTES: usize = 512;

/// The characters of a session token's secret: 32 bytes, base64url without padding.
const SECRET_CHARS: usize = 43;

/// What a token's user part leaves as it is: the URL-safe alphabet, the only one the ids the
/// service makes, and imported cuids and uuids, use. Anything else (an odd imported id) is
/// percent-encoded, so the part never holds a `.` and is a valid header and cookie value.
const USER_PART: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Whose a presented session token says it is, once it is well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// `<userId>.<secret>`: the session is looked up by its hash and this user id.
    User(String),
    /// A token without a `.`: a session from before tokens carried the user id (a Phase-1
    /// session `vibing2 import` hashed, a Phase-2 one `migrate` hashed, or one this service
    /// issued before), found by its hash alone until it expires.
    Unkeyed,
}

/// A fresh session token for `user_id` and the hash to store for it.
pub fn new_session_token(user_id: &str) -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("{}.{}", utf8_percent_encode(user_id, USER_PART), URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// The claim of a presented token, or None when it is malformed: empty or longer than
/// [`MAX_SESSION_TOKEN_BYTES`], a character outside printable ASCII, an empty or badly
/// encoded user part (or one that decodes to a control character), or a secret that is not
/// 43 base64url characters.
pub fn parse_session_token(token: &str) -> Option<Claim> {
    if token.is_empty() || token.len() > MAX_SESSION_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let Some((user_part, secret)) = token.split_once('.') else {
        return Some(Claim::Unkeyed);
    };
    let secret_ok = secret.len() == SECRET_CHARS
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD.decode(secret).is_ok_and(|bytes| bytes.len() == 32);
    if user_part.is_empty() || !secret_ok {
        return None;
    }
    let user_id = percent_decode_str(user_part).decode_utf8().ok()?;
    // No id holds a control character, and PostgreSQL text cannot hold a NUL (`%00`).
    if user_id.chars().any(char::is_control) {
        return None;
    }
    // One spelling per id: the one `new_session_token` writes.
    (utf8_percent_encode(&user_id, USER_PART).to_string() == user_part).then(|| Claim::User(user_id.into_owned()))
}

/// The hex SHA-256 of a presented token: the session's primary key.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new row id: 128 random bits, URL-safe, 22 characters.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_user_id_and_256_bits_and_are_stored_only_as_their_hash() {
        let user = new_id();
        let (token, hash) = new_session_token(&user);
        let (user_part, secret) = token.split_once('.').unwrap();
        assert_eq!(user_part, user);
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        assert_eq!(hash, hash_token(&token), "the hash covers the whole token");
        assert_eq!(hash.len(), 64);
        assert_ne!(new_session_token(&user).0, token);
        assert_eq!(parse_session_token(&token), Some(Claim::User(user)));
    }

    #[test]
    fn imported_ids_round_trip_and_odd_ones_are_encoded() {
        for id in ["cmgkpc5w000042g48cmr3rs93", "8caaaae3-6c19-4e17-83a3-986955218d79", "a.b c/é%"] {
            let (token, _) = new_session_token(id);
            assert_eq!(token.matches('.').count(), 1, "{token}");
            assert!(token.len() <= MAX_SESSION_TOKEN_BYTES);
            assert_eq!(parse_session_token(&token), Some(Claim::User(id.to_owned())), "{token}");
        }
    }

    #[test]
    fn dotless_tokens_are_unkeyed_and_malformed_ones_are_refused() {
        assert_eq!(parse_session_token("8caaaae3-6c19-4e17-83a3-986955218d79"), Some(Claim::Unkeyed));
        assert_eq!(parse_session_token(&URL_SAFE_NO_PAD.encode([7u8; 32])), Some(Claim::Unkeyed));
        let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
        for bad in [
            String::new(),
            format!(".{secret}"),
            "user.".to_owned(),
            "user.short".to_owned(),
            format!("user.{secret}x"),
            format!("user.{}", secret.replace('B', "+")),
            format!("us er.{secret}"),
            format!("usér.{secret}"),
            format!("%41.{secret}"),
            format!("%zz.{secret}"),
            format!("%00.{secret}"),
            format!("a%0Ab.{secret}"),
            format!("a.b.{secret}"),
            format!("{}.{secret}", "u".repeat(MAX_SESSION_TOKEN_BYTES)),
            "x".repeat(MAX_SESSION_TOKEN_BYTES + 1),
        ] {
            assert_eq!(parse_session_token(&bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_url_safe() {
        let id = new_id();
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
