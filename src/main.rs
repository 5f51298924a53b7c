use std::process::ExitCode;

use clap::Parser;
use vibing2::cli::{Cli, Command, MigrateCommand};
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
        Command::Migrate(command) if command.status => vibing2::commands::migrate_status(settings).await,
        Command::Migrate(MigrateCommand { revert_to: Some(version), .. }) => {
            vibing2::commands::migrate_revert(settings, version).await
        }
        Command::Migrate(command) => vibing2::commands::migrate(settings, command.batch_rows).await,
        Command::RefreshViews => vibing2::commands::refresh_views(settings).await,
        Command::Import(import) => vibing2::commands::import(settings, import).await,
        Command::Bench(bench) => vibing2::commands::bench(settings, bench).await,
        Command::Index(index) => vibing2::commands::index(settings, index).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
