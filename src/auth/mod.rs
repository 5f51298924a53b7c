//! Accounts and sessions: password hashing, session tokens, the login rate limit, and the
//! access policy that decides who may do what with a project.

pub mod access;
pub mod password;
pub mod rate_limit;
pub mod token;
