//! What a diagnosis finds: a typed code with a stable kebab-case name, a message in plain words
//! that names the command a person would run to see it, and the DNS target concerned.

use std::fmt;
use std::net::SocketAddr;

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
    /// More search domains than glibc's limit (6).
    ResolvConfTooManySearch,
    /// UDP to a target fails while TCP to the same target works.
    UdpBlocked,
    /// TCP to a target fails while UDP to the same target works.
    TcpBlocked,
    /// Neither UDP nor TCP reaches a target.
    DnsUnreachable,
    /// The namespace could not be entered or inspected (it vanished, or a capability is missing).
    NetnsUnavailable,
    /// A probe failed with this dnsprobe failure kind (`timeout`, `refused`, `rcode`,
    /// `wrong-answer`, ...).
    Probe(&'static str),
}

impl FindingCode {
    /// Every code this crate emits itself (probe kinds come from the prober).
    pub const OWN: [FindingCode; 15] = [
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
            FindingCode::Probe(kind) => kind,
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding about one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind.
    pub code: FindingCode,
    /// In plain words, with the command that shows it.
    pub message: String,
    /// The DNS target concerned, if any.
    pub target: Option<SocketAddr>,
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

/// The outcome of one probe, as the diagnosis needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Healthy.
    Ok,
    /// Failed.
    Failed {
        /// The failure kind's stable name (`timeout`, `refused`, `wrong-answer`, ...).
        kind: &'static str,
        /// The failure in plain words.
        message: String,
        /// True when nothing usable came back (timeout, refused, unreachable, I/O, malformed):
        /// only then is the path suspect; a wrong answer is the server's.
        path: bool,
    },
}

/// Findings from a UDP probe of `target` and, when UDP failed on the path, a TCP probe of the
/// same target: the probe's own kind, then `udp-blocked` (TCP works) or `dns-unreachable`
/// (TCP fails too).
pub fn transport_findings(
    target: SocketAddr,
    udp: &ProbeOutcome,
    tcp: Option<&ProbeOutcome>,
) -> Vec<Finding> {
    let ProbeOutcome::Failed {
        kind,
        message,
        path,
    } = udp
    else {
        return match tcp {
            Some(ProbeOutcome::Failed { message, .. }) => vec![Finding::for_target(
                FindingCode::TcpBlocked,
                target,
                format!("TCP to {target} fails ({message}) while UDP works"),
            )],
            _ => vec![],
        };
    };
    let mut out = vec![Finding::for_target(
        FindingCode::Probe(kind),
        target,
        format!("UDP to {target}: {message}"),
    )];
    if !path {
        return out;
    }
    match tcp {
        Some(ProbeOutcome::Ok) => out.push(Finding::for_target(
            FindingCode::UdpBlocked,
            target,
            format!("UDP to {target} fails ({message}) while TCP works: a filter or conntrack problem on the UDP path"),
        )),
        Some(ProbeOutcome::Failed { message: tm, .. }) => out.push(Finding::for_target(
            FindingCode::DnsUnreachable,
            target,
            format!("{target} unreachable over UDP ({message}) and TCP ({tm})"),
        )),
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> SocketAddr {
        "10.96.0.10:53".parse().unwrap()
    }

    fn failed(kind: &'static str, path: bool) -> ProbeOutcome {
        ProbeOutcome::Failed {
            kind,
            message: format!("{kind} happened"),
            path,
        }
    }

    fn codes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn udp_vs_tcp() {
        assert!(transport_findings(t(), &ProbeOutcome::Ok, None).is_empty());
        assert_eq!(
            codes(&transport_findings(
                t(),
                &failed("timeout", true),
                Some(&ProbeOutcome::Ok)
            )),
            ["timeout", "udp-blocked"]
        );
        assert_eq!(
            codes(&transport_findings(
                t(),
                &failed("refused", true),
                Some(&failed("refused", true))
            )),
            ["refused", "dns-unreachable"]
        );
        assert_eq!(
            codes(&transport_findings(
                t(),
                &failed("wrong-answer", false),
                Some(&ProbeOutcome::Ok)
            )),
            ["wrong-answer"],
            "a wrong answer is the server's, not the path's"
        );
        assert_eq!(
            codes(&transport_findings(
                t(),
                &ProbeOutcome::Ok,
                Some(&failed("timeout", true))
            )),
            ["tcp-blocked"]
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
