//! `hc-cli probe`: one query per target and transport, printed as lines or JSON.

use dnsprobe::{
    AnswerExpectation, Expectation, JsonReport, ProbeReport, ProbeSpec, Prober, TransportMode,
};

use crate::cli::ProbeArgs;
use crate::exit;
use crate::output::Out;

/// One spec per target, from the arguments.
fn specs(args: &ProbeArgs) -> Vec<ProbeSpec> {
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
    let mut expect = Expectation::default().with_answer(answer);
    if !args.rcodes.is_empty() {
        expect = expect.with_rcodes(args.rcodes.iter().copied());
    }
    args.targets
        .iter()
        .map(|t| {
            ProbeSpec::new(t.with_default_port(args.port))
                .with_name(args.name.clone())
                .with_query_type(args.query_type)
                .with_transport(transport)
                .with_tcp_fallback(!args.no_tcp_fallback)
                .with_timeout(args.timeout)
                .with_attempts(args.attempts)
                .with_recursion_desired(!args.no_recurse)
                .with_edns(!args.no_edns)
                .with_expect(expect.clone())
        })
        .collect()
}

pub(crate) fn run(args: ProbeArgs) -> exit::Result {
    let specs = specs(&args);
    // Zone transfers only over TCP: say so before anything is sent.
    if let Some(Err(e)) = specs.first().map(ProbeSpec::check) {
        let t = dnsprobe::record_type_name(args.query_type);
        return Err(exit::usage(anyhow::anyhow!(
            "--type {t} needs --tcp (not UDP, nor --both): {e}"
        )));
    }
    let prober = Prober::new();
    // Long enough for every probe to finish: the overall deadline only guards against a bug.
    let deadline = prober.deadline_for(&specs);
    let reports: Vec<ProbeReport> = crate::block_on(prober.probe_many(&specs, deadline))?;
    let mut out = Out::new();
    if args.json {
        out.json(&reports.iter().map(JsonReport::from).collect::<Vec<_>>())?;
    } else {
        for r in &reports {
            out.status(r.healthy(), r)?;
        }
    }
    Ok(exit::status(reports.iter().all(ProbeReport::healthy)))
}
