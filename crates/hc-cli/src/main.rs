//! `hc-cli`: checks the cluster DNS of Kubernetes the way clients use it.
//!
//! The binary parses, composes the libraries, prints, and maps exit codes (`exit`); the logic
//! lives in `dnsprobe`, `hc_netns`, `hc_exporter` and `hc_remedy`.

#[cfg(target_os = "linux")]
mod agent;
mod cli;
mod cmd;
#[cfg(target_os = "linux")]
mod demo_server;
mod exit;
#[cfg(target_os = "linux")]
mod kube;
mod output;
#[cfg(target_os = "linux")]
mod service;

use std::process::ExitCode;

use clap::Parser;

/// The runtime every command runs on: one thread, with the I/O and time drivers. Probes are
/// I/O-bound, and start-up cost matters for a CLI that monitoring runs over and over.
fn runtime() -> exit::Result<tokio::runtime::Runtime> {
    use exit::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .runtime()
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.code)
        }
    }
}
