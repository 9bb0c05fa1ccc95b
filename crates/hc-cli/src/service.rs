//! What the long-running commands (`run`, `controller`) share: logs, the round loop, signals.

use std::time::Duration;

use crate::cli::LogFormat;

/// Logs on stderr: text (coloured on a terminal) or one JSON object per line; warnings only when
/// `quiet`.
pub(crate) fn init_logging(format: LogFormat, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level = if quiet {
        LevelFilter::WARN
    } else {
        LevelFilter::INFO
    };
    // The Kubernetes client logs every failed retry of a watch, without context (hundreds of
    // lines a minute during an API outage); the watches' own health says it once, with the
    // cause (hc_remedy). So its events are left out.
    let filter = Targets::new()
        .with_default(level)
        .with_target("kube_client", LevelFilter::OFF)
        .with_target("kube_runtime", LevelFilter::OFF);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(crate::output::colour(std::io::stderr().is_terminal()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).with_filter(filter))
            .try_init(),
    };
}

/// Runs `round` every `interval`, the first after `start`, until SIGTERM or SIGINT. A round that overruns the interval
/// delays the next one (rounds never stack); a signal abandons the round in progress. Returns
/// the signal's name and whether a round was abandoned.
pub(crate) async fn every(
    interval: Duration,
    start: Duration,
    mut round: impl AsyncFnMut(),
) -> (&'static str, bool) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + start, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            s = &mut shutdown => return (s, false),
            _ = ticks.tick() => {}
        }
        tokio::select! {
            s = &mut shutdown => return (s, true),
            () = round() => {}
        }
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => std::future::pending().await,
    }
}

/// Logs the shutdown, saying whether a round was abandoned.
pub(crate) fn log_shutdown((signal, mid_round): (&'static str, bool)) {
    if mid_round {
        tracing::info!(signal, "shutting down; the round in progress is abandoned");
    } else {
        tracing::info!(signal, "shutting down");
    }
}
