//! The command line: one binary, one subcommand per job.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "vibing2", version, about = "The vibing2 data service")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API. Without DATABASE_URL it starts the embedded PostgreSQL cluster.
    Serve,
    /// Bring the database to the current schema: a fresh one, or a Phase-2 (Prisma) one.
    Migrate,
    /// Refresh the materialized views once (project_stats, user_token_summary).
    RefreshViews,
}
