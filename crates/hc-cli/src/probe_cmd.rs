//! `hc-cli probe`: composes `dnsprobe` with the arguments and prints the reports.

use std::io::Write;
use std::num::NonZeroU32;

use anyhow::Context;
use dnsprobe::{AnswerExpectation, ProbeReport, ProbeSpec, TransportMode};

use crate::cli::ProbeArgs;
use crate::exit;
use crate::output;

/// Builds one spec per target from the arguments.
pub(crate) fn specs(args: &ProbeArgs) -> Vec<ProbeSpec> {
    let transport = match (args.tcp, args.both) {
        (_, true) => TransportMode::Both,
        (true, false) => TransportMode::Tcp,
        (false, false) => TransportMode::Udp,
    };
    let answer = match (args.expect.is_empty(), args.exact) {
        (true, _) => AnswerExpectation::NonEmpty,
        (false, false) => AnswerExpectation::Contains(args.expect.clone()),
        (false, true) => AnswerExpectation::Equals(args.expect.clone()),
    };
    args.ips
        .iter()
        .map(|t| {
            let mut spec = ProbeSpec::new(t.with_default_port(args.port));
            spec.name = args.name.clone();
            spec.query_type = args.query_type;
            spec.transport = transport;
            spec.tcp_fallback = !args.no_tcp_fallback;
            spec.timeout = args.timeout;
            spec.attempts = NonZeroU32::new(args.attempts).unwrap_or(NonZeroU32::MIN);
            spec.recursion_desired = !args.no_recurse;
            spec.edns = !args.no_edns;
            if !args.rcodes.is_empty() {
                spec.expect.rcodes = args.rcodes.clone();
            }
            spec.expect.answer = answer.clone();
            spec
        })
        .collect()
}

/// Runs the probes and prints them; returns the exit status.
pub(crate) fn run(args: ProbeArgs) -> anyhow::Result<u8> {
    let specs = specs(&args);
    // Long enough for every probe to finish: the overall deadline only guards against a bug.
    let prober = dnsprobe::Prober::new();
    let deadline = prober.deadline_for(&specs);
    // A current-thread runtime: probes are I/O-bound and start-up cost matters for a CLI that
    // monitoring runs over and over.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    let reports: Vec<ProbeReport> = runtime.block_on(prober.probe_many(&specs, deadline));

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &output::json_reports(&reports))?;
        writeln!(out)?;
    } else {
        let colour = output::use_colour();
        for r in &reports {
            writeln!(out, "{}", output::human_line(r, colour))?;
        }
    }
    out.flush()?;
    Ok(if reports.iter().all(ProbeReport::healthy) {
        exit::HEALTHY
    } else {
        exit::UNHEALTHY
    })
}
