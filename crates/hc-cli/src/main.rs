//! `hc-cli`: checks the cluster DNS of Kubernetes the way clients use it. Linux only (network
//! namespaces, procfs, rtnetlink); the `dnsprobe` library is portable.
//!
//! The binary parses, composes the libraries, prints, and maps exit codes (`exit`); the logic
//! lives in `dnsprobe`, `hc_netns`, `hc_exporter` and `hc_remedy`.

mod args;
mod cli;
mod cmd;
mod exit;
mod output;
mod service;

#[cfg(not(target_os = "linux"))]
compile_error!(
    "hc-cli runs on Linux (network namespaces, procfs, rtnetlink); the dnsprobe library is portable"
);

use std::process::ExitCode;

use clap::Parser as _;

/// Runs `f` to completion on the runtime every command uses: one thread, with the I/O and time
/// drivers (probes are I/O-bound, and start-up cost matters for a CLI that monitoring runs over
/// and over). Work left on the blocking pool (a hung exec plugin, a read that never returns) is
/// abandoned at the end, not waited for: the process exits.
fn block_on<F: std::future::Future>(f: F) -> exit::Result<F::Output> {
    use exit::Context;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .runtime()?;
    let out = rt.block_on(f);
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(out)
}

fn main() -> ExitCode {
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| {
        if let Some(clap::error::ContextValue::String(arg)) = e.get(clap::error::ContextKind::InvalidArg)
            && hc_remedy::cli::MOVED_FLAGS.iter().any(|m| arg.starts_with(m))
        {
            eprintln!("note: {arg} is a flag of `hc-cli controller` now: remediation moved out of the agent");
        }
        e.exit()
    });
    output::set_colour_choice(cli.color);
    match cmd::dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.code)
        }
    }
}
