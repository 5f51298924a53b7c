use std::process::ExitCode;

use clap::Parser;
use vibing2::cli::{Cli, Command};
use vibing2::config::Settings;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that meets contention an arena of its own, up to eight per core,
/// and memory freed in one stays there: under 256 connections that was a quarter of the
/// service's peak RSS (218 MB, against 158 MB with two arenas at the same throughput;
/// docs/benchmarks.md). Set before any other thread exists.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator, and no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    vibing2::telemetry::init();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command {
        Command::Serve => vibing2::commands::serve(settings).await,
        Command::Migrate(command) => vibing2::commands::migrate(settings, command).await,
        Command::Backup(command) => vibing2::commands::backup(settings, command).await,
        Command::Restore(command) => vibing2::commands::restore(settings, command).await,
        Command::RefreshViews => vibing2::commands::refresh_views(settings).await,
        Command::Import(import) => vibing2::commands::import(settings, import).await,
        Command::Bench(bench) => vibing2::commands::bench(settings, bench).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
