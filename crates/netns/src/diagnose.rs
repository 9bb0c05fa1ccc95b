//! Why a namespace cannot reach DNS, from snapshots of its network state and the node's.
//!
//! Pure: [`diagnose_path`] and [`check_resolv_conf`] work on data ([`NetSnapshot`] is filled over
//! rtnetlink by [`crate::snapshot`] on Linux), so every rule is unit-tested on tables.
//! Messages name the `ip` command that shows the same thing.

use std::net::{IpAddr, SocketAddr};

use crate::finding::{Finding, FindingCode};
use crate::resolv::{GLIBC_MAX_NAMESERVERS, GLIBC_MAX_SEARCH, LEGACY_MAX_SEARCH, ResolvConf};

/// One network interface, as `ip -d link` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// ifindex.
    pub index: u32,
    /// Name (`eth0`).
    pub name: String,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Carrier (IFF_LOWER_UP).
    pub lower_up: bool,
    /// The loopback interface.
    pub loopback: bool,
    /// Link kind (`veth`, `bridge`, ...), if the kernel says.
    pub kind: Option<String>,
    /// IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// IFLA_LINK_NETNSID: set when the peer lives in another namespace.
    pub peer_netnsid: Option<i32>,
    /// The bridge (or bond) this link is enslaved to.
    pub master: Option<u32>,
}

/// One address, as `ip addr` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// ifindex of the interface.
    pub index: u32,
    /// The address.
    pub ip: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
}

/// One route of the main table, as `ip route` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network. A default route has `prefix_len` 0 and the unspecified address of
    /// its family ([`crate::snapshot`] fills it so); `None` stands for a default route of any
    /// family.
    pub dst: Option<IpAddr>,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Output interface.
    pub oif: Option<u32>,
    /// Next hop.
    pub gateway: Option<IpAddr>,
}

impl Route {
    /// True when `ip` falls in this route's destination.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.dst, ip) {
            (None, _) => self.prefix_len == 0,
            (Some(IpAddr::V4(net)), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (Some(IpAddr::V6(net)), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// True for a default route of `ip`'s family.
    pub fn is_default_for(&self, ip: IpAddr) -> bool {
        self.prefix_len == 0 && self.dst.is_none_or(|d| d.is_ipv4() == ip.is_ipv4())
    }
}

/// The kernel's answer to `ip route get TARGET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A route: out of this interface, maybe via a gateway.
    Route {
        /// Output interface.
        oif: Option<u32>,
        /// Next hop.
        gateway: Option<IpAddr>,
    },
    /// No route (ENETUNREACH and friends), in the kernel's words.
    Unreachable(String),
}

/// The network state of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSnapshot {
    /// Interfaces.
    pub links: Vec<Link>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Routes of the main table.
    pub routes: Vec<Route>,
    /// Route lookups made for the DNS targets.
    pub lookups: Vec<(IpAddr, Lookup)>,
}

impl NetSnapshot {
    /// The interface with ifindex `index`.
    pub fn link(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    fn name_of(&self, index: u32) -> String {
        self.link(index)
            .map_or_else(|| format!("ifindex {index}"), |l| l.name.clone())
    }

    fn addresses_of(&self, index: u32) -> impl Iterator<Item = &Address> {
        self.addresses.iter().filter(move |a| a.index == index)
    }
}

fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// Diagnoses the path from a namespace (`pod`) to the DNS `targets`, with the node's namespace
/// (`node`, where the veth peers and the bridge live) when known. Returns findings in a stable
/// order: routes, interfaces, veth peers.
pub fn diagnose_path(
    pod: &NetSnapshot,
    node: Option<&NetSnapshot>,
    targets: &[SocketAddr],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in targets {
        if let Some((_, Lookup::Unreachable(why))) =
            pod.lookups.iter().find(|(ip, _)| *ip == t.ip())
        {
            out.push(Finding::for_target(
                FindingCode::NoRoute,
                *t,
                format!("no route to {} (`ip route get {}`: {why})", t.ip(), t.ip()),
            ));
        }
    }
    // Without a route to some target, say whether a default route is missing too.
    let unrouted: Vec<IpAddr> = pod
        .lookups
        .iter()
        .filter(|(ip, l)| {
            matches!(l, Lookup::Unreachable(_)) && targets.iter().any(|t| t.ip() == *ip)
        })
        .map(|(ip, _)| *ip)
        .collect();
    for fam in [
        unrouted.iter().find(|i| i.is_ipv4()),
        unrouted.iter().find(|i| i.is_ipv6()),
    ]
    .into_iter()
    .flatten()
    {
        if !pod.routes.iter().any(|r| r.is_default_for(*fam)) {
            let v = if fam.is_ipv4() { "" } else { " -6" };
            out.push(Finding::new(
                FindingCode::NoDefaultRoute,
                format!("no default route (`ip{v} route show default` is empty)"),
            ));
        }
    }

    // The interfaces that matter: those the routes to the targets leave through; all of them
    // when no target has a route (a node has many interfaces, most unrelated to DNS).
    let used: Vec<u32> = pod
        .lookups
        .iter()
        .filter(|(ip, _)| targets.iter().any(|t| t.ip() == *ip))
        .filter_map(|(_, l)| match l {
            Lookup::Route { oif, .. } => *oif,
            Lookup::Unreachable(_) => None,
        })
        .filter(|i| !pod.link(*i).is_some_and(|l| l.loopback))
        .collect();
    let mut of_targets = (pod.lookups.iter())
        .filter(|(ip, _)| targets.iter().any(|t| t.ip() == *ip))
        .peekable();
    let all_local = of_targets.peek().is_some()
        && of_targets.all(|(_, l)| {
            matches!(l, Lookup::Route { oif: Some(i), .. } if pod.link(*i).is_some_and(|l| l.loopback))
        });
    if all_local {
        // Every routed target is an address of this namespace (`ip route get` says `dev lo`):
        // a local server, such as a node-local cache, that does not answer. No interface,
        // address or veth is on that path.
        return out;
    }
    let all: Vec<&Link> = pod.links.iter().filter(|l| !l.loopback).collect();
    if all.is_empty() {
        out.push(Finding::new(
            FindingCode::LinkDown,
            "no network interface besides lo (`ip link`)",
        ));
        return out;
    }
    let ifaces: Vec<&Link> = if used.is_empty() {
        all
    } else {
        all.into_iter()
            .filter(|l| used.contains(&l.index))
            .collect()
    };
    for l in &ifaces {
        if !l.up {
            out.push(Finding::new(
                FindingCode::LinkDown,
                format!(
                    "{} is down (`ip link show {}`; `ip link set {} up`)",
                    l.name, l.name, l.name
                ),
            ));
        }
    }
    if !ifaces
        .iter()
        .any(|l| pod.addresses_of(l.index).any(|a| usable(a.ip)))
    {
        let names: Vec<&str> = ifaces.iter().map(|l| l.name.as_str()).collect();
        out.push(Finding::new(
            FindingCode::NoAddress,
            format!("no address on {} (`ip addr`)", names.join(", ")),
        ));
    }

    let Some(node) = node else { return out };
    for l in ifaces.iter().filter(|l| l.kind.as_deref() == Some("veth")) {
        let Some(peer_index) = l.peer_index else {
            continue;
        };
        // The peer must point back at us: ifindexes are per namespace, so a lone index match
        // could be another namespace's interface.
        let peer = node.links.iter().find(|p| {
            p.index == peer_index
                && p.peer_index == Some(l.index)
                && p.kind.as_deref() == Some("veth")
        });
        let Some(peer) = peer else {
            out.push(Finding::new(
                FindingCode::VethPeerMissing,
                format!(
                    "the node-side peer of {} (ifindex {peer_index}) is not in the node's namespace (`ip -d link show {}`)",
                    l.name, l.name
                ),
            ));
            continue;
        };
        if !peer.up {
            out.push(Finding::new(
                FindingCode::VethPeerDown,
                format!(
                    "{} (node side of {}) is down (`ip link show {}`; `ip link set {} up`)",
                    peer.name, l.name, peer.name, peer.name
                ),
            ));
        }
        if peer.master.is_none() {
            let pod_ips: Vec<IpAddr> = pod
                .addresses_of(l.index)
                .map(|a| a.ip)
                .filter(|ip| usable(*ip))
                .collect();
            let routed = pod_ips.iter().any(|ip| {
                node.routes
                    .iter()
                    .any(|r| r.oif == Some(peer.index) && r.contains(*ip))
            });
            if !routed {
                let ips: Vec<String> = pod_ips.iter().map(IpAddr::to_string).collect();
                out.push(Finding::new(
                    FindingCode::VethDetached,
                    format!(
                        "{} (node side of {}) is attached to no bridge and no node route to {} uses it (`ip link show {}`; `ip route show dev {}`)",
                        peer.name,
                        l.name,
                        if ips.is_empty() { "the pod".to_owned() } else { ips.join(", ") },
                        peer.name,
                        peer.name
                    ),
                ));
            }
        } else if let Some(m) = peer.master
            && node.link(m).is_some_and(|b| !b.up)
        {
            out.push(Finding::new(
                FindingCode::LinkDown,
                format!(
                    "bridge {} of {} is down on the node (`ip link show {}`)",
                    node.name_of(m),
                    peer.name,
                    node.name_of(m)
                ),
            ));
        }
    }
    out
}

/// Checks a namespace's resolv.conf (`None`: it could not be read, with the reason) against the
/// expected DNS service addresses (kube-dns ClusterIP, or a node-local cache address).
pub fn check_resolv_conf(
    conf: Result<&ResolvConf, &str>,
    path: &str,
    expected: &[IpAddr],
) -> Vec<Finding> {
    let rc = match conf {
        Ok(rc) => rc,
        Err(why) => {
            return vec![Finding::new(
                FindingCode::ResolvConfMissing,
                format!("cannot read {path}: {why}"),
            )];
        }
    };
    let mut out = Vec::new();
    let used = rc.effective_nameservers();
    if !expected.is_empty() && !used.iter().any(|ns| expected.contains(ns)) {
        let list = |v: &[IpAddr]| {
            v.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let have = if used.is_empty() {
            "none".to_owned()
        } else {
            list(used)
        };
        let ignored = if rc.nameservers.len() > used.len()
            && rc.nameservers[used.len()..]
                .iter()
                .any(|ns| expected.contains(ns))
        {
            " (it is listed, but after the 3 nameservers glibc uses)"
        } else {
            ""
        };
        out.push(Finding::new(
            FindingCode::ResolvConfNameserver,
            format!(
                "{path} names nameserver {have}, expected {}{ignored}",
                list(expected)
            ),
        ));
    }
    if rc.nameservers.len() > GLIBC_MAX_NAMESERVERS {
        out.push(Finding::new(
            FindingCode::ResolvConfTooManyNameservers,
            format!(
                "{path} lists {} nameservers; glibc uses the first {GLIBC_MAX_NAMESERVERS} and ignores the rest",
                rc.nameservers.len()
            ),
        ));
    }
    if rc.search.len() > GLIBC_MAX_SEARCH {
        out.push(Finding::new(
            FindingCode::ResolvConfTooManySearch,
            format!(
                "{path} lists {} search domains; Kubernetes (1.28 and later) and glibc (2.26 and later) allow {GLIBC_MAX_SEARCH}, older ones {LEGACY_MAX_SEARCH}",
                rc.search.len()
            ),
        ));
    }
    out.extend(search_amplification(rc, path));
    out
}

/// Search domains of a pod of the default `ClusterFirst` policy: `<namespace>.svc.<domain>`,
/// `svc.<domain>`, `<domain>`. With ndots:5 an outside name such as `example.com` costs 8 queries
/// (4 names, A and AAAA): what a cluster normally pays, and the line past which
/// [`check_resolv_conf`] warns.
pub const KUBERNETES_SEARCH_DOMAINS: usize = 3;

/// The name an outside lookup is measured with: one dot, as most outside names written without
/// a trailing dot have.
const OUTSIDE_NAME: &str = "example.com";

/// Queries (A and AAAA) glibc sends for a name outside the cluster that every search domain
/// answers with NXDOMAIN: two per name tried until the name itself.
pub fn outside_lookup_queries(rc: &ResolvConf) -> usize {
    let tried = rc.candidates(OUTSIDE_NAME);
    let upto = tried
        .iter()
        .position(|n| n.trim_end_matches('.') == OUTSIDE_NAME)
        .map_or(tried.len(), |i| i + 1);
    2 * upto
}

/// A warning when a lookup of an outside name goes through more search domains than a
/// `ClusterFirst` pod's 3 (typically the node's own search domains appended, or a custom
/// dnsConfig): more queries per lookup than the cluster normally pays.
fn search_amplification(rc: &ResolvConf, path: &str) -> Option<Finding> {
    let queries = outside_lookup_queries(rc);
    let usual = 2 * (KUBERNETES_SEARCH_DOMAINS + 1);
    if queries <= usual {
        return None;
    }
    let ndots = rc.resolver_options().ndots;
    Some(Finding::new(
        FindingCode::SearchAmplification,
        format!(
            "{path}: a lookup of an outside name such as {OUTSIDE_NAME} (fewer dots than ndots:{ndots}) goes through {} search domains first: {queries} queries (A and AAAA), {} more than a ClusterFirst pod sends; write outside names with a trailing dot, or lower ndots or trim the search list in the pod's dnsConfig",
            queries / 2 - 1,
            queries - usual
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SocketAddr {
        "10.96.0.10:53".parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A pod with eth0 (index 2) whose peer is veth1 (index 7) in the node, bridged to cni0 (3).
    fn healthy() -> (NetSnapshot, NetSnapshot) {
        let pod = NetSnapshot {
            links: vec![
                Link {
                    index: 1,
                    name: "lo".into(),
                    up: true,
                    lower_up: true,
                    loopback: true,
                    ..Link::default()
                },
                Link {
                    index: 2,
                    name: "eth0".into(),
                    up: true,
                    lower_up: true,
                    kind: Some("veth".into()),
                    peer_index: Some(7),
                    peer_netnsid: Some(0),
                    ..Link::default()
                },
            ],
            addresses: vec![Address {
                index: 2,
                ip: ip("10.244.0.5"),
                prefix_len: 24,
            }],
            routes: vec![
                Route {
                    dst: None,
                    prefix_len: 0,
                    oif: Some(2),
                    gateway: Some(ip("10.244.0.1")),
                },
                Route {
                    dst: Some(ip("10.244.0.0")),
                    prefix_len: 24,
                    oif: Some(2),
                    gateway: None,
                },
            ],
            lookups: vec![(
                ip("10.96.0.10"),
                Lookup::Route {
                    oif: Some(2),
                    gateway: Some(ip("10.244.0.1")),
                },
            )],
        };
        let node = NetSnapshot {
            links: vec![
                Link {
                    index: 3,
                    name: "cni0".into(),
                    up: true,
                    kind: Some("bridge".into()),
                    ..Link::default()
                },
                Link {
                    index: 7,
                    name: "veth1".into(),
                    up: true,
                    kind: Some("veth".into()),
                    peer_index: Some(2),
                    peer_netnsid: Some(4),
                    master: Some(3),
                    ..Link::default()
                },
            ],
            addresses: vec![],
            routes: vec![],
            lookups: vec![],
        };
        (pod, node)
    }

    fn codes(pod: &NetSnapshot, node: &NetSnapshot) -> Vec<&'static str> {
        diagnose_path(pod, Some(node), &[target()])
            .iter()
            .map(|f| f.code.as_str())
            .collect()
    }

    #[test]
    fn healthy_has_no_findings() {
        let (pod, node) = healthy();
        assert_eq!(codes(&pod, &node), Vec::<&str>::new());
    }

    #[test]
    fn each_fault_has_its_code() {
        let (mut pod, node) = healthy();
        pod.routes.retain(|r| r.prefix_len != 0);
        pod.lookups = vec![(
            ip("10.96.0.10"),
            Lookup::Unreachable("Network is unreachable".into()),
        )];
        assert_eq!(codes(&pod, &node), ["no-route", "no-default-route"]);

        let (mut pod, node) = healthy();
        pod.links[1].up = false;
        assert_eq!(codes(&pod, &node), ["link-down"]);

        let (mut pod, node) = healthy();
        pod.addresses.clear();
        // Without an address the node cannot route to it either: only the bridge keeps it attached.
        assert_eq!(codes(&pod, &node), ["no-address"]);

        let (pod, mut node) = healthy();
        node.links[1].up = false;
        assert_eq!(codes(&pod, &node), ["veth-peer-down"]);

        let (pod, mut node) = healthy();
        node.links[1].master = None;
        assert_eq!(codes(&pod, &node), ["veth-detached"]);

        let (pod, mut node) = healthy();
        node.links.remove(1);
        assert_eq!(codes(&pod, &node), ["veth-peer-missing"]);

        let (pod, mut node) = healthy();
        node.links[0].up = false;
        assert_eq!(codes(&pod, &node), ["link-down"], "bridge down");
    }

    #[test]
    fn routed_cni_without_bridge_is_fine() {
        let (pod, mut node) = healthy();
        node.links[1].master = None;
        node.routes.push(Route {
            dst: Some(ip("10.244.0.5")),
            prefix_len: 32,
            oif: Some(7),
            gateway: None,
        });
        assert_eq!(codes(&pod, &node), Vec::<&str>::new());
    }

    #[test]
    fn only_interfaces_on_the_path_count() {
        let (mut pod, node) = healthy();
        pod.links.push(Link {
            index: 9,
            name: "wg0".into(),
            up: false,
            ..Link::default()
        });
        assert_eq!(
            codes(&pod, &node),
            Vec::<&str>::new(),
            "a down interface off the path is not a finding"
        );
        pod.lookups = vec![(
            ip("10.96.0.10"),
            Lookup::Unreachable("Network is unreachable".into()),
        )];
        assert_eq!(
            codes(&pod, &node),
            ["no-route", "link-down"],
            "without a route, every interface is suspect"
        );
    }

    #[test]
    fn a_missing_default_route_matters_only_without_a_route() {
        let (mut pod, node) = healthy();
        pod.routes.retain(|r| r.prefix_len != 0);
        assert_eq!(codes(&pod, &node), Vec::<&str>::new());
    }

    #[test]
    fn index_match_alone_is_not_the_peer() {
        let (pod, mut node) = healthy();
        node.links[1].peer_index = Some(99); // ifindex 7 exists but belongs to another pair
        assert_eq!(codes(&pod, &node), ["veth-peer-missing"]);
    }

    #[test]
    fn messages_name_the_command() {
        let (pod, mut node) = healthy();
        node.links[1].up = false;
        let f = diagnose_path(&pod, Some(&node), &[target()]);
        assert!(
            f[0].message.contains("ip link set veth1 up"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn route_prefix_matching() {
        let r = Route {
            dst: Some(ip("10.96.0.0")),
            prefix_len: 12,
            oif: None,
            gateway: None,
        };
        assert!(r.contains(ip("10.96.0.10")));
        assert!(r.contains(ip("10.111.255.1")));
        assert!(!r.contains(ip("10.112.0.1")));
        assert!(!r.contains(ip("fd00::1")));
        let d = Route {
            dst: None,
            prefix_len: 0,
            oif: None,
            gateway: None,
        };
        assert!(d.contains(ip("8.8.8.8")));
        let v6 = Route {
            dst: Some(ip("fd00::")),
            prefix_len: 8,
            oif: None,
            gateway: None,
        };
        assert!(v6.contains(ip("fd12::1")));
    }

    #[test]
    fn search_amplification_past_a_cluster_first_pod() {
        let want = [ip("10.96.0.10")];
        let check = |text: &str| {
            check_resolv_conf(Ok(&ResolvConf::parse(text)), "r", &want)
                .into_iter()
                .filter(|f| f.code == FindingCode::SearchAmplification)
                .collect::<Vec<_>>()
        };
        let cluster_first = "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n";
        assert_eq!(outside_lookup_queries(&ResolvConf::parse(cluster_first)), 8);
        assert!(
            check(cluster_first).is_empty(),
            "what a cluster normally pays"
        );
        // The node's search domains appended (a cloud's): 2 more names, 4 more queries.
        let cloud = "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local c.proj.internal google.internal\noptions ndots:5\n";
        let f = check(cloud);
        assert_eq!(f.len(), 1);
        assert!(!f[0].is_error(), "a warning");
        assert!(
            f[0].message.contains("5 search domains first: 12 queries"),
            "{}",
            f[0].message
        );
        // With ndots:1 the outside name is tried as is first: 2 queries, whatever the list.
        let low = "nameserver 10.96.0.10\nsearch a b c d e f\noptions ndots:1\n";
        assert_eq!(outside_lookup_queries(&ResolvConf::parse(low)), 2);
        assert!(check(low).is_empty());
    }

    #[test]
    fn a_target_served_in_the_namespace_itself_is_not_an_interface_fault() {
        // The node, where a node-local cache listens on 169.254.20.10: `ip route get` says lo.
        let (mut node, _) = healthy();
        let cache: SocketAddr = "169.254.20.10:53".parse().unwrap();
        node.lookups = vec![(
            cache.ip(),
            Lookup::Route {
                oif: Some(1),
                gateway: None,
            },
        )];
        assert!(diagnose_path(&node, None, &[cache]).is_empty());
        // Only lo, and the target local: nothing to say of interfaces either.
        node.links.truncate(1);
        assert!(diagnose_path(&node, None, &[cache]).is_empty());
        // A local target next to a remote one: only the remote one's interface counts.
        let (mut pod, node) = healthy();
        pod.lookups.push((
            cache.ip(),
            Lookup::Route {
                oif: Some(1),
                gateway: None,
            },
        ));
        pod.addresses.clear();
        let f = diagnose_path(&pod, Some(&node), &[target(), cache]);
        let msgs: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(msgs, ["no address on eth0 (`ip addr`)"]);
    }

    #[test]
    fn a_default_route_counts_for_its_own_family_only() {
        let v6_default = Route {
            dst: Some(ip("::")),
            prefix_len: 0,
            oif: Some(2),
            gateway: None,
        };
        assert!(v6_default.is_default_for(ip("fd00::1")));
        assert!(!v6_default.is_default_for(ip("10.96.0.10")));
        assert!(!v6_default.contains(ip("10.96.0.10")));
        // A pod with an IPv6 default route only, and no IPv4 route to the target.
        let (mut pod, node) = healthy();
        pod.routes = vec![v6_default];
        pod.lookups = vec![(
            ip("10.96.0.10"),
            Lookup::Unreachable("Network is unreachable".into()),
        )];
        let f = diagnose_path(&pod, Some(&node), &[target()]);
        let no_default: Vec<&str> = f
            .iter()
            .filter(|f| f.code == FindingCode::NoDefaultRoute)
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(
            no_default,
            ["no default route (`ip route show default` is empty)"]
        );
        // And the other way round, for an IPv6 target.
        let v6: SocketAddr = "[fd00:10:96::a]:53".parse().unwrap();
        let (mut pod, node) = healthy();
        pod.lookups = vec![(
            v6.ip(),
            Lookup::Unreachable("Network is unreachable".into()),
        )];
        pod.routes[0].dst = Some(ip("0.0.0.0"));
        let f = diagnose_path(&pod, Some(&node), &[v6]);
        assert!(
            f.iter().any(|f| f.code == FindingCode::NoDefaultRoute
                && f.message.contains("ip -6 route show default")),
            "{f:?}"
        );
    }

    #[test]
    fn resolv_conf_rules() {
        let want = [ip("10.96.0.10")];
        let codes = |text: &str| -> Vec<&'static str> {
            check_resolv_conf(Ok(&ResolvConf::parse(text)), "/etc/resolv.conf", &want)
                .iter()
                .map(|f| f.code.as_str())
                .collect()
        };
        assert!(codes("nameserver 10.96.0.10\nsearch a b c\n").is_empty());
        assert_eq!(codes("nameserver 10.96.0.99\n"), ["resolv-conf-nameserver"]);
        assert_eq!(codes(""), ["resolv-conf-nameserver"]);
        assert_eq!(
            codes(
                "nameserver 1.1.1.1\nnameserver 1.0.0.1\nnameserver 9.9.9.9\nnameserver 10.96.0.10\n"
            ),
            ["resolv-conf-nameserver", "resolv-conf-too-many-nameservers"]
        );
        assert!(
            codes("nameserver 10.96.0.10\nsearch a b c d e f g\n").is_empty(),
            "7 search domains are fine since glibc 2.26 and Kubernetes 1.28"
        );
        let many: Vec<String> = (0..33).map(|i| format!("d{i}.example")).collect();
        let f = check_resolv_conf(
            Ok(&ResolvConf::parse(&format!(
                "nameserver 10.96.0.10\nsearch {}\n",
                many.join(" ")
            ))),
            "f",
            &want,
        );
        assert_eq!(f[0].code, FindingCode::ResolvConfTooManySearch);
        assert!(!f[0].is_error(), "a warning");
        let missing = check_resolv_conf(
            Err("No such file or directory"),
            "/proc/9/root/etc/resolv.conf",
            &want,
        );
        assert_eq!(missing[0].code, FindingCode::ResolvConfMissing);
        assert!(missing[0].message.contains("/proc/9/root/etc/resolv.conf"));
        let f = check_resolv_conf(
            Ok(&ResolvConf::parse("nameserver 10.96.0.99\n")),
            "f",
            &want,
        );
        assert_eq!(
            f[0].message,
            "f names nameserver 10.96.0.99, expected 10.96.0.10"
        );
    }
}
