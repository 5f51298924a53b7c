//! Session tokens: 256 random bits, URL-safe. Only their SHA-256 is ever stored or cached.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A fresh session token and the hash to store for it.
pub fn new_session_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
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
    fn tokens_carry_256_bits_and_are_stored_only_as_their_hash() {
        let (token, hash) = new_session_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(hash, hash_token(&token));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_session_token().0, token);
    }

    #[test]
    fn ids_are_url_safe() {
        let id = new_id();
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
