//! gatewayctl, the command-line client of the gateway admin API.
//!
//! This file is the process edge: it parses the command line, runs one command on a
//! single-threaded runtime (a CLI makes a handful of sequential requests) and turns the outcome
//! into the documented exit code.

mod cli;
mod client;
mod commands;
mod contexts;
mod input;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::commands::exit;

fn main() -> ExitCode {
    client::install_crypto_provider();
    // Usage errors exit with 2 here, help and version with 0.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::REFUSED);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut warnings = std::io::stderr();
    let result = runtime.block_on(commands::run(cli, &mut stdout, &mut warnings));
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) if error.is_broken_pipe() => {
            // The reader went away (`gatewayctl ... | head`); nothing left to tell anyone.
            ExitCode::from(exit::SUCCESS)
        }
        Err(error) => {
            let mut stderr = std::io::stderr().lock();
            // If stderr is gone too there is nowhere left to report to; the exit code remains.
            let _ = stderr.write_all(error.report().as_bytes());
            ExitCode::from(error.exit_code())
        }
    }
}
