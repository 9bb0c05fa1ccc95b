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

/// Reads back one `--json` object (e.g. from a probe pod's logs) as a report. The failure is
/// rebuilt from its kind; its message is kept where the kind carries text.
pub(crate) fn report_from_json(
    v: &serde_json::Value,
    spec: &dnsprobe::ProbeSpec,
) -> anyhow::Result<ProbeReport> {
    use anyhow::Context;
    use dnsprobe::{Failure, Transport};
    let s = |k: &str| {
        v[k].as_str()
            .with_context(|| format!("field {k:?} missing in {v}"))
    };
    let transport = |t: &str| {
        if t == "tcp" {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    };
    let answers: Vec<String> = v["answers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let addresses: Vec<std::net::IpAddr> = answers.iter().filter_map(|a| a.parse().ok()).collect();
    let rcode = v["rcode"]
        .as_str()
        .and_then(|r| dnsprobe::parse_rcode(r).ok());
    let failure = match v["error"]["kind"].as_str() {
        None => None,
        Some(kind) => {
            let message = v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Some(match kind {
                "timeout" => Failure::Timeout {
                    attempts: v["attempts"].as_u64().unwrap_or(1) as u32,
                    timeout: spec.timeout,
                },
                "refused" => Failure::Refused,
                "unreachable" => Failure::Unreachable { detail: message },
                "rcode" => Failure::Rcode {
                    rcode: rcode.unwrap_or(dnsprobe::hickory_proto::op::ResponseCode::ServFail),
                },
                "wrong-answer" => Failure::WrongAnswer {
                    answered: addresses.clone(),
                    expected: match &spec.expect.answer {
                        dnsprobe::AnswerExpectation::Contains(e)
                        | dnsprobe::AnswerExpectation::Equals(e) => e.clone(),
                        _ => Vec::new(),
                    },
                    exact: false,
                },
                "empty-answer" => Failure::EmptyAnswer,
                "truncated" => Failure::Truncated,
                "malformed" => Failure::Malformed { detail: message },
                _ => Failure::Io { detail: message },
            })
        }
    };
    Ok(ProbeReport {
        target: s("target")?.parse().context("target")?,
        name: dnsprobe::parse_name(s("name")?)?,
        query_type: dnsprobe::parse_record_type(s("type")?)?,
        transport: transport(s("transport")?),
        transport_used: transport(v["transport_used"].as_str().unwrap_or(s("transport")?)),
        truncated: v["truncated"].as_bool().unwrap_or(false),
        rcode,
        addresses,
        answers,
        records: v["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        rtt: v["rtt_ms"]
            .as_f64()
            .map(|ms| std::time::Duration::from_micros((ms * 1000.0) as u64)),
        attempts: v["attempts"].as_u64().unwrap_or(1) as u32,
        responder: v["responder"].as_str().and_then(|r| r.parse().ok()),
        ignored: v["ignored_replies"].as_u64().unwrap_or(0) as u32,
        failure,
    })
}
