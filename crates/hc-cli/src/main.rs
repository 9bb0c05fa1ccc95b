//! `hc-cli`: checks the cluster DNS of Kubernetes the way clients use it.
//!
//! The binary only composes the libraries: argument parsing and output live here, probing lives
//! in `dnsprobe`.

mod cli;
mod exit;
mod output;
mod probe_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        cli::Command::Probe(args) => probe_cmd::run(args),
    };
    match code {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}
