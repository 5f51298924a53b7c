//! Credentials: password hashing and session tokens. Pure computation, no I/O: who may do
//! what lives in `domain::access`, and the login rate limit in `service::rate_limit`.

pub mod password;
pub mod token;
