//! What a probe found.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::spec::{ProbeSpec, Transport, rcode_name, record_type_name};

/// The kind of a failed probe, with a stable lowercase name ([`FailureKind::as_str`]) fit for a
/// metric label, a JSON field or a finding code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FailureKind {
    /// No acceptable reply before the deadline of every attempt.
    Timeout,
    /// The server's host said nothing listens there: ICMP port unreachable on a connected UDP
    /// socket, or a TCP RST to the connection attempt.
    Refused,
    /// No route to the network or host (ENETUNREACH, EHOSTUNREACH).
    Unreachable,
    /// A reply with a response code not accepted (SERVFAIL, NXDOMAIN, REFUSED, ...).
    Rcode,
    /// A reply whose addresses are not the expected ones.
    WrongAnswer,
    /// NOERROR with nothing in the answer section, where an answer was expected.
    EmptyAnswer,
    /// A truncated UDP reply, and TCP fallback was not allowed.
    Truncated,
    /// Only replies that could not be parsed came back, the reply to the query was broken (its
    /// records cannot be read, it is larger than the receive buffer), or a TCP stream carried an
    /// unparseable message.
    Malformed,
    /// Any other socket error.
    Io,
    /// Only replies to something else came back: another transaction ID, another question, a
    /// query instead of a reply (or, over TCP, too many of them on one connection). Not a
    /// timeout: something answered, but never this query.
    Mismatched,
    /// The probe could not be started: no socket could be had (EMFILE, ENFILE, ENOBUFS,
    /// ENOMEM, ...), or the spec cannot be probed over this transport (AXFR over UDP). Says
    /// nothing about the target: it does not count against it
    /// ([`FailureKind::counts_against_target`]).
    NotProbed,
}

impl FailureKind {
    /// Every kind, in a fixed order (e.g. to pre-create metric label sets).
    pub const ALL: [FailureKind; 11] = [
        FailureKind::Timeout,
        FailureKind::Refused,
        FailureKind::Unreachable,
        FailureKind::Rcode,
        FailureKind::WrongAnswer,
        FailureKind::EmptyAnswer,
        FailureKind::Truncated,
        FailureKind::Malformed,
        FailureKind::Io,
        FailureKind::Mismatched,
        FailureKind::NotProbed,
    ];

    /// Stable lowercase (kebab-case) name: `timeout`, `refused`, `unreachable`, `rcode`,
    /// `wrong-answer`, `empty-answer`, `truncated`, `malformed`, `io`, `mismatched`, `not-probed`.
    /// A contract: never renamed.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Refused => "refused",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Rcode => "rcode",
            FailureKind::WrongAnswer => "wrong-answer",
            FailureKind::EmptyAnswer => "empty-answer",
            FailureKind::Truncated => "truncated",
            FailureKind::Malformed => "malformed",
            FailureKind::Io => "io",
            FailureKind::Mismatched => "mismatched",
            FailureKind::NotProbed => "not-probed",
        }
    }

    /// True for failures of the path (nothing usable came back), false for failures of the answer
    /// (the server answered, wrongly) and for [`FailureKind::NotProbed`] (nothing was asked).
    /// Only path failures are retried.
    pub fn is_transport(self) -> bool {
        !matches!(
            self,
            FailureKind::Rcode
                | FailureKind::WrongAnswer
                | FailureKind::EmptyAnswer
                | FailureKind::Truncated
                | FailureKind::NotProbed
        )
    }

    /// False for [`FailureKind::NotProbed`]: the probe never reached the target, so its report
    /// must not move the target's state ([`crate::HealthBook::record`] keeps it unchanged). True
    /// for every other kind.
    pub fn counts_against_target(self) -> bool {
        self != FailureKind::NotProbed
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed, with the evidence. `Display` gives the reason in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// No acceptable reply in any attempt.
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Time allowed for each.
        timeout: Duration,
    },
    /// ICMP port unreachable (UDP) or TCP RST.
    Refused,
    /// No route to the server.
    Unreachable {
        /// The operating system's words.
        detail: String,
    },
    /// The response code is not one of the accepted ones.
    Rcode {
        /// The response code received.
        rcode: ResponseCode,
    },
    /// The addresses answered are not the ones expected.
    WrongAnswer {
        /// The A/AAAA addresses in the answer section.
        answered: Vec<IpAddr>,
        /// The addresses expected.
        expected: Vec<IpAddr>,
        /// Whether exactly `expected` was required (else: at least).
        exact: bool,
    },
    /// NOERROR with no answer records.
    EmptyAnswer,
    /// NOERROR, an A or AAAA question, and records in the answer section but no address for the
    /// name asked: e.g. only a CNAME that leads nowhere in the answer (kind
    /// [`FailureKind::EmptyAnswer`]: a client gets no address).
    NoAddress {
        /// What the answer held instead.
        detail: String,
    },
    /// Truncated UDP reply, TCP fallback off.
    Truncated,
    /// A reply received over TCP with the TC bit set (kind [`FailureKind::Truncated`]): the
    /// server could not send the whole answer even over TCP.
    TruncatedOverTcp,
    /// Nothing parseable came back, or the reply to the query was broken.
    Malformed {
        /// What was wrong.
        detail: String,
    },
    /// Another socket error.
    Io {
        /// The operating system's words.
        detail: String,
    },
    /// Only replies to something else came back.
    Mismatched {
        /// What came back (the last one): its ID, the question it answered.
        detail: String,
    },
    /// The probe could not be started.
    NotProbed {
        /// Why: the operating system's words, or the spec's fault.
        detail: String,
    },
}

impl Failure {
    /// The kind of this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            Failure::Timeout { .. } => FailureKind::Timeout,
            Failure::Refused => FailureKind::Refused,
            Failure::Unreachable { .. } => FailureKind::Unreachable,
            Failure::Rcode { .. } => FailureKind::Rcode,
            Failure::WrongAnswer { .. } => FailureKind::WrongAnswer,
            Failure::EmptyAnswer | Failure::NoAddress { .. } => FailureKind::EmptyAnswer,
            Failure::Truncated | Failure::TruncatedOverTcp => FailureKind::Truncated,
            Failure::Malformed { .. } => FailureKind::Malformed,
            Failure::Io { .. } => FailureKind::Io,
            Failure::Mismatched { .. } => FailureKind::Mismatched,
            Failure::NotProbed { .. } => FailureKind::NotProbed,
        }
    }
}

fn join_ips(ips: &[IpAddr]) -> String {
    if ips.is_empty() {
        return "nothing".to_owned();
    }
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout { attempts: 0, .. } => {
                f.write_str("not attempted: the overall deadline passed while waiting for room")
            }
            Failure::Timeout { attempts, timeout } => {
                let s = if *attempts == 1 { "" } else { "s" };
                write!(
                    f,
                    "timed out after {attempts} attempt{s} ({} each)",
                    humanize(*timeout)
                )
            }
            Failure::Refused => f.write_str("connection refused"),
            Failure::Unreachable { detail } => write!(f, "unreachable: {detail}"),
            Failure::Rcode { rcode } => f.write_str(&rcode_name(*rcode)),
            Failure::WrongAnswer {
                answered,
                expected,
                exact,
            } => write!(
                f,
                "answered {}, expected {}{}",
                join_ips(answered),
                if *exact { "exactly " } else { "" },
                join_ips(expected)
            ),
            Failure::EmptyAnswer => f.write_str("empty answer (NOERROR with no records)"),
            Failure::NoAddress { detail } => write!(f, "no address for the name asked: {detail}"),
            Failure::Truncated => f.write_str("reply truncated and TCP fallback is off"),
            Failure::TruncatedOverTcp => f.write_str(
                "reply truncated over TCP (TC set): the server could not send the whole answer",
            ),
            Failure::Malformed { detail } => write!(f, "malformed reply: {detail}"),
            Failure::Io { detail } => write!(f, "I/O error: {detail}"),
            Failure::Mismatched { detail } => {
                write!(f, "no reply to this query, only mismatched ones: {detail}")
            }
            Failure::NotProbed { detail } => write!(f, "not probed: {detail}"),
        }
    }
}

impl std::error::Error for Failure {}

fn humanize(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The outcome of probing one target over one transport.
///
/// `#[non_exhaustive]`: reports come from probing, from [`ProbeReport::failed`] (a probe that
/// could not run, e.g. because its tunnel failed), or, with the `serde` feature, from JSON.
/// `Display` gives the one-line summary `hc-cli probe` prints after `OK`/`FAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeReport {
    /// The server probed.
    pub target: SocketAddr,
    /// The query name.
    pub name: Name,
    /// The query type.
    pub query_type: RecordType,
    /// The transport probed.
    pub transport: Transport,
    /// The transport that carried the final reply: TCP when a truncated UDP reply was retried
    /// and TCP answered.
    pub transport_used: Transport,
    /// A truncated UDP reply was received (and retried over TCP unless that was off).
    pub truncated: bool,
    /// Response code of the accepted reply, if any reply was accepted.
    pub rcode: Option<ResponseCode>,
    /// A and AAAA addresses in the answer section, in order.
    pub addresses: Vec<IpAddr>,
    /// The data of every answer record as text, in order: the address of an A/AAAA record, the
    /// target of a CNAME, `priority weight port target` of an SRV, ...
    pub answers: Vec<String>,
    /// Every answer record as zone-file text (`name TTL class type data`).
    pub records: Vec<String>,
    /// Time from the start of the successful attempt (including a TCP connect and a TCP retry
    /// after truncation) to the accepted reply. `None` when nothing was accepted.
    pub rtt: Option<Duration>,
    /// Attempts made (1-based count).
    pub attempts: u32,
    /// Who sent the accepted reply (always the target: anything else is dropped).
    pub responder: Option<SocketAddr>,
    /// Replies dropped because they did not match the query (wrong ID, wrong question, not a
    /// response, unparseable).
    pub ignored: u32,
    /// Why the probe failed; `None` when healthy.
    pub failure: Option<Failure>,
    /// With [`ProbeSpec::parallel_a_aaaa`], over UDP: which answers of the first attempt's pair
    /// of questions came back.
    pub parallel: Option<Parallel>,
}

/// What came back when the query and its companion (A and AAAA) were sent back to back from one
/// socket, as glibc does ([`ProbeSpec::parallel_a_aaaa`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parallel {
    /// Both answers came.
    Both,
    /// The answer to this question type was lost while the other came: what makes a glibc
    /// client wait its whole timeout (5 s) and ask again.
    Lost(RecordType),
    /// Neither came: the path failed, not one packet of the pair.
    Neither,
}

impl Parallel {
    /// Which answer was lost, as the `lost` metric label: `none`, `a`, `aaaa`, `both`
    /// (`other` for a companion of another type).
    pub fn lost_label(self) -> &'static str {
        match self {
            Parallel::Both => "none",
            Parallel::Lost(RecordType::A) => "a",
            Parallel::Lost(RecordType::AAAA) => "aaaa",
            Parallel::Lost(_) => "other",
            Parallel::Neither => "both",
        }
    }

    /// True when exactly one of the two answers was lost.
    pub fn one_lost(self) -> bool {
        matches!(self, Parallel::Lost(_))
    }
}

impl ProbeReport {
    pub(crate) fn new(spec: &ProbeSpec, transport: Transport) -> Self {
        ProbeReport {
            target: spec.target,
            name: spec.name.clone(),
            query_type: spec.query_type,
            transport,
            transport_used: transport,
            truncated: false,
            rcode: None,
            addresses: Vec::new(),
            answers: Vec::new(),
            records: Vec::new(),
            rtt: None,
            attempts: 0,
            responder: None,
            ignored: 0,
            failure: None,
            parallel: None,
        }
    }

    /// A report of `spec` over `transport` that failed with `failure` without a reply — for a
    /// probe that could not be carried out the usual way (its tunnel failed, its sockets could
    /// not be opened). One attempt is counted.
    ///
    /// ```
    /// use dnsprobe::{Failure, FailureKind, ProbeReport, ProbeSpec, Transport};
    ///
    /// let spec = ProbeSpec::new("10.244.0.5:53".parse().unwrap());
    /// let r = ProbeReport::failed(&spec, Transport::Tcp, Failure::Io { detail: "tunnel closed".into() });
    /// assert_eq!(r.failure_kind(), Some(FailureKind::Io));
    /// assert_eq!(r.attempts, 1);
    /// ```
    pub fn failed(spec: &ProbeSpec, transport: Transport, failure: Failure) -> Self {
        let mut r = ProbeReport::new(spec, transport);
        r.attempts = 1;
        r.failure = Some(failure);
        r
    }

    /// True when an acceptable reply came back and met the expectation.
    pub fn healthy(&self) -> bool {
        self.failure.is_none()
    }

    /// The failure kind, `None` when healthy.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        self.failure.as_ref().map(Failure::kind)
    }

    /// `ok`, or the failure kind's name: the `result` metric label.
    pub fn result_label(&self) -> &'static str {
        self.failure_kind().map_or("ok", FailureKind::as_str)
    }

    /// False when the path failed (nothing usable came back: [`FailureKind::is_transport`]);
    /// true when it answered, rightly or wrongly. What [`crate::TransportVerdict`] compares.
    /// A [`FailureKind::NotProbed`] report says nothing about the path (it is not false): check
    /// [`FailureKind::counts_against_target`] before comparing.
    pub fn path_works(&self) -> bool {
        self.failure_kind().is_none_or(|k| !k.is_transport())
    }
}

fn ms(d: Duration) -> f64 {
    // Microsecond precision, as milliseconds.
    (d.as_micros() as f64) / 1000.0
}

/// `10.96.0.10:53 udp kubernetes.default.svc.cluster.local. A -> 10.96.0.1 (0.412 ms)`, or
/// `10.96.0.10:53 tcp kubernetes.default.svc.cluster.local. A: connection refused`, with notes in
/// brackets (truncation, attempts, mismatched replies ignored). The alternate form (`{:#}`)
/// shows a long answer one record per line, indented, after `-> N records` on the first line.
impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.target,
            self.transport,
            self.name,
            record_type_name(self.query_type)
        )?;
        match &self.failure {
            None if self.answers.is_empty() => {
                let rcode = self.rcode.map(rcode_name).unwrap_or_default();
                write!(f, " -> ({rcode})")?;
            }
            None if f.alternate() && long_answer(&self.answers) => {
                write!(f, " -> {} records", self.answers.len())?;
            }
            None => write!(f, " -> {}", self.answers.join(", "))?,
            Some(failure) => write!(f, ": {failure}")?,
        }
        if let Some(rtt) = self.rtt {
            write!(f, " ({:.3} ms)", ms(rtt))?;
        }
        let mut notes = Vec::new();
        if self.truncated {
            notes.push(if self.transport_used != self.transport {
                format!("truncated, answered over {}", self.transport_used)
            } else if self.failure_kind() == Some(FailureKind::Truncated) {
                "truncated".to_owned()
            } else {
                // The retry over TCP was made but brought no usable reply: the failure says why.
                "truncated, no answer over tcp".to_owned()
            });
        }
        // A timeout already says how many attempts it took.
        if self.attempts > 1 && self.failure_kind() != Some(FailureKind::Timeout) {
            notes.push(format!("{} attempts", self.attempts));
        }
        if self.ignored > 0 {
            notes.push(format!("{} mismatched replies ignored", self.ignored));
        }
        if let Some(Parallel::Lost(t)) = self.parallel {
            notes.push(format!(
                "sent with its companion question from one socket: the {} answer was lost",
                record_type_name(t)
            ));
        }
        if !notes.is_empty() {
            write!(f, " [{}]", notes.join("; "))?;
        }
        if f.alternate() && self.failure.is_none() && long_answer(&self.answers) {
            for a in &self.answers {
                write!(f, "\n    {a}")?;
            }
        }
        Ok(())
    }
}

/// More than one record, longer together than [`ONE_LINE_ANSWER`] characters: shown one record
/// per line by the alternate form of [`ProbeReport`]'s `Display`.
fn long_answer(answers: &[String]) -> bool {
    answers.len() > 1 && answers.iter().map(|a| a.len() + 2).sum::<usize>() > ONE_LINE_ANSWER
}

/// The longest answer (records joined by `, `) the alternate `Display` keeps on the report's
/// line.
const ONE_LINE_ANSWER: usize = 48;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_in_plain_words() {
        let t = Failure::Timeout {
            attempts: 2,
            timeout: Duration::from_secs(2),
        };
        assert_eq!(t.to_string(), "timed out after 2 attempts (2s each)");
        let t = Failure::Timeout {
            attempts: 1,
            timeout: Duration::from_millis(300),
        };
        assert_eq!(t.to_string(), "timed out after 1 attempt (300ms each)");
        let w = Failure::WrongAnswer {
            answered: vec!["10.96.0.99".parse().unwrap()],
            expected: vec!["10.96.0.1".parse().unwrap()],
            exact: false,
        };
        assert_eq!(w.to_string(), "answered 10.96.0.99, expected 10.96.0.1");
        let r = Failure::Rcode {
            rcode: ResponseCode::ServFail,
        };
        assert_eq!(r.to_string(), "SERVFAIL");
        assert_eq!(Failure::Refused.to_string(), "connection refused");
    }

    #[test]
    fn kind_names_are_stable_and_unique() {
        let names: Vec<_> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "timeout",
                "refused",
                "unreachable",
                "rcode",
                "wrong-answer",
                "empty-answer",
                "truncated",
                "malformed",
                "io",
                "mismatched",
                "not-probed"
            ]
        );
    }

    #[test]
    fn long_answers_one_record_per_line_in_the_alternate_form() {
        let spec = crate::ProbeSpec::new("10.96.0.10:53".parse().unwrap());
        let mut r = ProbeReport::failed(&spec, crate::Transport::Udp, Failure::Refused);
        r.failure = None;
        r.rtt = Some(Duration::from_micros(412));
        r.answers = vec!["10.96.0.1".into(), "10.96.0.2".into()];
        let head = "10.96.0.10:53 udp kubernetes.default.svc.cluster.local. A";
        // Short: one line either way.
        assert_eq!(
            format!("{r:#}"),
            format!("{head} -> 10.96.0.1, 10.96.0.2 (0.412 ms)")
        );
        r.answers = (1..=6).map(|i| format!("10.244.{i}.17")).collect();
        assert_eq!(
            format!("{r:#}"),
            format!(
                "{head} -> 6 records (0.412 ms)\n    10.244.1.17\n    10.244.2.17\n    10.244.3.17\n    10.244.4.17\n    10.244.5.17\n    10.244.6.17"
            )
        );
        assert!(
            !r.to_string().contains('\n'),
            "the plain form stays one line"
        );
    }
}
