//! `hc-cli probe`: one query per target and transport, printed as lines or JSON.

use anyhow::anyhow;
use dnsprobe::hickory_proto::rr::{Name, RecordType};
use dnsprobe::{
    AnswerExpectation, Expectation, JsonReport, ProbeReport, ProbeSpec, Prober, TransportMode,
};

use crate::cli::ProbeArgs;
use crate::exit;
use crate::output::Out;

/// What to ask whom: the flags and the dig-style words together.
struct Query {
    targets: Vec<std::net::SocketAddr>,
    name: Name,
    query_type: RecordType,
}

/// Joins `--target`/`--name`/`--type` with `@SERVER NAME TYPE`; a name or type given both ways
/// is a usage error.
fn query(args: &ProbeArgs) -> exit::Result<Query> {
    let words = dnsprobe::parse_query_words(&args.words).map_err(|e| exit::usage(anyhow!(e)))?;
    let mut targets: Vec<_> = (args.targets.iter())
        .map(|t| t.with_default_port(args.port))
        .collect();
    for s in &words.servers {
        let t = crate::cli::parse_target_arg(s).map_err(|e| exit::usage(anyhow!("@{s}: {e}")))?;
        targets.push(t.with_default_port(args.port));
    }
    if targets.is_empty() {
        return Err(exit::usage(anyhow!(
            "no server: write @IP[:PORT] (as dig does) or --target IP[:PORT] (repeatable)"
        )));
    }
    let twice = |what: &str, flag: &str| {
        exit::usage(anyhow!(
            "the {what} is given twice (as a word and as {flag}): give it once"
        ))
    };
    let name = match (args.name.clone(), words.name) {
        (Some(_), Some(_)) => return Err(twice("query name", "--name")),
        (Some(n), None) | (None, Some(n)) => n,
        (None, None) => ProbeSpec::new(targets[0]).name,
    };
    let query_type = match (args.query_type, words.query_type) {
        (Some(_), Some(_)) => return Err(twice("query type", "--type")),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => RecordType::A,
    };
    Ok(Query {
        targets,
        name,
        query_type,
    })
}

/// One spec per target, from the arguments.
fn specs(args: &ProbeArgs, q: &Query) -> Vec<ProbeSpec> {
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
    (q.targets.iter())
        .map(|t| {
            ProbeSpec::new(*t)
                .with_name(q.name.clone())
                .with_query_type(q.query_type)
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
    let q = query(&args)?;
    let specs = specs(&args, &q);
    // Zone transfers only over TCP: say so before anything is sent.
    if let Some(Err(e)) = specs.first().map(ProbeSpec::check) {
        let t = dnsprobe::record_type_name(q.query_type);
        return Err(exit::usage(anyhow!(
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
        return Ok(exit::status(reports.iter().all(ProbeReport::healthy)));
    }
    for r in &reports {
        out.status(r.healthy(), format_args!("{r:#}"))?;
    }
    // With --both: UDP against TCP per target, in sweep's words (udp-blocked, ...).
    for f in hc_netns::compare_transports(&reports)
        .iter()
        .filter(|_| args.both)
    {
        out.status(false, f)?;
    }
    Ok(exit::status(reports.iter().all(ProbeReport::healthy)))
}
