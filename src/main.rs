use std::process::ExitCode;

use clap::Parser;
use vibing2::cli::{Cli, Command, MigrateCommand};
use vibing2::config::Settings;

fn main() -> ExitCode {
    keep_freed_memory_small();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's defaults let a busy server keep what it freed: each thread that meets contention
/// gets an arena of its own, up to eight per core, and every large buffer freed raises the
/// threshold under which later ones come from the heap rather than `mmap`, so freed request
/// and response buffers stay resident. Under 256 connections, two arenas took the peak RSS
/// from 218 to 158 MB, and fixed 128 KiB mmap and trim thresholds from 161 to 68 MB, at the
/// same throughput (docs/benchmarks.md). Set before any other thread exists.
fn keep_freed_memory_small() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets parameters of the allocator, and no other thread runs yet.
    unsafe {
        const RETURN_ABOVE_BYTES: libc::c_int = 128 * 1024;
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Setting either threshold also turns off glibc's dynamic raising of both.
        libc::mallopt(libc::M_MMAP_THRESHOLD, RETURN_ABOVE_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, RETURN_ABOVE_BYTES);
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
        Command::Migrate(command) => vibing2::commands::migrate(settings, command).await,
        Command::Backup(command) => vibing2::commands::backup(settings, command).await,
        Command::Restore(command) => vibing2::commands::restore(settings, command).await,
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
