//! Integration tests against a real PostgreSQL; each test gets its own database.

mod bench_seed;
mod embedded;
mod errors;
mod health;
mod indexes;
mod migrations;
mod pool;
mod serve_binary;
mod support;
