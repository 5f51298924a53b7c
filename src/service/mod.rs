//! The service layer: one module per aggregate, between the handlers and the database.
//!
//! A service function owns its transaction, its cache-aside reads, and the declaration of
//! what its write makes stale ([`invalidation::Write`]). It returns rows (`db`) or domain
//! types; the handlers turn them into wire types. Nothing here knows HTTP.

pub mod access;
pub mod accounts;
pub mod collab;
pub mod competitions;
pub mod discovery;
pub mod files;
pub mod health;
pub mod invalidation;
pub mod messages;
pub mod monitor;
pub mod projects;
pub mod rate_limit;
pub mod reads;
pub mod usage;
pub mod views;
