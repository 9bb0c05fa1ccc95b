//! conntrack: the kernel's statistics (`/proc/net/stat/nf_conntrack`) and its table of UDP
//! flows to the DNS Service.
//!
//! Two faults of the connection tracker make DNS fail while every link and route is fine:
//!
//! - **Insert failures.** glibc sends the A and AAAA questions back to back from one socket;
//!   when both packets create a conntrack entry at once on two CPUs, the second cannot be
//!   inserted (`insert_failed`) and is dropped — the client waits 5 s and asks again. A full
//!   table drops new flows too (`drop`, `early_drop`).
//! - **Stale entries.** A UDP entry keeps the NAT decision of its first packet: after a CoreDNS
//!   pod is replaced, a client that keeps its source port keeps being sent to the old pod's
//!   address until the entry expires or is deleted (kube-proxy deletes them; when it does not,
//!   those clients get no answer).
//!
//! Pure here: the statistics' parser and arithmetic ([`ConntrackStats`], [`ConntrackGrowth`]),
//! the stale-entry rule ([`stale_entries`]) and the findings. Reading them from a namespace is
//! Linux-only ([`read_stats`], [`dump_udp_entries`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::finding::{Finding, FindingCode};

/// The statistics that tell of trouble, in the order metrics and JSON show them.
pub const WATCHED: [&str; 5] = [
    "insert_failed",
    "drop",
    "early_drop",
    "clash_resolve",
    "invalid",
];

/// One reading of `/proc/net/stat/nf_conntrack` of a namespace: each column summed over the
/// CPUs (one row per CPU, hexadecimal), except `entries`, which every row repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConntrackStats {
    counters: BTreeMap<String, u64>,
}

/// A file that is not the conntrack statistics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a conntrack statistics file: {0}")]
pub struct StatsParseError(String);

impl ConntrackStats {
    /// Parses the file's text: a header of column names, then one row of hexadecimal numbers
    /// per CPU. The columns are taken from the header, so kernels with other columns (older ones
    /// lack `clash_resolve`) parse too.
    ///
    /// ```
    /// let s = hc_netns::ConntrackStats::parse(
    ///     "entries insert_failed drop\n00000002 00000001 00000000\n00000002 0000000a 00000003\n",
    /// ).unwrap();
    /// assert_eq!(s.get("insert_failed"), Some(11));
    /// assert_eq!(s.get("entries"), Some(2));
    /// assert_eq!(s.get("clash_resolve"), None);
    /// ```
    pub fn parse(text: &str) -> Result<Self, StatsParseError> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| StatsParseError("empty".into()))?
            .split_whitespace()
            .collect();
        if header.is_empty()
            || !(header.iter()).all(|h| h.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        {
            return Err(StatsParseError(format!("header {header:?}")));
        }
        let mut counters: BTreeMap<String, u64> = BTreeMap::new();
        let mut rows = 0;
        for (i, line) in lines.enumerate() {
            let values: Vec<&str> = line.split_whitespace().collect();
            if values.len() != header.len() {
                return Err(StatsParseError(format!(
                    "row {} has {} columns, the header {}",
                    i + 1,
                    values.len(),
                    header.len()
                )));
            }
            for (name, v) in header.iter().zip(values) {
                // Kernels name the column `clashres`; its counter is `clash_resolve`.
                let name = if *name == "clashres" {
                    &"clash_resolve"
                } else {
                    name
                };
                let v = u64::from_str_radix(v, 16)
                    .map_err(|_| StatsParseError(format!("{name} = {v:?} is not hexadecimal")))?;
                let slot = counters.entry((*name).to_owned()).or_default();
                *slot = if *name == "entries" {
                    v
                } else {
                    slot.saturating_add(v)
                };
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(StatsParseError("no CPU row".into()));
        }
        Ok(ConntrackStats { counters })
    }

    /// A column's value, if the kernel has it.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.counters.get(name).copied()
    }

    /// How much each [`WATCHED`] counter grew since `earlier` (a counter that went down — the
    /// namespace was recreated — counts from 0).
    pub fn growth_since(&self, earlier: &ConntrackStats) -> ConntrackGrowth {
        let mut g = BTreeMap::new();
        for name in WATCHED {
            if let Some(now) = self.get(name) {
                let before = earlier.get(name).unwrap_or(0);
                let grew = if now >= before { now - before } else { now };
                g.insert(name, grew);
            }
        }
        ConntrackGrowth(g)
    }
}

/// How much the [`WATCHED`] counters grew between two readings (those the kernel has). Serializes
/// as `{ "insert_failed": 0, "drop": 0, ... }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConntrackGrowth(BTreeMap<&'static str, u64>);

impl ConntrackGrowth {
    /// The growth of one counter (0 when the kernel does not have it).
    pub fn of(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Each counter and its growth.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}

/// Findings from the conntrack counters' growth during a check in which DNS failed: in the
/// namespace itself (`own`) and in the node's (`node`, where Service NAT happens; `None` for the
/// node itself). Nothing when DNS did not fail: the counters alone are metrics, not a fault of
/// this path.
pub fn conntrack_findings(
    own: Option<&ConntrackGrowth>,
    node: Option<&ConntrackGrowth>,
    dns_failed: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if !dns_failed {
        return out;
    }
    for (g, place) in [(own, "this namespace"), (node, "the node's namespace")] {
        let Some(g) = g else { continue };
        let failed = g.of("insert_failed");
        if failed > 0 {
            out.push(Finding::new(
                FindingCode::ConntrackInsertFailed,
                format!(
                    "conntrack insert_failed grew by {failed} in {place} while DNS failed: new UDP flows were dropped because their conntrack entry could not be inserted (the A/AAAA race of parallel queries from one socket; `conntrack -S`; `options single-request-reopen` or NodeLocal DNSCache avoid it)"
                ),
            ));
        }
        let (drop, early) = (g.of("drop"), g.of("early_drop"));
        if drop + early > 0 {
            out.push(Finding::new(
                FindingCode::ConntrackTableFull,
                format!(
                    "conntrack drop grew by {drop} and early_drop by {early} in {place} while DNS failed: the conntrack table is full (`conntrack -C` against `sysctl net.netfilter.nf_conntrack_max`; `conntrack -S`)"
                ),
            ));
        }
    }
    out
}

/// One conntrack entry of a UDP flow, as `conntrack -L -p udp` shows it: the original
/// direction's source and destination, and the source of the reply direction (where NAT sends
/// the flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpEntry {
    /// The client: original source address and port.
    pub client: SocketAddr,
    /// Where the client sent it: original destination (a Service address).
    pub dest: SocketAddr,
    /// Who answers: the reply direction's source (after DNAT, a backend's address).
    pub backend: SocketAddr,
}

/// UDP entries to one Service address that still lead to an address that is no longer a DNS
/// endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleDestination {
    /// The Service address the clients send to.
    pub service: SocketAddr,
    /// The gone backend the entries still lead to.
    pub backend: SocketAddr,
    /// The clients (address and source port) whose entries do, in the table's order.
    pub clients: Vec<SocketAddr>,
}

impl fmt::Display for StaleDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.clients.len();
        let shown: Vec<String> = self.clients.iter().take(3).map(|c| c.to_string()).collect();
        let more = match n.saturating_sub(shown.len()) {
            0 => String::new(),
            m => format!(" and {m} more"),
        };
        let (entries, lead, ports) = if n == 1 {
            ("entry", "leads", "that source port")
        } else {
            ("entries", "lead", "those source ports")
        };
        write!(
            f,
            "{n} UDP conntrack {entries} for {} still {lead} to {}, which is no longer a DNS endpoint: clients reusing {ports} ({}{more}) get no answer",
            self.service,
            self.backend,
            shown.join(", "),
        )
    }
}

/// The entries to one of `services` that NAT sends to an address that is neither the Service's
/// own nor one of `endpoints` (the DNS pods that exist now), grouped by (service, backend).
/// Nothing when `endpoints` is empty: without the current endpoints, every NAT'ed entry would
/// look stale.
///
/// ```
/// use hc_netns::{UdpEntry, stale_entries};
/// let vip = "10.96.0.10:53".parse().unwrap();
/// let e = |client: &str, backend: &str| UdpEntry {
///     client: client.parse().unwrap(), dest: vip, backend: backend.parse().unwrap(),
/// };
/// let table = [e("10.244.1.10:40000", "10.244.0.3:53"), e("10.244.1.11:40001", "10.244.0.2:53")];
/// let stale = stale_entries(&table, &[vip], &["10.244.0.2".parse().unwrap()]);
/// assert_eq!(stale.len(), 1);
/// assert_eq!(stale[0].backend.to_string(), "10.244.0.3:53");
/// ```
pub fn stale_entries(
    entries: &[UdpEntry],
    services: &[SocketAddr],
    endpoints: &[IpAddr],
) -> Vec<StaleDestination> {
    let mut out: Vec<StaleDestination> = Vec::new();
    if endpoints.is_empty() {
        return out;
    }
    for e in entries.iter().filter(|e| services.contains(&e.dest)) {
        let b = e.backend.ip();
        if b == e.dest.ip() || endpoints.contains(&b) {
            continue;
        }
        match out
            .iter_mut()
            .find(|s| s.service == e.dest && s.backend == e.backend)
        {
            Some(s) => s.clients.push(e.client),
            None => out.push(StaleDestination {
                service: e.dest,
                backend: e.backend,
                clients: vec![e.client],
            }),
        }
    }
    out
}

/// The `conntrack-stale-endpoint` finding for one stale destination, with the commands that
/// list and clear its entries.
pub fn stale_finding(s: &StaleDestination) -> Finding {
    let (svc, gone) = (s.service.ip(), s.backend.ip());
    let fam = if svc.is_ipv6() { " -f ipv6" } else { "" };
    Finding::for_target(
        FindingCode::ConntrackStaleEndpoint,
        s.service,
        format!(
            "{s} (`conntrack -L{fam} -p udp --orig-dst {svc} --reply-src {gone}`; clear them with `conntrack -D{fam} -p udp --orig-dst {svc} --reply-src {gone}`)"
        ),
    )
}

#[cfg(target_os = "linux")]
pub use linux::{dump_udp_entries, read_stats};

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Read;
    use std::net::{IpAddr, SocketAddr};
    use std::path::Path;

    use netlink_packet_netfilter::conntrack::{
        ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple,
    };
    use netlink_packet_netfilter::{
        NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
    };

    use super::{ConntrackStats, UdpEntry};
    use crate::error::NetnsError;

    /// The statistics file of the calling thread's network namespace (`/proc/net` follows the
    /// process's main thread, not a thread that entered another namespace).
    const STATS: &str = "/proc/thread-self/net/stat/nf_conntrack";

    /// The most of the statistics file read: one row of about 155 bytes per possible CPU, so
    /// some 1,600 CPUs fit (`crate::read_small`'s 64 KiB would stop at about 400).
    const PROC_LIMIT: u64 = 256 * 1024;

    /// Reads the statistics file, at most [`PROC_LIMIT`] bytes (a longer one fails to parse:
    /// its last row is cut).
    pub(crate) fn read_proc_file(path: &Path) -> std::io::Result<String> {
        let mut text = String::new();
        std::fs::File::open(path)?
            .take(PROC_LIMIT)
            .read_to_string(&mut text)?;
        Ok(text)
    }

    /// The conntrack statistics of the namespace at `path` (`None`: the caller's own), read on
    /// a dedicated thread that enters it. `Ok(None)` when the kernel has no connection tracker
    /// (the file does not exist).
    pub fn read_stats(path: Option<&Path>) -> Result<Option<ConntrackStats>, NetnsError> {
        let read = || match read_proc_file(Path::new(STATS)) {
            Ok(text) => ConntrackStats::parse(&text)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        crate::nfnl::dump_in(path, STATS, read)
    }

    /// Reads the statistics in the calling thread's namespace (for a caller already inside).
    pub(crate) fn stats_here() -> Option<ConntrackStats> {
        read_proc_file(Path::new(STATS))
            .ok()
            .and_then(|t| ConntrackStats::parse(&t).ok())
    }

    /// Entries a dump reads at most (about 300 bytes each on the wire).
    const MAX_ENTRIES: usize = 1_000_000;

    /// The UDP entries of the conntrack table of the namespace at `path` (`None`: the caller's
    /// own), over ctnetlink (`conntrack -L -p udp`), keeping those whose original destination
    /// port is one of `ports`. Needs CAP_NET_ADMIN.
    pub fn dump_udp_entries(
        path: Option<&Path>,
        ports: &[u16],
    ) -> Result<Vec<UdpEntry>, NetnsError> {
        let work = || {
            let mut out = Vec::new();
            let request = NetfilterMessage::new(
                NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
                ConntrackMessage::Get(vec![]),
            );
            crate::nfnl::dump(request, MAX_ENTRIES, |inner, _| {
                if let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) = inner
                    && let Some(e) = udp_entry(&attrs)
                    && ports.contains(&e.dest.port())
                {
                    out.push(e);
                }
            })
            .map(|_| out)
            .map_err(|e| e.to_string())
        };
        crate::nfnl::dump_in(path, "conntrack dump", work)
    }

    /// (protocol, source, destination) of a tuple.
    fn tuple(t: &[Tuple]) -> Option<(Protocol, SocketAddr, SocketAddr)> {
        let (mut src, mut dst, mut sport, mut dport, mut proto) = (None, None, None, None, None);
        for part in t {
            match part {
                Tuple::Ip(ips) => {
                    for ip in ips {
                        match ip {
                            IPTuple::SourceAddress(a) => src = Some(*a),
                            IPTuple::DestinationAddress(a) => dst = Some(*a),
                            _ => {}
                        }
                    }
                }
                Tuple::Proto(ps) => {
                    for p in ps {
                        match p {
                            ProtoTuple::Protocol(x) => proto = Some(*x),
                            ProtoTuple::SourcePort(x) => sport = Some(*x),
                            ProtoTuple::DestinationPort(x) => dport = Some(*x),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let sa = |ip: Option<IpAddr>, port: Option<u16>| Some(SocketAddr::new(ip?, port?));
        Some((proto?, sa(src, sport)?, sa(dst, dport)?))
    }

    fn udp_entry(attrs: &[ConntrackAttribute]) -> Option<UdpEntry> {
        let (mut orig, mut reply) = (None, None);
        for a in attrs {
            match a {
                ConntrackAttribute::CtaTupleOrig(t) => orig = tuple(t),
                ConntrackAttribute::CtaTupleReply(t) => reply = tuple(t),
                _ => {}
            }
        }
        let (proto, client, dest) = orig?;
        let (_, backend, _) = reply?;
        (proto == Protocol::Udp).then_some(UdpEntry {
            client,
            dest,
            backend,
        })
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::stats_here;

#[cfg(test)]
mod tests {
    use super::*;

    /// This kernel's header (6.x), two CPUs.
    const TWO_CPUS: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
0000000c  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 00000001 00000000 00000000 00000000  00000000 00000000 00000000 00000000
0000000c  00000002 00000000 00000000 00000001 00000000 00000000 00000000 00000000 000000ff 00000004 00000000 00000000  00000000 00000000 00000000 00000000
";

    #[test]
    fn per_cpu_rows_are_summed_and_entries_is_not() {
        let s = ConntrackStats::parse(TWO_CPUS).unwrap();
        assert_eq!(s.get("entries"), Some(12));
        assert_eq!(s.get("insert_failed"), Some(256));
        assert_eq!(s.get("drop"), Some(4));
        assert_eq!(s.get("invalid"), Some(4));
        assert_eq!(
            s.get("clash_resolve"),
            Some(2),
            "the kernel's `clashres` column"
        );
        for bad in [
            "",
            "entries drop\n",
            "entries drop\n1 2 3\n",
            "entries drop\nzz 00\n",
            "<html>\n1\n",
        ] {
            assert!(ConntrackStats::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn growth_is_per_counter_and_survives_a_reset() {
        let before = ConntrackStats::parse(
            "entries insert_failed drop early_drop clash_resolve\n1 5 0 0 9\n",
        )
        .unwrap();
        let after = ConntrackStats::parse(
            "entries insert_failed drop early_drop clash_resolve\n1 7 3 0 2\n",
        )
        .unwrap();
        let g = after.growth_since(&before);
        assert_eq!(g.of("insert_failed"), 2);
        assert_eq!(g.of("drop"), 3);
        assert_eq!(g.of("early_drop"), 0);
        assert_eq!(
            g.of("clash_resolve"),
            2,
            "went down: a new namespace, counted from 0"
        );
        assert_eq!(g.of("invalid"), 0, "absent here");
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"clash_resolve":2,"drop":3,"early_drop":0,"insert_failed":2}"#
        );
    }

    #[test]
    fn findings_need_a_dns_failure_and_growth() {
        let grew = |s: &str| {
            let zero = ConntrackStats::parse("insert_failed drop early_drop\n0 0 0\n").unwrap();
            ConntrackStats::parse(&format!("insert_failed drop early_drop\n{s}\n"))
                .unwrap()
                .growth_since(&zero)
        };
        let codes = |f: Vec<Finding>| f.into_iter().map(|f| f.code.as_str()).collect::<Vec<_>>();
        let race = grew("3 0 0");
        let full = grew("0 1 5");
        let none = grew("0 0 0");
        assert!(conntrack_findings(Some(&race), None, false).is_empty());
        assert_eq!(
            codes(conntrack_findings(Some(&race), None, true)),
            ["conntrack-insert-failed"]
        );
        assert_eq!(
            codes(conntrack_findings(Some(&none), Some(&full), true)),
            ["conntrack-table-full"]
        );
        assert!(conntrack_findings(Some(&none), Some(&none), true).is_empty());
        let f = conntrack_findings(None, Some(&race), true);
        assert!(
            f[0].message.contains("grew by 3 in the node's namespace"),
            "{}",
            f[0]
        );
    }

    #[test]
    fn stale_entries_lead_to_gone_backends_only() {
        let vip: SocketAddr = "10.96.0.10:53".parse().unwrap();
        let other: SocketAddr = "10.96.0.11:53".parse().unwrap();
        let e = |client: &str, dest: SocketAddr, backend: &str| UdpEntry {
            client: client.parse().unwrap(),
            dest,
            backend: backend.parse().unwrap(),
        };
        let table = [
            e("10.244.1.10:40000", vip, "10.244.0.3:53"),
            e("10.244.1.11:40001", vip, "10.244.0.3:53"),
            e("10.244.1.12:40002", vip, "10.244.0.2:53"),
            // Not NAT'ed (the node's own lookups of a pod address): never stale.
            e(
                "10.244.1.12:40003",
                "10.244.0.9:53".parse().unwrap(),
                "10.244.0.9:53",
            ),
            // Another Service: not asked about.
            e("10.244.1.13:40004", other, "10.244.0.7:53"),
            e("10.244.1.14:40005", vip, "10.96.0.10:53"),
        ];
        let endpoints = ["10.244.0.2".parse().unwrap(), "10.244.0.4".parse().unwrap()];
        let stale = stale_entries(&table, &[vip], &endpoints);
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert_eq!(stale[0].backend.to_string(), "10.244.0.3:53");
        assert_eq!(stale[0].clients.len(), 2);
        let f = stale_finding(&stale[0]);
        assert_eq!(f.code.as_str(), "conntrack-stale-endpoint");
        assert_eq!(f.target, Some(vip));
        assert!(
            f.message.starts_with(
                "2 UDP conntrack entries for 10.96.0.10:53 still lead to 10.244.0.3:53"
            ),
            "{f}"
        );
        assert!(f.message.contains("--reply-src 10.244.0.3"), "{f}");
        assert!(
            stale_entries(&table, &[vip], &[]).is_empty(),
            "no endpoints known: no verdict"
        );
    }
}
