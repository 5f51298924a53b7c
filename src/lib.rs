//! vibing2: the PostgreSQL-backed data service of the vibing2 AI app-building platform.
//!
//! Calls flow `api` → `db`; handlers never write SQL and `db` knows nothing of HTTP.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod jobs;
pub mod telemetry;
pub mod validate;

pub use error::{Error, Result};
