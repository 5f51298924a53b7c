use std::process::ExitCode;

use clap::Parser;
use vibing2::cli::{Cli, Command};
use vibing2::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
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
        Command::Migrate(command) => vibing2::commands::migrate(settings, command.batch_rows).await,
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
