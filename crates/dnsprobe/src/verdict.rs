//! UDP and TCP side by side: the one place that says "UDP fails while TCP works" — the failure
//! an HTTP liveness probe (and a TCP check) cannot see.

use std::fmt;

/// How one DNS server fared over UDP and over TCP, compared.
///
/// Each side is `Some(true)` when the path works (an answer came back, right or wrong: see
/// [`crate::ProbeReport::path_works`]), `Some(false)` when it fails, `None` when it was not
/// checked.
///
/// ```
/// use dnsprobe::TransportVerdict;
///
/// assert_eq!(TransportVerdict::of(Some(false), Some(true)), TransportVerdict::UdpBlocked);
/// assert_eq!(TransportVerdict::of(Some(false), None), TransportVerdict::UdpFails);
/// assert_eq!(TransportVerdict::UdpBlocked.as_str(), "udp-blocked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportVerdict {
    /// Every transport checked works.
    Works,
    /// UDP fails while TCP works: a filter, conntrack, or a server that lost its UDP listener.
    UdpBlocked,
    /// TCP fails while UDP works.
    TcpBlocked,
    /// Both fail.
    Unreachable,
    /// UDP fails and TCP was not checked.
    UdpFails,
    /// TCP fails and UDP was not checked.
    TcpFails,
    /// Neither was checked.
    Unknown,
}

impl TransportVerdict {
    /// Compares the two sides.
    pub fn of(udp_works: Option<bool>, tcp_works: Option<bool>) -> Self {
        match (udp_works, tcp_works) {
            (Some(false), Some(true)) => TransportVerdict::UdpBlocked,
            (Some(true), Some(false)) => TransportVerdict::TcpBlocked,
            (Some(false), Some(false)) => TransportVerdict::Unreachable,
            (Some(false), None) => TransportVerdict::UdpFails,
            (None, Some(false)) => TransportVerdict::TcpFails,
            (None, None) => TransportVerdict::Unknown,
            _ => TransportVerdict::Works,
        }
    }

    /// Stable kebab-case name: `works`, `udp-blocked`, `tcp-blocked`, `unreachable`,
    /// `udp-fails`, `tcp-fails`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportVerdict::Works => "works",
            TransportVerdict::UdpBlocked => "udp-blocked",
            TransportVerdict::TcpBlocked => "tcp-blocked",
            TransportVerdict::Unreachable => "unreachable",
            TransportVerdict::UdpFails => "udp-fails",
            TransportVerdict::TcpFails => "tcp-fails",
            TransportVerdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for TransportVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination() {
        use TransportVerdict::*;
        let t = [None, Some(true), Some(false)];
        let want = [
            [Unknown, Works, TcpFails],
            [Works, Works, TcpBlocked],
            [UdpFails, UdpBlocked, Unreachable],
        ];
        for (i, u) in t.iter().enumerate() {
            for (j, c) in t.iter().enumerate() {
                assert_eq!(
                    TransportVerdict::of(*u, *c),
                    want[i][j],
                    "udp {u:?} tcp {c:?}"
                );
            }
        }
    }
}
