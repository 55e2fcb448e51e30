//! Binary entry point: parse flags, set up logging and the runtime, run the worker.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use data_plane::Cli;
use data_plane::cli::LogFormat;
use data_plane::run::Exit;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    init_logging(cli.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = cli.worker_threads {
        runtime.worker_threads(threads.get());
    }
    let runtime = runtime.build().context("cannot start the runtime")?;
    let exit = runtime.block_on(data_plane::run(cli))?;
    // A forced stop must not wait for connections or blocking tasks still running.
    runtime.shutdown_background();
    Ok(exit)
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}
