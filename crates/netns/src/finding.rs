//! What a diagnosis finds: a typed code with a stable kebab-case name, a message in plain words
//! that names the command a person would run to see it, and the DNS target concerned.

use std::fmt;
use std::net::SocketAddr;

use dnsprobe::{Parallel, ProbeReport, TransportVerdict};

/// The kind of a finding. [`FindingCode::as_str`] is a contract (metric labels, JSON): never
/// renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FindingCode {
    /// The namespace has no route to a DNS target (`ip route get` fails).
    NoRoute,
    /// The namespace has no default route.
    NoDefaultRoute,
    /// An interface of the namespace (other than `lo`) is down, or there is none.
    LinkDown,
    /// No interface of the namespace (other than `lo`) has an address.
    NoAddress,
    /// The node-side peer of the pod's veth is not in the node's namespace.
    VethPeerMissing,
    /// The node-side peer of the pod's veth is down.
    VethPeerDown,
    /// The node-side peer is neither enslaved to a bridge nor the target of a host route to the
    /// pod's address.
    VethDetached,
    /// The namespace's resolv.conf cannot be read.
    ResolvConfMissing,
    /// None of the nameservers glibc uses is an expected DNS service address.
    ResolvConfNameserver,
    /// More nameservers than glibc uses (3): the rest are silently ignored.
    ResolvConfTooManyNameservers,
    /// More search domains than glibc (>= 2.26) and Kubernetes (>= 1.28) allow (32). A warning.
    ResolvConfTooManySearch,
    /// UDP to a target fails while TCP to the same target works.
    UdpBlocked,
    /// TCP to a target fails while UDP to the same target works.
    TcpBlocked,
    /// Neither UDP nor TCP reaches a target.
    DnsUnreachable,
    /// The namespace could not be entered or inspected (it vanished, or a capability is missing).
    NetnsUnavailable,
    /// The node-local DNS cache (NodeLocal DNSCache) a pod uses fails, while CoreDNS behind it
    /// answers from the same namespace.
    NodelocalCacheDown,
    /// The node-local DNS cache answers names it holds, but a name it must ask CoreDNS for
    /// (a cache miss) fails: its upstream is broken.
    NodelocalUpstreamFailing,
    /// A lookup goes through many search domains before the name itself: many queries for one
    /// lookup (search amplification). A warning.
    SearchAmplification,
    /// A short name (`kubernetes.default`) does not resolve the way the pod's C library looks it
    /// up through its resolv.conf (search list, ndots, nameservers).
    ClientLookupFailed,
    /// A short name resolves through the pod's resolv.conf, but only after a lost query and the
    /// C library's retry timeout (5 s by default): a glibc client waits that long. A warning.
    ClientLookupSlow,
    /// conntrack `insert_failed` grew (in the namespace or the node's) during a check in which
    /// DNS failed: new UDP flows dropped because their entry could not be inserted (the A/AAAA
    /// race).
    ConntrackInsertFailed,
    /// conntrack `drop` or `early_drop` grew during a check in which DNS failed: the table is
    /// full.
    ConntrackTableFull,
    /// UDP conntrack entries to a DNS Service address still lead to an address that is no longer
    /// a DNS endpoint (a replaced CoreDNS pod): clients keeping their source port get no answer.
    ConntrackStaleEndpoint,
    /// An nftables (or iptables-nft) rule drops or rejects DNS on the failing path: named by
    /// table, chain, handle and comment, confirmed by its counter when it has one.
    NftablesDrop,
    /// A and AAAA sent back to back from one socket (as glibc does): one of the two answers was
    /// lost while the other came (the conntrack race behind 5 s lookups).
    ParallelAnswerLost,
    /// A probe failed with this dnsprobe failure kind (`timeout`, `refused`, `rcode`,
    /// `wrong-answer`, ...).
    Probe(&'static str),
}

impl FindingCode {
    /// Every code this crate emits itself (probe kinds come from the prober).
    pub const OWN: [FindingCode; 25] = [
        FindingCode::NoRoute,
        FindingCode::NoDefaultRoute,
        FindingCode::LinkDown,
        FindingCode::NoAddress,
        FindingCode::VethPeerMissing,
        FindingCode::VethPeerDown,
        FindingCode::VethDetached,
        FindingCode::ResolvConfMissing,
        FindingCode::ResolvConfNameserver,
        FindingCode::ResolvConfTooManyNameservers,
        FindingCode::ResolvConfTooManySearch,
        FindingCode::UdpBlocked,
        FindingCode::TcpBlocked,
        FindingCode::DnsUnreachable,
        FindingCode::NetnsUnavailable,
        FindingCode::NodelocalCacheDown,
        FindingCode::NodelocalUpstreamFailing,
        FindingCode::SearchAmplification,
        FindingCode::ClientLookupFailed,
        FindingCode::ClientLookupSlow,
        FindingCode::ConntrackInsertFailed,
        FindingCode::ConntrackTableFull,
        FindingCode::ConntrackStaleEndpoint,
        FindingCode::NftablesDrop,
        FindingCode::ParallelAnswerLost,
    ];

    /// The stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::NoRoute => "no-route",
            FindingCode::NoDefaultRoute => "no-default-route",
            FindingCode::LinkDown => "link-down",
            FindingCode::NoAddress => "no-address",
            FindingCode::VethPeerMissing => "veth-peer-missing",
            FindingCode::VethPeerDown => "veth-peer-down",
            FindingCode::VethDetached => "veth-detached",
            FindingCode::ResolvConfMissing => "resolv-conf-missing",
            FindingCode::ResolvConfNameserver => "resolv-conf-nameserver",
            FindingCode::ResolvConfTooManyNameservers => "resolv-conf-too-many-nameservers",
            FindingCode::ResolvConfTooManySearch => "resolv-conf-too-many-search",
            FindingCode::UdpBlocked => "udp-blocked",
            FindingCode::TcpBlocked => "tcp-blocked",
            FindingCode::DnsUnreachable => "dns-unreachable",
            FindingCode::NetnsUnavailable => "netns-unavailable",
            FindingCode::NodelocalCacheDown => "nodelocal-cache-down",
            FindingCode::NodelocalUpstreamFailing => "nodelocal-upstream-failing",
            FindingCode::SearchAmplification => "search-amplification",
            FindingCode::ClientLookupFailed => "client-lookup-failed",
            FindingCode::ClientLookupSlow => "client-lookup-slow",
            FindingCode::ConntrackInsertFailed => "conntrack-insert-failed",
            FindingCode::ConntrackTableFull => "conntrack-table-full",
            FindingCode::ConntrackStaleEndpoint => "conntrack-stale-endpoint",
            FindingCode::NftablesDrop => "nftables-drop",
            FindingCode::ParallelAnswerLost => "parallel-answer-lost",
            FindingCode::Probe(kind) => kind,
        }
    }

    /// How serious a finding of this code is: advisory codes (glibc's limits that only cost
    /// time, search amplification, a slow but successful lookup) are warnings; every other code
    /// means the namespace cannot resolve correctly.
    pub fn severity(self) -> Severity {
        match self {
            FindingCode::ResolvConfTooManyNameservers
            | FindingCode::ResolvConfTooManySearch
            | FindingCode::SearchAmplification
            | FindingCode::ClientLookupSlow => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// How serious a finding is. Serialized as `error` or `warning` (a contract, like the codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// Advisory: the namespace still resolves; it does not make it unhealthy, raise the node
    /// condition or fire an alert.
    Warning,
    /// The namespace cannot resolve correctly: it is unhealthy.
    Error,
}

impl Severity {
    /// `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for FindingCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding about one namespace. Serializes as `{ "code", "severity", "message", "target"? }`
/// (the severity is the code's, [`FindingCode::severity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind.
    pub code: FindingCode,
    /// In plain words, with the command that shows it.
    pub message: String,
    /// The DNS target concerned, if any.
    pub target: Option<SocketAddr>,
}

impl serde::Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Finding", 4)?;
        st.serialize_field("code", &self.code)?;
        st.serialize_field("severity", self.severity().as_str())?;
        st.serialize_field("message", &self.message)?;
        match &self.target {
            Some(t) => st.serialize_field("target", t)?,
            None => st.skip_field("target")?,
        }
        st.end()
    }
}

impl Finding {
    /// A finding not tied to a target.
    pub fn new(code: FindingCode, message: impl Into<String>) -> Self {
        Finding {
            code,
            message: message.into(),
            target: None,
        }
    }

    /// How serious it is: its code's severity.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// True unless it is a warning: the namespace cannot resolve correctly.
    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// A finding about `target`.
    pub fn for_target(code: FindingCode, target: SocketAddr, message: impl Into<String>) -> Self {
        Finding {
            code,
            message: message.into(),
            target: Some(target),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Findings from a UDP probe of a target and, when UDP failed on the path, a TCP probe of the
/// same target: the UDP probe's own failure kind, then the comparison of the two transports
/// ([`dnsprobe::TransportVerdict`]): `udp-blocked` (TCP works), `dns-unreachable` (TCP fails
/// too), or `tcp-blocked` (UDP works, TCP does not).
pub fn transport_findings(udp: &ProbeReport, tcp: Option<&ProbeReport>) -> Vec<Finding> {
    let target = udp.target;
    let mut out = Vec::new();
    if let Some(f) = &udp.failure {
        out.push(Finding::for_target(
            FindingCode::Probe(f.kind().as_str()),
            target,
            format!("UDP to {target}: {f}"),
        ));
    }
    let why = |r: Option<&ProbeReport>| {
        r.and_then(|r| r.failure.as_ref())
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let (code, message) = match TransportVerdict::of(
        Some(udp.path_works()),
        tcp.map(ProbeReport::path_works),
    ) {
        TransportVerdict::UdpBlocked => (
            FindingCode::UdpBlocked,
            format!(
                "UDP to {target} fails ({}) while TCP works: a filter or conntrack problem on the UDP path",
                why(Some(udp))
            ),
        ),
        TransportVerdict::TcpBlocked => (
            FindingCode::TcpBlocked,
            format!("TCP to {target} fails ({}) while UDP works", why(tcp)),
        ),
        TransportVerdict::Unreachable => (
            FindingCode::DnsUnreachable,
            format!(
                "{target} unreachable over UDP ({}) and TCP ({})",
                why(Some(udp)),
                why(tcp)
            ),
        ),
        _ => return out,
    };
    out.push(Finding::for_target(code, target, message));
    out
}

/// For reports of several targets probed over UDP and TCP (`hc-cli probe --both`): per target,
/// the transports compared in [`transport_findings`]'s words — `udp-blocked`, `tcp-blocked` or
/// `dns-unreachable` — when they differ or both fail; in the order of the UDP reports.
pub fn compare_transports(reports: &[ProbeReport]) -> Vec<Finding> {
    let tcp_of =
        |t| (reports.iter()).find(|r| r.target == t && r.transport == dnsprobe::Transport::Tcp);
    (reports.iter())
        .filter(|r| r.transport == dnsprobe::Transport::Udp)
        .flat_map(|udp| transport_findings(udp, tcp_of(udp.target)))
        .filter(|f| {
            matches!(
                f.code,
                FindingCode::UdpBlocked | FindingCode::TcpBlocked | FindingCode::DnsUnreachable
            )
        })
        .collect()
}

/// The `parallel-answer-lost` finding of a probe whose query and companion question (A and
/// AAAA, [`dnsprobe::ProbeSpec::parallel_a_aaaa`]) went out together and one answer did not come.
pub fn parallel_finding(r: &ProbeReport) -> Option<Finding> {
    let Some(Parallel::Lost(t)) = r.parallel else {
        return None;
    };
    Some(Finding::for_target(
        FindingCode::ParallelAnswerLost,
        r.target,
        format!(
            "A and AAAA sent back to back from one socket to {} (as glibc does): the {} answer was lost while the other came; a glibc client waits its whole timeout (5 s) and asks again (`conntrack -S` for insert_failed; `options single-request-reopen` in resolv.conf, or NodeLocal DNSCache, avoid it)",
            r.target,
            dnsprobe::record_type_name(t)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsprobe::{Failure, ProbeSpec, Transport};

    fn t() -> SocketAddr {
        "10.96.0.10:53".parse().unwrap()
    }

    fn report(failure: Option<Failure>, transport: Transport) -> ProbeReport {
        let spec = ProbeSpec::new(t());
        let mut r = ProbeReport::failed(&spec, transport, Failure::Refused);
        r.failure = failure;
        r
    }

    fn codes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn transports_compared_per_target() {
        use Transport::*;
        let other: SocketAddr = "10.96.0.11:53".parse().unwrap();
        let mut refused_tcp = report(Some(Failure::Refused), Tcp);
        refused_tcp.target = other;
        let mut ok_udp = report(None, Udp);
        ok_udp.target = other;
        let reports = [
            report(Some(Failure::Refused), Udp),
            report(None, Tcp),
            ok_udp,
            refused_tcp,
        ];
        let found = compare_transports(&reports);
        assert_eq!(codes(&found), ["udp-blocked", "tcp-blocked"]);
        assert_eq!(found[1].target, Some(other));
        assert!(
            compare_transports(&reports[..1]).is_empty(),
            "UDP alone: nothing compared"
        );
    }

    #[test]
    fn udp_vs_tcp() {
        use Transport::*;
        let ok = |t| report(None, t);
        let timeout = |t| {
            report(
                Some(Failure::Timeout {
                    attempts: 1,
                    timeout: std::time::Duration::from_secs(1),
                }),
                t,
            )
        };
        let wrong = report(
            Some(Failure::WrongAnswer {
                answered: vec![],
                expected: vec![],
                exact: false,
            }),
            Udp,
        );
        assert!(transport_findings(&ok(Udp), None).is_empty());
        assert_eq!(
            codes(&transport_findings(&timeout(Udp), Some(&ok(Tcp)))),
            ["timeout", "udp-blocked"]
        );
        let refused = report(Some(Failure::Refused), Tcp);
        assert_eq!(
            codes(&transport_findings(
                &report(Some(Failure::Refused), Udp),
                Some(&refused)
            )),
            ["refused", "dns-unreachable"]
        );
        assert_eq!(
            codes(&transport_findings(&wrong, Some(&ok(Tcp)))),
            ["wrong-answer"],
            "a wrong answer is the server's, not the path's"
        );
        assert_eq!(
            codes(&transport_findings(&ok(Udp), Some(&timeout(Tcp)))),
            ["tcp-blocked"]
        );
        assert_eq!(
            codes(&transport_findings(&timeout(Udp), None)),
            ["timeout"],
            "without TCP there is nothing to compare"
        );
    }

    #[test]
    fn codes_are_unique_kebab_case() {
        let mut names: Vec<_> = FindingCode::OWN.iter().map(|c| c.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        );
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FindingCode::OWN.len());
    }
}
