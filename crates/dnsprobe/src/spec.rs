//! What to ask, whom, how, and what counts as a healthy answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
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
    /// Over UDP, send the companion question (AAAA for an A query, A otherwise) right after the
    /// query, from the same socket and source port, as glibc's resolver does, and report whether
    /// one of the two answers was lost ([`crate::ProbeReport::parallel`]): the conntrack race
    /// behind 5 s lookups. The probe's own outcome is still that of the query. Costs one query
    /// more per attempt. Default: off.
    pub parallel_a_aaaa: bool,
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
            parallel_a_aaaa: false,
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

    /// Whether the companion question is sent with the query over UDP, as glibc does
    /// ([`ProbeSpec::parallel_a_aaaa`]).
    pub fn with_parallel_a_aaaa(mut self, on: bool) -> Self {
        self.parallel_a_aaaa = on;
        self
    }

    /// The companion question's type of a parallel probe: AAAA for an A query, A otherwise.
    pub fn companion_type(&self) -> RecordType {
        if self.query_type == RecordType::AAAA {
            RecordType::A
        } else {
            RecordType::AAAA
        }
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

    /// Checks that the spec can be probed as asked: a zone transfer (AXFR, IXFR) only over TCP.
    /// A probe of a spec that fails this check is [`crate::FailureKind::NotProbed`] over UDP.
    ///
    /// ```
    /// use dnsprobe::{ProbeSpec, TransportMode, hickory_proto::rr::RecordType};
    /// let axfr = ProbeSpec::new("127.0.0.1:53".parse().unwrap()).with_query_type(RecordType::AXFR);
    /// assert!(axfr.check().is_err());
    /// assert!(axfr.with_transport(TransportMode::Tcp).check().is_ok());
    /// ```
    pub fn check(&self) -> Result<(), SpecError> {
        self.transport
            .transports()
            .iter()
            .try_for_each(|t| self.check_transport(*t))
    }

    /// [`ProbeSpec::check`] for one transport.
    pub(crate) fn check_transport(&self, transport: Transport) -> Result<(), SpecError> {
        match self.query_type {
            RecordType::AXFR | RecordType::IXFR if transport == Transport::Udp => {
                Err(SpecError::ZoneTransferOverUdp {
                    query_type: self.query_type.to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

fn default_name() -> Name {
    // A constant, valid name: parsing cannot fail, but stay panic-free regardless.
    Name::from_ascii(DEFAULT_QUERY_NAME).unwrap_or_else(|_| Name::root())
}

/// Parses `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address; `default_port` fills a missing
/// port. An IPv6 address may carry a zone (`fe80::1%eth0`, `[fe80::1%2]:53`): an interface
/// index, or (on Linux) an interface name.
///
/// An unbracketed IPv6 address whose last group could be a port is refused as ambiguous:
/// `::1:5399` is the address `::0.1.83.153`, but was almost certainly meant as `[::1]:5399`. Write
/// `[::1]:5399` for the port, or `[::1:5399]` for the address (its port then comes from
/// `default_port`). A bare `::1` or `fd00::a` is not ambiguous.
///
/// ```
/// let t = dnsprobe::parse_target("::1", 53).unwrap();
/// assert_eq!(t.to_string(), "[::1]:53");
/// assert_eq!(dnsprobe::parse_target("10.96.0.10:5353", 53).unwrap().port(), 5353);
/// assert!(dnsprobe::parse_target("kube-dns", 53).is_err());
/// let e = dnsprobe::parse_target("::1:5399", 53).unwrap_err();
/// assert!(e.to_string().contains("did you mean [::1]:5399?"), "{e}");
/// assert_eq!(dnsprobe::parse_target("[::1:5399]", 53).unwrap().to_string(), "[::1:5399]:53");
/// ```
pub fn parse_target(input: &str, default_port: u16) -> Result<SocketAddr, SpecError> {
    let s = input.trim();
    let invalid = || SpecError::InvalidTarget {
        input: input.to_owned(),
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(invalid)?;
        let port = match after {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| u16::from_str(p).ok())
                .ok_or_else(invalid)?,
        };
        let (ip, scope) = ipv6_with_zone(inside, input)?.ok_or_else(invalid)?;
        return Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)));
    }
    if let Ok(addr) = SocketAddrV4::from_str(s) {
        return Ok(SocketAddr::V4(addr));
    }
    if let Ok(ip) = Ipv4Addr::from_str(s) {
        return Ok(SocketAddr::new(IpAddr::V4(ip), default_port));
    }
    let (address, zone) = match s.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (s, None),
    };
    if let Some((ip, port)) = port_in_last_group(address) {
        let zone = zone.map(|z| format!("%{z}")).unwrap_or_default();
        return Err(SpecError::AmbiguousTarget {
            input: input.to_owned(),
            suggestion: format!("[{ip}{zone}]:{port}"),
        });
    }
    if let Some((zone, port)) = zone.and_then(|z| z.rsplit_once(':')) {
        // `fe80::1%eth0:53`: the port was meant, the brackets forgotten.
        if u16::from_str(port).is_ok_and(|p| p > 0) {
            return Err(SpecError::AmbiguousTarget {
                input: input.to_owned(),
                suggestion: format!("[{address}%{zone}]:{port}"),
            });
        }
    }
    let (ip, scope) = ipv6_with_zone(s, input)?.ok_or_else(invalid)?;
    Ok(SocketAddr::V6(SocketAddrV6::new(
        ip,
        default_port,
        0,
        scope,
    )))
}

/// `::1:5399` -> (`::1`, 5399): an unbracketed IPv6 literal whose last group is 1-5 decimal
/// digits making a port (1-65535) while what comes before it is an IPv6 address by itself.
fn port_in_last_group(s: &str) -> Option<(Ipv6Addr, u16)> {
    let (head, tail) = s.rsplit_once(':')?;
    if tail.is_empty() || tail.len() > 5 || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = u16::from_str(tail).ok().filter(|p| *p > 0)?;
    let ip = Ipv6Addr::from_str(head).ok()?;
    Some((ip, port))
}

/// An IPv6 address with an optional `%zone`; `Ok(None)` when it is not an IPv6 address; an error
/// for a zone that names no interface.
fn ipv6_with_zone(s: &str, input: &str) -> Result<Option<(Ipv6Addr, u32)>, SpecError> {
    let (address, zone) = match s.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (s, None),
    };
    let Ok(ip) = Ipv6Addr::from_str(address) else {
        return Ok(None);
    };
    let scope = match zone {
        None => 0,
        Some(zone) => zone_index(zone).map_err(|reason| SpecError::InvalidZone {
            input: input.to_owned(),
            reason,
        })?,
    };
    Ok(Some((ip, scope)))
}

/// The interface index of an IPv6 zone: a number, or an interface's name.
fn zone_index(zone: &str) -> Result<u32, String> {
    if zone.is_empty() {
        return Err("empty zone after %: give an interface name or index".into());
    }
    if let Ok(n) = u32::from_str(zone) {
        return Ok(n);
    }
    interface_index(zone)
}

#[cfg(target_os = "linux")]
fn interface_index(name: &str) -> Result<u32, String> {
    // An interface name is at most 15 bytes and never holds '/'; "." and ".." are not names.
    if name.len() > 15 || name.contains('/') || name == "." || name == ".." {
        return Err(format!("{name:?} is not an interface name"));
    }
    let path = format!("/sys/class/net/{name}/ifindex");
    match std::fs::read_to_string(&path) {
        Ok(text) => u32::from_str(text.trim())
            .map_err(|_| format!("cannot read the index of interface {name:?} from {path}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("no interface named {name:?} here"))
        }
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

#[cfg(not(target_os = "linux"))]
fn interface_index(name: &str) -> Result<u32, String> {
    Err(format!(
        "interface names ({name:?}) are resolved on Linux only: give the interface index instead"
    ))
}

/// Longest name accepted in an error message before it is cut short.
const SHOWN: usize = 64;

/// `input` quoted with escapes (so that a space, a tab or an empty label shows), cut short when
/// long.
pub(crate) fn shown(input: &str) -> String {
    if input.chars().count() <= SHOWN {
        return format!("{input:?}");
    }
    let head: String = input.chars().take(SHOWN).collect();
    format!("{head:?}... ({} bytes)", input.len())
}

/// Parses a query name; a name without a trailing dot is taken as fully qualified (no search
/// list is applied: probes ask exactly the name given). The root is `.`; an empty input is an
/// error. A name in Unicode (`bücher.example`) is converted to its ASCII (punycode) form
/// (`xn--bcher-kva.example.`) by IDNA (UTS #46), as resolvers do.
///
/// ```
/// assert_eq!(dnsprobe::parse_name("bücher.example").unwrap().to_ascii(), "xn--bcher-kva.example.");
/// let e = dnsprobe::parse_name("a..b").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid query name "a..b": empty label after "a." (two dots in a row)"#);
/// assert!(dnsprobe::parse_name("").is_err());
/// assert!(dnsprobe::parse_name(".").unwrap().is_root());
/// ```
pub fn parse_name(input: &str) -> Result<Name, SpecError> {
    let s = input.trim();
    let err = |reason: String| SpecError::InvalidName {
        input: input.to_owned(),
        reason,
    };
    if s.is_empty() {
        return Err(err("the name is empty (the root is \".\")".into()));
    }
    if let Some((i, c)) = s
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        return Err(err(format!(
            "{} at byte {i}: a host name has none",
            char_name(c)
        )));
    }
    let ascii = if s.is_ascii() {
        s.to_owned()
    } else {
        idna::domain_to_ascii(s).map_err(|_| {
            err("not a valid internationalized name (IDNA/UTS #46 refuses it); give its punycode form (xn--...) instead".into())
        })?
    };
    if !ascii.contains('\\') {
        label_errors(&ascii).map_err(err)?;
    }
    let mut name = Name::from_ascii(&ascii).map_err(|e| {
        // hickory-proto's reasons repeat the input; say it once, in the error's own words.
        let reason = e
            .to_string()
            .replace(&ascii, "the name")
            .replace(s, "the name");
        err(reason)
    })?;
    name.set_fqdn(true);
    Ok(name)
}

/// A control character or a space, by name.
fn char_name(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\t' => "a tab".into(),
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        c => format!("the character {:?} (U+{:04X})", c, u32::from(c)),
    }
}

/// Empty labels, labels over 63 bytes and names over 255 bytes, said plainly.
fn label_errors(s: &str) -> Result<(), String> {
    if s == "." {
        return Ok(());
    }
    let body = s.strip_suffix('.').unwrap_or(s);
    let mut wire = 1; // the root label
    let mut before = String::new();
    for (i, label) in body.split('.').enumerate() {
        if label.is_empty() {
            return Err(if before.is_empty() {
                "empty label at the start (a leading dot)".into()
            } else {
                format!("empty label after {before:?} (two dots in a row)")
            });
        }
        if label.len() > 63 {
            return Err(format!(
                "label {} is {} bytes long, more than 63",
                i + 1,
                label.len()
            ));
        }
        wire += label.len() + 1;
        before.push_str(label);
        before.push('.');
    }
    if wire > 255 {
        return Err(format!(
            "{wire} bytes in wire format, more than 255 (the name is {} bytes)",
            s.len()
        ));
    }
    Ok(())
}

/// The name of a record type as `dig` writes it: its mnemonic (`A`, `SRV`), or `TYPE<n>` for a
/// type without one (RFC 3597), never hickory-proto's `Unknown`.
///
/// ```
/// use dnsprobe::{parse_record_type, record_type_name};
/// assert_eq!(record_type_name(parse_record_type("TYPE65535").unwrap()), "TYPE65535");
/// assert_eq!(record_type_name(parse_record_type("type1").unwrap()), "A");
/// ```
pub fn record_type_name(t: RecordType) -> String {
    match t {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        t => t.to_string(),
    }
}

/// Parses a query type by its mnemonic (`A`, `aaaa`, `SRV`, `TXT`, ...) or as `TYPE<n>`.
pub fn parse_record_type(input: &str) -> Result<RecordType, SpecError> {
    let upper = input.trim().to_ascii_uppercase();
    if let Some(Ok(n)) = upper.strip_prefix("TYPE").map(u16::from_str) {
        return Ok(RecordType::from(n));
    }
    // hickory-proto's `FromStr` does not know IXFR.
    if upper == "IXFR" {
        return Ok(RecordType::IXFR);
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

    #[test]
    fn ipv6_with_what_looks_like_a_port_is_refused() {
        for (input, meant) in [
            ("::1:5399", "[::1]:5399"),
            ("fd00::1:53", "[fd00::1]:53"),
            ("::1:53000", "[::1]:53000"),
            ("fe80::1%2:53", "[fe80::1%2]:53"),
        ] {
            let e = parse_target(input, 53).unwrap_err();
            assert!(
                e.to_string().contains(&format!("did you mean {meant}?")),
                "{input}: {e}"
            );
        }
        // Not ambiguous: nothing before the last group is an address, or no port in it.
        for (input, addr) in [
            ("::1", "[::1]:53"),
            ("fd00::a", "[fd00::a]:53"),
            ("::53", "[::53]:53"),
            ("1:2:3:4:5:6:7:8", "[1:2:3:4:5:6:7:8]:53"),
            ("::1:0", "[::1:0]:53"),
            ("[::1:5399]", "[::1:5399]:53"),
            ("[::1]:5399", "[::1]:5399"),
        ] {
            assert_eq!(
                parse_target(input, 53).unwrap().to_string(),
                addr,
                "{input}"
            );
        }
    }

    #[test]
    fn ipv6_zones() {
        let t = parse_target("[fe80::1%7]:5353", 53).unwrap();
        assert_eq!(t.to_string(), "[fe80::1%7]:5353");
        let SocketAddr::V6(v6) = parse_target("fe80::1%3", 53).unwrap() else {
            panic!("not v6")
        };
        assert_eq!((v6.scope_id(), v6.port()), (3, 53));
        #[cfg(target_os = "linux")]
        {
            let SocketAddr::V6(lo) = parse_target("fe80::1%lo", 53).unwrap() else {
                panic!("not v6")
            };
            assert!(lo.scope_id() > 0);
            let e = parse_target("fe80::1%nosuchif0", 53).unwrap_err();
            assert!(e.to_string().contains("no interface named"), "{e}");
            assert!(parse_target("fe80::1%../x", 53).is_err());
        }
        assert!(parse_target("fe80::1%", 53).is_err());
    }

    #[test]
    fn careless_names_say_what_is_wrong_once() {
        let e = |s: &str| parse_name(s).unwrap_err().to_string();
        assert!(e("").contains("the root is \".\""), "{}", e(""));
        assert!(e("   ").contains("empty"));
        assert_eq!(
            e("kube dns.local"),
            r#"invalid query name "kube dns.local": a space at byte 4: a host name has none"#
        );
        assert!(e("a\tb").contains(r#""a\tb""#), "{}", e("a\tb"));
        assert!(e(".a").contains("leading dot"));
        let long = "x".repeat(70);
        let msg = e(&format!("{long}.example"));
        assert_eq!(msg.matches(&"x".repeat(60)).count(), 1, "said once: {msg}");
        assert!(msg.contains("70 bytes long, more than 63"), "{msg}");
        let huge = vec!["abcdefgh"; 40].join(".");
        let msg = e(&huge);
        assert!(msg.contains("more than 255"), "{msg}");
        assert!(msg.len() < 200, "a long name is cut short: {msg}");
        assert_eq!(
            parse_name("Bücher.example.").unwrap().to_ascii(),
            "xn--bcher-kva.example."
        );
        assert!(parse_name(".").unwrap().is_root());
    }

    #[test]
    fn numeric_types_keep_their_number() {
        assert_eq!(
            record_type_name(parse_record_type("TYPE65535").unwrap()),
            "TYPE65535"
        );
        assert_eq!(
            record_type_name(parse_record_type("type65280").unwrap()),
            "TYPE65280"
        );
        assert_eq!(record_type_name(RecordType::SRV), "SRV");
        assert_eq!(parse_record_type("ixfr").unwrap(), RecordType::IXFR);
        assert_eq!(parse_record_type("AXFR").unwrap(), RecordType::AXFR);
    }

    #[test]
    fn zone_transfers_only_over_tcp() {
        let s = ProbeSpec::new("127.0.0.1:53".parse().unwrap()).with_query_type(RecordType::IXFR);
        assert!(matches!(
            s.check(),
            Err(SpecError::ZoneTransferOverUdp { .. })
        ));
        assert!(
            s.clone()
                .with_transport(TransportMode::Both)
                .check()
                .is_err()
        );
        assert!(s.with_transport(TransportMode::Tcp).check().is_ok());
    }
}
