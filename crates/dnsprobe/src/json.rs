//! The JSON form of a report (feature `serde`): written by `hc-cli probe --json`, read back from a
//! probe pod's logs. Field names are a contract: added to, never renamed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::JsonReportError;
use crate::report::{Failure, FailureKind, Parallel, ProbeReport};
use crate::spec::{AnswerExpectation, ProbeSpec, Transport, parse_name, parse_rcode};
use crate::spec::{parse_record_type, rcode_name, record_type_name};
use hickory_proto::rr::RecordType;

/// One report as JSON.
///
/// ```
/// use dnsprobe::{Failure, JsonReport, ProbeReport, ProbeSpec, Transport};
///
/// let spec = ProbeSpec::new("10.96.0.10:53".parse().unwrap());
/// let report = ProbeReport::failed(&spec, Transport::Udp, Failure::Refused);
/// let text = serde_json::to_string(&JsonReport::from(&report)).unwrap();
/// assert!(text.contains(r#""error":{"kind":"refused","message":"connection refused"}"#));
/// let back: JsonReport = serde_json::from_str(&text).unwrap();
/// assert_eq!(back.into_report(&spec).unwrap(), report);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JsonReport {
    /// `ip:port`, `[v6]:port`.
    pub target: SocketAddr,
    /// The transport probed.
    pub transport: Transport,
    /// The transport of the final reply (`tcp` after truncation).
    pub transport_used: Transport,
    /// Query name, with its trailing dot.
    pub name: String,
    /// Query type.
    #[serde(rename = "type")]
    pub query_type: String,
    /// Whether the probe was healthy.
    pub healthy: bool,
    /// `NOERROR`, `NXDOMAIN`, ...; null when nothing was accepted.
    pub rcode: Option<String>,
    /// The data of each answer record.
    pub answers: Vec<String>,
    /// Each answer record as zone-file text.
    pub records: Vec<String>,
    /// Round-trip time in milliseconds, microsecond precision.
    pub rtt_ms: Option<f64>,
    /// Attempts made.
    pub attempts: u32,
    /// A truncated UDP reply was received.
    pub truncated: bool,
    /// Who sent the accepted reply.
    pub responder: Option<SocketAddr>,
    /// Replies dropped as not matching the query.
    pub ignored_replies: u32,
    /// Why it failed.
    pub error: Option<JsonError>,
    /// With parallel A and AAAA questions: which answer was lost (`none`, `a`, `aaaa`, `both`);
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_lost: Option<String>,
}

/// `{ "kind": "timeout", "message": "timed out after 2 attempts (2s each)" }`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JsonError {
    /// The failure kind's stable name.
    pub kind: String,
    /// In plain words.
    pub message: String,
}

impl From<&ProbeReport> for JsonReport {
    fn from(r: &ProbeReport) -> Self {
        JsonReport {
            target: r.target,
            transport: r.transport,
            transport_used: r.transport_used,
            name: r.name.to_string(),
            query_type: record_type_name(r.query_type),
            healthy: r.healthy(),
            rcode: r.rcode.map(rcode_name),
            answers: r.answers.clone(),
            records: r.records.clone(),
            rtt_ms: r.rtt.map(|d| d.as_micros() as f64 / 1000.0),
            attempts: r.attempts,
            truncated: r.truncated,
            responder: r.responder,
            ignored_replies: r.ignored,
            error: r.failure.as_ref().map(|f| JsonError {
                kind: f.kind().as_str().to_owned(),
                message: f.to_string(),
            }),
            parallel_lost: r.parallel.map(|p| p.lost_label().to_owned()),
        }
    }
}

impl JsonReport {
    /// Reads the report back. `spec` is what was asked: it gives what the JSON does not carry (a
    /// timeout's duration, the addresses a wrong answer was expected to hold). A failure's
    /// message is kept where its kind carries text.
    pub fn into_report(self, spec: &ProbeSpec) -> Result<ProbeReport, JsonReportError> {
        let bad = |field: &'static str, reason: String| JsonReportError { field, reason };
        let name = parse_name(&self.name).map_err(|e| bad("name", e.to_string()))?;
        let query_type =
            parse_record_type(&self.query_type).map_err(|e| bad("type", e.to_string()))?;
        let rcode = match &self.rcode {
            Some(r) => Some(parse_rcode(r).map_err(|e| bad("rcode", e.to_string()))?),
            None => None,
        };
        let addresses: Vec<IpAddr> = self.answers.iter().filter_map(|a| a.parse().ok()).collect();
        let failure = match self.error.clone() {
            None => None,
            Some(e) => Some(failure(e, self.attempts, spec, &addresses, rcode)?),
        };
        let mut r = ProbeReport::new(spec, self.transport);
        r.target = self.target;
        r.name = name;
        r.query_type = query_type;
        r.transport_used = self.transport_used;
        r.truncated = self.truncated;
        r.rcode = rcode;
        r.addresses = addresses;
        r.answers = self.answers;
        r.records = self.records;
        r.rtt = self
            .rtt_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_micros((ms * 1000.0) as u64));
        r.attempts = self.attempts;
        r.responder = self.responder;
        r.ignored = self.ignored_replies;
        r.failure = failure;
        r.parallel = match self.parallel_lost.as_deref() {
            None => None,
            Some("none") => Some(Parallel::Both),
            Some("both") => Some(Parallel::Neither),
            Some("a") => Some(Parallel::Lost(RecordType::A)),
            Some("aaaa") => Some(Parallel::Lost(RecordType::AAAA)),
            Some(other) => {
                return Err(bad(
                    "parallel_lost",
                    format!("{other:?} is none of none, a, aaaa, both"),
                ));
            }
        };
        Ok(r)
    }
}

fn failure(
    e: JsonError,
    attempts: u32,
    spec: &ProbeSpec,
    addresses: &[IpAddr],
    rcode: Option<hickory_proto::op::ResponseCode>,
) -> Result<Failure, JsonReportError> {
    let kind = FailureKind::ALL
        .into_iter()
        .find(|k| k.as_str() == e.kind)
        .ok_or_else(|| JsonReportError {
            field: "error.kind",
            reason: format!("unknown failure kind {:?}", e.kind),
        })?;
    let detail = e.message;
    Ok(match kind {
        FailureKind::Timeout => Failure::Timeout {
            attempts,
            timeout: spec.timeout,
        },
        FailureKind::Refused => Failure::Refused,
        FailureKind::Unreachable => Failure::Unreachable {
            detail: detail
                .strip_prefix("unreachable: ")
                .unwrap_or(&detail)
                .to_owned(),
        },
        FailureKind::Rcode => Failure::Rcode {
            rcode: rcode.ok_or_else(|| JsonReportError {
                field: "rcode",
                reason: "an rcode failure without an rcode".into(),
            })?,
        },
        FailureKind::WrongAnswer => {
            let (expected, exact) = match &spec.expect.answer {
                AnswerExpectation::Contains(e) => (e.clone(), false),
                AnswerExpectation::Equals(e) => (e.clone(), true),
                _ => (Vec::new(), false),
            };
            Failure::WrongAnswer {
                answered: addresses.to_vec(),
                expected,
                exact,
            }
        }
        FailureKind::EmptyAnswer if detail == Failure::EmptyAnswer.to_string() => {
            Failure::EmptyAnswer
        }
        FailureKind::EmptyAnswer => Failure::NoAddress {
            detail: strip(&detail, "no address for the name asked: "),
        },
        FailureKind::Truncated if detail == Failure::TruncatedOverTcp.to_string() => {
            Failure::TruncatedOverTcp
        }
        FailureKind::Truncated => Failure::Truncated,
        FailureKind::Malformed => Failure::Malformed {
            detail: detail
                .strip_prefix("malformed reply: ")
                .unwrap_or(&detail)
                .to_owned(),
        },
        FailureKind::Io => Failure::Io {
            detail: strip(&detail, "I/O error: "),
        },
        FailureKind::Mismatched => Failure::Mismatched {
            detail: strip(&detail, "no reply to this query, only mismatched ones: "),
        },
        FailureKind::NotProbed => Failure::NotProbed {
            detail: strip(&detail, "not probed: "),
        },
    })
}

/// The detail of a failure's message: the message without the prefix its `Display` adds.
fn strip(message: &str, prefix: &str) -> String {
    message.strip_prefix(prefix).unwrap_or(message).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;

    fn spec() -> ProbeSpec {
        ProbeSpec::new("10.96.0.10:53".parse().unwrap()).with_answer(AnswerExpectation::Contains(
            vec!["10.96.0.1".parse().unwrap()],
        ))
    }

    fn round_trip(r: &ProbeReport) -> ProbeReport {
        let text = serde_json::to_string(&JsonReport::from(r)).unwrap();
        serde_json::from_str::<JsonReport>(&text)
            .unwrap()
            .into_report(&spec())
            .unwrap()
    }

    #[test]
    fn every_failure_kind_round_trips() {
        let s = spec();
        let failures = [
            Failure::Timeout {
                attempts: 1,
                timeout: s.timeout,
            },
            Failure::Refused,
            Failure::Unreachable {
                detail: "No route to host (os error 113)".into(),
            },
            Failure::Rcode {
                rcode: ResponseCode::ServFail,
            },
            Failure::WrongAnswer {
                answered: vec!["10.96.0.99".parse().unwrap()],
                expected: vec!["10.96.0.1".parse().unwrap()],
                exact: false,
            },
            Failure::EmptyAnswer,
            Failure::NoAddress {
                detail: "kubernetes.default.svc.cluster.local. is an alias (CNAME) of gone.example., and the answer holds no A record for it".into(),
            },
            Failure::Truncated,
            Failure::TruncatedOverTcp,
            Failure::Malformed {
                detail: "unexpected end of input".into(),
            },
            Failure::Io {
                detail: "tunnel closed".into(),
            },
            Failure::Mismatched {
                detail: "a reply with ID 7 to evil.example. A".into(),
            },
            Failure::NotProbed {
                detail: "no socket: Too many open files (os error 24)".into(),
            },
        ];
        let kinds: std::collections::BTreeSet<FailureKind> =
            failures.iter().map(Failure::kind).collect();
        assert_eq!(kinds.len(), FailureKind::ALL.len(), "every kind is covered");
        for f in failures {
            let mut r = ProbeReport::failed(&s, Transport::Udp, f);
            if let Some(Failure::Rcode { rcode }) = &r.failure {
                r.rcode = Some(*rcode);
            }
            if let Some(Failure::WrongAnswer { answered, .. }) = &r.failure {
                r.addresses = answered.clone();
                r.answers = answered.iter().map(ToString::to_string).collect();
            }
            assert_eq!(round_trip(&r), r);
        }
    }

    #[test]
    fn a_healthy_answer_round_trips_with_its_timing() {
        let mut r = ProbeReport::new(&spec(), Transport::Tcp);
        r.attempts = 1;
        r.rcode = Some(ResponseCode::NoError);
        r.addresses = vec!["10.96.0.1".parse().unwrap()];
        r.answers = vec!["10.96.0.1".into()];
        r.records = vec!["kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1".into()];
        r.rtt = Some(Duration::from_micros(412));
        r.responder = Some(r.target);
        assert_eq!(round_trip(&r), r);
    }

    #[test]
    fn unknown_kinds_and_bad_fields_say_which_field() {
        let r = ProbeReport::failed(&spec(), Transport::Udp, Failure::Refused);
        let mut j = JsonReport::from(&r);
        j.error = Some(JsonError {
            kind: "gremlins".into(),
            message: String::new(),
        });
        let e = j.into_report(&spec()).unwrap_err();
        assert_eq!(e.field, "error.kind");
        let mut j = JsonReport::from(&r);
        j.query_type = "BOGUS".into();
        assert_eq!(j.into_report(&spec()).unwrap_err().field, "type");
        assert!(serde_json::from_str::<JsonReport>(r#"{"target":"nope"}"#).is_err());
    }
}
