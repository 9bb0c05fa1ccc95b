//! `hc-cli sweep`: the arguments, the run, and the output.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use crate::cli::SweepArgs;
use crate::exit;
use crate::netns_cmd::JsonNetns;
use crate::output::{JsonReport, json_report, status_word, use_colour};
use crate::sweep::{NsReport, SweepConfig, sweep};

/// One namespace in `--json`. Field names are a contract.
#[derive(Debug, Serialize)]
pub(crate) struct JsonNsReport {
    netns: JsonNetns,
    healthy: bool,
    probes: Vec<JsonReport>,
    findings: Vec<JsonFinding>,
}

#[derive(Debug, Serialize)]
struct JsonFinding {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

pub(crate) fn ns_json(r: &NsReport) -> JsonNsReport {
    JsonNsReport {
        netns: JsonNetns::from_ns(&r.ns, r.host),
        healthy: r.healthy(),
        probes: r.probes.iter().map(json_report).collect(),
        findings: r
            .findings
            .iter()
            .map(|f| JsonFinding {
                code: f.code.as_str(),
                message: f.message.clone(),
                target: f.target.map(|t| t.to_string()),
            })
            .collect(),
    }
}

pub(crate) fn ns_human(r: &NsReport, colour: bool) -> String {
    let status = status_word(r.healthy(), colour);
    let who = if r.host {
        format!("host (netns {})", r.ns.inode)
    } else {
        r.ns.label()
    };
    let mut line = format!("{status} {who}");
    if let Some(uid) = &r.ns.pod_uid {
        line.push_str(&format!(" pod={uid}"));
    }
    if r.healthy() {
        let ok = r.probes.iter().filter(|p| p.healthy()).count();
        line.push_str(&format!(": {ok} probes answered"));
    } else {
        // A target's udp-blocked / dns-unreachable already says what its probe found: show the
        // probe's own finding only when there is no such summary (JSON keeps both).
        let summarized = |f: &hc_netns::Finding| {
            matches!(f.code, hc_netns::FindingCode::Probe(_))
                && r.findings.iter().any(|g| {
                    g.target == f.target
                        && matches!(
                            g.code,
                            hc_netns::FindingCode::UdpBlocked
                                | hc_netns::FindingCode::DnsUnreachable
                        )
                })
        };
        let words: Vec<String> = r
            .findings
            .iter()
            .filter(|f| !summarized(f))
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        line.push_str(&format!(": {}", words.join("; ")));
    }
    line
}

pub(crate) fn run(args: SweepArgs) -> anyhow::Result<u8> {
    let cfg = SweepConfig {
        targets: args
            .targets
            .iter()
            .map(|t| t.with_default_port(dnsprobe::DEFAULT_PORT))
            .collect(),
        name: args.name,
        expect: args.expect,
        dns_service: args.dns_service,
        netns: args.netns,
        netns_glob: args.netns_glob,
        proc_root: args.proc.proc_root,
        timeout: args.timeout,
        attempts: 1,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    let reports = match runtime.block_on(sweep(&cfg)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return Ok(exit::USAGE);
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let v: Vec<JsonNsReport> = reports.iter().map(ns_json).collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        let colour = use_colour();
        for r in &reports {
            writeln!(out, "{}", ns_human(r, colour))?;
        }
    }
    out.flush()?;
    Ok(if reports.iter().all(NsReport::healthy) {
        exit::HEALTHY
    } else {
        exit::UNHEALTHY
    })
}
