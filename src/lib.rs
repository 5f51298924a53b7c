//! vibing2: the PostgreSQL-backed data service of the vibing2 AI app-building platform.
//!
//! Calls flow `api` → `service` → (`cache`, `db`), all over `domain`; docs/architecture.md
//! has the layers and where each rule lives.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod import;
pub mod jobs;
pub mod server;
pub mod service;
pub mod state;
pub mod switches;
pub mod telemetry;
pub mod validate;

pub use error::{Error, Result};
