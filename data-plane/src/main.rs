//! Binary entry point: parse flags, set up logging and the runtime, run the worker.

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use data_plane::Cli;
use data_plane::cli::LogFormat;
use data_plane::run::Exit;
use tracing_subscriber::EnvFilter;

// Each request allocates and frees a few dozen small blocks (header maps, body frames, futures,
// pool entries); mimalloc serves them from per-thread free lists, with fewer instructions than
// glibc malloc and without its arenas growing and trimming under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let mut runtime = match cli.worker_threads.map(NonZeroUsize::get) {
        // One thread needs no work stealing: the current-thread scheduler runs every connection
        // on the thread that polls the sockets, without the multi-thread scheduler's queues and
        // cross-thread wake-ups (blocking work such as compiling a config still goes to the
        // blocking pool).
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all();
    let runtime = runtime.build().context("cannot start the runtime")?;
    let exit = runtime.block_on(data_plane::run(cli))?;
    // A forced stop must not wait for connections or blocking tasks still running.
    runtime.shutdown_background();
    Ok(exit)
}

fn init_logging(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // rustls warns about every client whose handshake is odd (an IP address as its server name,
    // as wrk and many scripts send, or an alert it does not know): one client could fill the
    // log. The listener counts failed handshakes by reason and logs them at debug; a `rustls`
    // directive of the operator's own still wins.
    let asked_for_rustls = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("rustls"));
    if !asked_for_rustls {
        for quiet in ["rustls=error", "tokio_rustls=error"] {
            if let Ok(directive) = quiet.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}
