//! What to ask, whom, how, and what counts as a healthy answer.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::error::SpecError;

/// The name the Kubernetes cluster DNS must always resolve: the API server's Service.
pub const DEFAULT_QUERY_NAME: &str = "kubernetes.default.svc.cluster.local.";
/// The DNS port.
pub const DEFAULT_PORT: u16 = 53;
/// EDNS(0) UDP payload size advertised in queries: the DNS Flag Day 2020 value, which avoids
/// IP fragmentation on every common path.
pub const EDNS_PAYLOAD: u16 = 1232;
/// Default time allowed for one attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A transport a query travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum Transport {
    /// DNS over UDP (RFC 1035 §4.2.1).
    Udp,
    /// DNS over TCP with the 2-byte length prefix (RFC 1035 §4.2.2, RFC 7766).
    Tcp,
}

impl Transport {
    /// Stable lowercase name: `udp` or `tcp`. Used as a metric label and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which transports a [`ProbeSpec`] is probed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportMode {
    /// UDP only (a truncated reply is retried over TCP when [`ProbeSpec::tcp_fallback`] is on).
    #[default]
    Udp,
    /// TCP only.
    Tcp,
    /// UDP and TCP, each probed and reported separately — the way to see "UDP dead, TCP alive".
    Both,
}

impl TransportMode {
    /// The transports this mode probes, UDP first.
    pub fn transports(self) -> &'static [Transport] {
        match self {
            TransportMode::Udp => &[Transport::Udp],
            TransportMode::Tcp => &[Transport::Tcp],
            TransportMode::Both => &[Transport::Udp, Transport::Tcp],
        }
    }
}

/// What the answer section of an accepted response must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AnswerExpectation {
    /// At least one record in the answer section. Checked only when the response code is
    /// NOERROR: an accepted NXDOMAIN has no answer by definition.
    #[default]
    NonEmpty,
    /// Anything, including nothing.
    Any,
    /// The A/AAAA addresses answered include every one of these.
    Contains(Vec<IpAddr>),
    /// The A/AAAA addresses answered are exactly this set (order and duplicates ignored).
    Equals(Vec<IpAddr>),
}

impl AnswerExpectation {
    /// The answer must hold every one of `ips`; any answer when there is none.
    ///
    /// ```
    /// use dnsprobe::AnswerExpectation;
    /// assert_eq!(AnswerExpectation::all_of(&[]), AnswerExpectation::NonEmpty);
    /// ```
    pub fn all_of(ips: &[IpAddr]) -> Self {
        if ips.is_empty() {
            AnswerExpectation::NonEmpty
        } else {
            AnswerExpectation::Contains(ips.to_vec())
        }
    }
}

/// What counts as a healthy response.
///
/// ```
/// use dnsprobe::{AnswerExpectation, Expectation};
/// use dnsprobe::hickory_proto::op::ResponseCode;
///
/// let nx = Expectation::default().with_rcodes([ResponseCode::NXDomain]).with_answer(AnswerExpectation::Any);
/// assert_eq!(nx.rcodes, [ResponseCode::NXDomain]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expectation {
    /// Response codes accepted as healthy. Default: NOERROR only.
    pub rcodes: Vec<ResponseCode>,
    /// What the answer section must hold. Default: [`AnswerExpectation::NonEmpty`].
    pub answer: AnswerExpectation,
}

impl Default for Expectation {
    fn default() -> Self {
        Expectation {
            rcodes: vec![ResponseCode::NoError],
            answer: AnswerExpectation::NonEmpty,
        }
    }
}

impl Expectation {
    /// These response codes, and no other, count as healthy.
    pub fn with_rcodes(mut self, rcodes: impl IntoIterator<Item = ResponseCode>) -> Self {
        self.rcodes = rcodes.into_iter().collect();
        self
    }

    /// What the answer section must hold.
    pub fn with_answer(mut self, answer: AnswerExpectation) -> Self {
        self.answer = answer;
        self
    }
}

/// One probe: a query, a target, the transports to use and what counts as healthy.
///
/// Build one with [`ProbeSpec::new`], then the `with_*` methods (or set the public fields);
/// every field has a default that matches how a Kubernetes pod's resolver asks the cluster DNS.
/// The struct is `#[non_exhaustive]`: fields will be added, so it cannot be built literally.
///
/// ```
/// use std::time::Duration;
/// use dnsprobe::{AnswerExpectation, ProbeSpec, TransportMode};
///
/// let spec = ProbeSpec::new("10.96.0.10:53".parse().unwrap())
///     .with_transport(TransportMode::Both)
///     .with_timeout(Duration::from_millis(500))
///     .with_answer(AnswerExpectation::Contains(vec!["10.96.0.1".parse().unwrap()]));
/// assert_eq!(spec.name.to_ascii(), "kubernetes.default.svc.cluster.local.");
/// assert_eq!(spec.attempts.get(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeSpec {
    /// Address and port of the DNS server.
    pub target: SocketAddr,
    /// Fully qualified query name (no search list is applied).
    pub name: Name,
    /// Query type.
    pub query_type: RecordType,
    /// Transports to probe.
    pub transport: TransportMode,
    /// Retry a truncated UDP reply over TCP, as stub resolvers and `dig` do. Default: on. When
    /// off, a truncated reply is a [`crate::FailureKind::Truncated`] failure.
    pub tcp_fallback: bool,
    /// Time allowed for one attempt (for TCP including the connection).
    pub timeout: Duration,
    /// Attempts per transport; a new query (new ID, new source port) each time. Transport
    /// failures (timeout, refused, unreachable, I/O, malformed) are retried; an answer that is
    /// wrong is not.
    pub attempts: NonZeroU32,
    /// Set the RD (recursion desired) flag, as stub resolvers do. Default: on.
    pub recursion_desired: bool,
    /// Send an EDNS(0) OPT record advertising [`EDNS_PAYLOAD`] bytes. Default: on.
    pub edns: bool,
    /// What counts as healthy.
    pub expect: Expectation,
}

impl ProbeSpec {
    /// A spec for `target` with every default: `kubernetes.default.svc.cluster.local.` A over UDP,
    /// 2 s timeout, one attempt, RD and EDNS(0) on, NOERROR with a non-empty answer expected.
    pub fn new(target: SocketAddr) -> Self {
        ProbeSpec {
            target,
            name: default_name(),
            query_type: RecordType::A,
            transport: TransportMode::Udp,
            tcp_fallback: true,
            timeout: DEFAULT_TIMEOUT,
            attempts: NonZeroU32::MIN,
            recursion_desired: true,
            edns: true,
            expect: Expectation::default(),
        }
    }

    /// Another target, everything else the same (a template spec for many targets).
    pub fn with_target(mut self, target: SocketAddr) -> Self {
        self.target = target;
        self
    }

    /// The query name (see [`parse_name`]).
    pub fn with_name(mut self, name: Name) -> Self {
        self.name = name;
        self
    }

    /// The query type.
    pub fn with_query_type(mut self, query_type: RecordType) -> Self {
        self.query_type = query_type;
        self
    }

    /// The transports to probe.
    pub fn with_transport(mut self, transport: TransportMode) -> Self {
        self.transport = transport;
        self
    }

    /// Whether a truncated UDP reply is retried over TCP.
    pub fn with_tcp_fallback(mut self, on: bool) -> Self {
        self.tcp_fallback = on;
        self
    }

    /// The time allowed for one attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Attempts per transport; 0 is taken as 1.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = NonZeroU32::new(attempts).unwrap_or(NonZeroU32::MIN);
        self
    }

    /// Whether the RD flag is set.
    pub fn with_recursion_desired(mut self, on: bool) -> Self {
        self.recursion_desired = on;
        self
    }

    /// Whether an EDNS(0) OPT record is sent.
    pub fn with_edns(mut self, on: bool) -> Self {
        self.edns = on;
        self
    }

    /// What counts as healthy, whole.
    pub fn with_expect(mut self, expect: Expectation) -> Self {
        self.expect = expect;
        self
    }

    /// What the answer section must hold (the response codes stay).
    pub fn with_answer(mut self, answer: AnswerExpectation) -> Self {
        self.expect.answer = answer;
        self
    }
}

fn default_name() -> Name {
    // A constant, valid name: parsing cannot fail, but stay panic-free regardless.
    Name::from_ascii(DEFAULT_QUERY_NAME).unwrap_or_else(|_| Name::root())
}

/// Parses `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address; `default_port` fills a missing port.
///
/// ```
/// let t = dnsprobe::parse_target("::1", 53).unwrap();
/// assert_eq!(t.to_string(), "[::1]:53");
/// assert_eq!(dnsprobe::parse_target("10.96.0.10:5353", 53).unwrap().port(), 5353);
/// assert!(dnsprobe::parse_target("kube-dns", 53).is_err());
/// ```
pub fn parse_target(input: &str, default_port: u16) -> Result<SocketAddr, SpecError> {
    let s = input.trim();
    if let Ok(addr) = SocketAddr::from_str(s) {
        return Ok(addr);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    match IpAddr::from_str(bare) {
        Ok(ip) => Ok(SocketAddr::new(ip, default_port)),
        Err(_) => Err(SpecError::InvalidTarget {
            input: input.to_owned(),
        }),
    }
}

/// Parses a query name; a name without a trailing dot is taken as fully qualified (no search
/// list is applied: probes ask exactly the name given).
pub fn parse_name(input: &str) -> Result<Name, SpecError> {
    let mut name = Name::from_ascii(input.trim()).map_err(|e| SpecError::InvalidName {
        input: input.to_owned(),
        reason: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

/// Parses a query type by its mnemonic (`A`, `aaaa`, `SRV`, `TXT`, ...) or as `TYPE<n>`.
pub fn parse_record_type(input: &str) -> Result<RecordType, SpecError> {
    let upper = input.trim().to_ascii_uppercase();
    if let Some(Ok(n)) = upper.strip_prefix("TYPE").map(u16::from_str) {
        return Ok(RecordType::from(n));
    }
    match RecordType::from_str(&upper) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(SpecError::UnknownType {
            input: input.to_owned(),
        }),
        Ok(t) => Ok(t),
    }
}

const RCODES: &[(ResponseCode, &str)] = &[
    (ResponseCode::NoError, "NOERROR"),
    (ResponseCode::FormErr, "FORMERR"),
    (ResponseCode::ServFail, "SERVFAIL"),
    (ResponseCode::NXDomain, "NXDOMAIN"),
    (ResponseCode::NotImp, "NOTIMP"),
    (ResponseCode::Refused, "REFUSED"),
    (ResponseCode::YXDomain, "YXDOMAIN"),
    (ResponseCode::YXRRSet, "YXRRSET"),
    (ResponseCode::NXRRSet, "NXRRSET"),
    (ResponseCode::NotAuth, "NOTAUTH"),
    (ResponseCode::NotZone, "NOTZONE"),
    (ResponseCode::BADVERS, "BADVERS"),
    (ResponseCode::BADKEY, "BADKEY"),
    (ResponseCode::BADTIME, "BADTIME"),
    (ResponseCode::BADMODE, "BADMODE"),
    (ResponseCode::BADNAME, "BADNAME"),
    (ResponseCode::BADALG, "BADALG"),
    (ResponseCode::BADTRUNC, "BADTRUNC"),
    (ResponseCode::BADCOOKIE, "BADCOOKIE"),
];

/// The mnemonic of a response code as `dig` prints it: `NOERROR`, `SERVFAIL`, `NXDOMAIN`, ...;
/// `RCODE<n>` for a code without one.
pub fn rcode_name(code: ResponseCode) -> String {
    RCODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| format!("RCODE{}", u16::from(code)))
}

/// Parses a response code by mnemonic (`NOERROR`, `nxdomain`, ...) or number (`0`-`4095`).
pub fn parse_rcode(input: &str) -> Result<ResponseCode, SpecError> {
    let upper = input.trim().to_ascii_uppercase();
    if let Some((code, _)) = RCODES.iter().find(|(_, n)| *n == upper) {
        return Ok(*code);
    }
    let digits = upper.strip_prefix("RCODE").unwrap_or(&upper);
    match u16::from_str(digits) {
        Ok(n) if n < 4096 => Ok(<ResponseCode as From<u16>>::from(n)),
        _ => Err(SpecError::UnknownRcode {
            input: input.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("10.96.0.10", 53).unwrap(),
            "10.96.0.10:53".parse().unwrap()
        );
        assert_eq!(
            parse_target("[::1]:5353", 53).unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_target("[fd00::a]", 54).unwrap(),
            "[fd00::a]:54".parse().unwrap()
        );
        assert_eq!(
            parse_target(" fd00::a ", 53).unwrap(),
            "[fd00::a]:53".parse().unwrap()
        );
        for bad in ["", "kube-dns", "10.96.0.10:", "10.96.0.10:99999", "1.2.3"] {
            let err = parse_target(bad, 53).unwrap_err();
            assert!(err.to_string().contains("IP"), "{bad}: {err}");
        }
    }

    #[test]
    fn names_are_made_absolute() {
        assert_eq!(
            parse_name("kubernetes.default").unwrap().to_ascii(),
            "kubernetes.default."
        );
        assert_eq!(parse_name("a.b.").unwrap().to_ascii(), "a.b.");
        assert!(parse_name("a..b").is_err());
    }

    #[test]
    fn types() {
        assert_eq!(parse_record_type("a").unwrap(), RecordType::A);
        assert_eq!(parse_record_type("SRV").unwrap(), RecordType::SRV);
        assert_eq!(parse_record_type("TXT").unwrap(), RecordType::TXT);
        assert_eq!(parse_record_type("TYPE65").unwrap(), RecordType::HTTPS);
        assert!(parse_record_type("BOGUS").is_err());
        assert!(parse_record_type("TYPEx").is_err());
    }

    #[test]
    fn rcodes_round_trip() {
        for (code, name) in RCODES {
            assert_eq!(parse_rcode(name).unwrap(), *code);
            assert_eq!(rcode_name(*code), *name);
        }
        assert_eq!(parse_rcode("nxdomain").unwrap(), ResponseCode::NXDomain);
        assert_eq!(parse_rcode("2").unwrap(), ResponseCode::ServFail);
        assert!(parse_rcode("OOPS").is_err());
        assert!(parse_rcode("5000").is_err());
    }
}
