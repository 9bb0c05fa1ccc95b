//! How reports look: one human line per (target, transport), or JSON objects whose field names
//! are a contract (see `docs/cli.md`).

use std::io::IsTerminal;

use dnsprobe::{ProbeReport, rcode_name};
use serde::Serialize;

/// Colour only on a terminal, and never when NO_COLOR is set to anything non-empty.
pub(crate) fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `OK  ` (green) or `FAIL` (red), four columns wide; colour only when asked.
pub(crate) fn status_word(healthy: bool, colour: bool) -> String {
    let (word, code) = if healthy {
        ("OK  ", "32")
    } else {
        ("FAIL", "31")
    };
    if colour {
        format!("\x1b[{code}m{word}\x1b[0m")
    } else {
        word.to_owned()
    }
}

fn ms(d: std::time::Duration) -> f64 {
    // Microsecond precision, as milliseconds.
    (d.as_micros() as f64) / 1000.0
}

/// `OK   10.96.0.10:53 udp kubernetes.default.svc.cluster.local. A -> 10.96.0.1 (0.412 ms)`
/// `FAIL 10.96.0.10:53 tcp kubernetes.default.svc.cluster.local. A: connection refused`
pub(crate) fn human_line(r: &ProbeReport, colour: bool) -> String {
    let status = status_word(r.healthy(), colour);
    let mut line = format!(
        "{status} {} {} {} {}",
        r.target, r.transport, r.name, r.query_type
    );
    match &r.failure {
        None => {
            let answers = if r.answers.is_empty() {
                format!("({})", r.rcode.map(rcode_name).unwrap_or_default())
            } else {
                r.answers.join(", ")
            };
            line.push_str(&format!(" -> {answers}"));
        }
        Some(f) => line.push_str(&format!(": {f}")),
    }
    if let Some(rtt) = r.rtt {
        line.push_str(&format!(" ({:.3} ms)", ms(rtt)));
    }
    let mut notes = Vec::new();
    if r.truncated {
        notes.push(if r.transport_used == r.transport {
            "truncated".to_owned()
        } else {
            format!("truncated, answered over {}", r.transport_used)
        });
    }
    // A timeout already says how many attempts it took.
    if r.attempts > 1 && r.failure_kind() != Some(dnsprobe::FailureKind::Timeout) {
        notes.push(format!("{} attempts", r.attempts));
    }
    if r.ignored > 0 {
        notes.push(format!("{} mismatched replies ignored", r.ignored));
    }
    if !notes.is_empty() {
        line.push_str(&format!(" [{}]", notes.join("; ")));
    }
    line
}

/// One `--json` object. Field names are a contract: add, never rename.
#[derive(Debug, Serialize)]
pub(crate) struct JsonReport {
    target: String,
    transport: &'static str,
    transport_used: &'static str,
    name: String,
    #[serde(rename = "type")]
    query_type: String,
    healthy: bool,
    rcode: Option<String>,
    answers: Vec<String>,
    records: Vec<String>,
    rtt_ms: Option<f64>,
    attempts: u32,
    truncated: bool,
    responder: Option<String>,
    ignored_replies: u32,
    error: Option<JsonError>,
}

/// `{ "kind": "timeout", "message": "timed out after 2 attempts (2s each)" }`
#[derive(Debug, Serialize)]
pub(crate) struct JsonError {
    kind: &'static str,
    message: String,
}

pub(crate) fn json_report(r: &ProbeReport) -> JsonReport {
    JsonReport {
        target: r.target.to_string(),
        transport: r.transport.as_str(),
        transport_used: r.transport_used.as_str(),
        name: r.name.to_string(),
        query_type: r.query_type.to_string(),
        healthy: r.healthy(),
        rcode: r.rcode.map(rcode_name),
        answers: r.answers.clone(),
        records: r.records.clone(),
        rtt_ms: r.rtt.map(ms),
        attempts: r.attempts,
        truncated: r.truncated,
        responder: r.responder.map(|a| a.to_string()),
        ignored_replies: r.ignored,
        error: r.failure.as_ref().map(|f| JsonError {
            kind: f.kind().as_str(),
            message: f.to_string(),
        }),
    }
}

pub(crate) fn json_reports(reports: &[ProbeReport]) -> Vec<JsonReport> {
    reports.iter().map(json_report).collect()
}
