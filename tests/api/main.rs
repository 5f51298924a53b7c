//! Integration tests against a real PostgreSQL; each test gets its own database.

mod access_matrix;
mod auth;
mod bad_input;
mod bench_seed;
mod cache;
mod collab;
mod competitions;
mod discovery;
mod embedded;
mod errors;
mod files;
mod health;
mod indexes;
mod jobs;
mod likes_forks;
mod messages;
mod migrations;
mod openapi;
mod plans;
mod pool;
mod projects;
mod serve_binary;
mod support;
mod usage;
