//! `hc-cli`: checks the cluster DNS of Kubernetes the way clients use it.
//!
//! The binary only composes the libraries: argument parsing and output live here, probing lives
//! in `dnsprobe`.

mod cli;
#[cfg(target_os = "linux")]
mod cluster;
#[cfg(target_os = "linux")]
mod demo;
#[cfg(target_os = "linux")]
mod demo_server;
mod exit;
#[cfg(target_os = "linux")]
mod netns_cmd;
mod output;
mod probe_cmd;
#[cfg(target_os = "linux")]
mod run_cmd;
#[cfg(target_os = "linux")]
mod sweep;
#[cfg(target_os = "linux")]
mod sweep_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        cli::Command::Probe(args) => probe_cmd::run(args),
        #[cfg(target_os = "linux")]
        cli::Command::Netns(cli::NetnsCommand::List(args)) => netns_cmd::run(args),
        #[cfg(target_os = "linux")]
        cli::Command::Sweep(args) => sweep_cmd::run(args),
        #[cfg(target_os = "linux")]
        cli::Command::Run(args) => run_cmd::run(*args),
        #[cfg(target_os = "linux")]
        cli::Command::Demo(args) => demo::run(args),
    };
    match code {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}
