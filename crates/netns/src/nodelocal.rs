//! NodeLocal DNSCache (the Kubernetes `node-local-dns` DaemonSet): a DNS cache on every node,
//! listening on a link-local address (169.254.20.10 by default) bound to a dummy interface
//! named `nodelocaldns` — in its iptables mode on the kube-dns ClusterIP too, so that it answers
//! for the Service on the node. Pods' resolv.conf names the cache (or the ClusterIP, which the
//! cache then answers); CoreDNS is the cache's upstream, through the `kube-dns-upstream` Service.
//!
//! Without telling the two apart, a failing cache looks like failing CoreDNS, and a pod's
//! resolv.conf naming 169.254.20.10 looks wrong. The cache is found from the node's own state
//! only ([`detect_nodelocal`]): an address is the cache's when the node binds it, never because
//! a pod's file names it. The sweep then probes the cache like any cluster-DNS address, sends it
//! one name it cannot hold (a cache miss, which it must ask CoreDNS for), and, when the cache
//! fails, asks CoreDNS behind it directly from the same namespace ([`nodelocal_findings`]).

use std::net::{IpAddr, SocketAddr};

use dnsprobe::ProbeReport;
use dnsprobe::hickory_proto::rr::Name;

use crate::diagnose::NetSnapshot;
use crate::finding::{Finding, FindingCode};

/// The interface NodeLocal DNSCache binds its addresses to (`-interfaceName`, fixed by its
/// manifests).
pub const NODELOCAL_INTERFACE: &str = "nodelocaldns";

/// A node-local DNS cache found on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeLocalCache {
    /// The addresses it answers on, each bound in the node's namespace.
    pub addresses: Vec<IpAddr>,
    /// How each was found, in words (`169.254.20.10 on nodelocaldns`).
    pub evidence: Vec<String>,
}

impl NodeLocalCache {
    /// True when the cache answers on `ip`.
    pub fn answers_on(&self, ip: IpAddr) -> bool {
        self.addresses.contains(&ip)
    }

    fn add(&mut self, ip: IpAddr, why: String) {
        if !self.addresses.contains(&ip) {
            self.addresses.push(ip);
            self.evidence.push(why);
        }
    }
}

/// Finds a node-local cache in the node's snapshot: every address of the `nodelocaldns`
/// interface; a cluster-DNS address (`cluster_dns`: the kube-dns ClusterIP, ...) bound on the
/// node (kube-proxy never binds a ClusterIP there; the cache does); an IPv4 link-local address
/// among `named` (the nameservers pods' resolv.conf name) that the node binds. `None` when there
/// is none. An address only a pod's file names is never taken.
pub fn detect_nodelocal(
    node: &NetSnapshot,
    cluster_dns: &[IpAddr],
    named: &[IpAddr],
) -> Option<NodeLocalCache> {
    let mut cache = NodeLocalCache::default();
    let name_of = |index: u32| node.link(index).map_or("?", |l| l.name.as_str());
    // An IPv6 link-local address needs its interface to be reached: not a nameserver address.
    let usable = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
        IpAddr::V6(v6) => !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    };
    for a in node.addresses.iter().filter(|a| usable(&a.ip)) {
        let iface = name_of(a.index);
        if iface == NODELOCAL_INTERFACE {
            cache.add(a.ip, format!("{} on {iface}", a.ip));
        } else if cluster_dns.contains(&a.ip) {
            cache.add(
                a.ip,
                format!("the cluster-DNS address {} bound on {iface}", a.ip),
            );
        } else if matches!(a.ip, IpAddr::V4(v4) if v4.is_link_local()) && named.contains(&a.ip) {
            cache.add(
                a.ip,
                format!("the link-local nameserver {} bound on {iface}", a.ip),
            );
        }
    }
    (!cache.addresses.is_empty()).then_some(cache)
}

/// A name no cache holds: the probe name with its first label replaced by a random one
/// (`hc-miss-<16 hex>.default.svc.cluster.local.` for the default name), so the cache must ask
/// its upstream, which answers NXDOMAIN.
pub(crate) fn miss_name(name: &Name) -> Name {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    let base = if name.num_labels() > 1 {
        name.base_name()
    } else {
        name.clone()
    };
    Name::from_ascii(format!("hc-miss-{r:016x}"))
        .and_then(|n| n.append_domain(&base))
        .unwrap_or_else(|_| name.clone())
}

/// What a namespace's probes of the cache at `cache` say, given `miss` (the cache-miss name of
/// this sweep) and `behind`: a probe of CoreDNS made from the same namespace when the cache
/// failed. UDP probes only: a UDP-only fault is `udp-blocked`'s to say.
///
/// - the cache answers nothing while CoreDNS answers: `nodelocal-cache-down`;
/// - the cache answers, but the miss (or a name it did not hold) fails: `nodelocal-upstream-failing`.
pub fn nodelocal_findings(
    cache: SocketAddr,
    probes: &[ProbeReport],
    miss: &Name,
    behind: Option<&ProbeReport>,
) -> Vec<Finding> {
    let udp: Vec<&ProbeReport> = (probes.iter())
        .filter(|p| p.target == cache && p.transport == dnsprobe::Transport::Udp)
        .collect();
    let Some(failed) = udp.iter().find(|p| !p.healthy()) else {
        return Vec::new();
    };
    let why = |p: &ProbeReport| {
        p.failure
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let behind_ok = behind.is_some_and(ProbeReport::healthy);
    let behind_text = match behind {
        Some(b) if b.healthy() => format!("CoreDNS at {} answers from here", b.target),
        Some(b) => format!("CoreDNS at {} fails from here too ({})", b.target, why(b)),
        None => "no CoreDNS address is known to compare with".to_owned(),
    };
    let alive = udp.iter().any(|p| p.path_works());
    if !alive {
        if !behind_ok {
            return Vec::new();
        }
        return vec![Finding::for_target(
            FindingCode::NodelocalCacheDown,
            cache,
            format!(
                "the node-local DNS cache at {cache} does not answer ({}) while {behind_text}: pods using the cache cannot resolve although CoreDNS works (`kubectl -n kube-system get pods -l k8s-app=node-local-dns -o wide`, its logs, and `ip addr show {NODELOCAL_INTERFACE}` on the node)",
                why(failed)
            ),
        )];
    }
    let held = udp.iter().find(|p| p.healthy() && p.name != *miss);
    let failed = udp
        .iter()
        .find(|p| !p.healthy() && p.name == *miss)
        .unwrap_or(failed);
    let answers = match held {
        Some(h) => format!("answers a name it holds ({})", h.name),
        None => "answers".to_owned(),
    };
    vec![Finding::for_target(
        FindingCode::NodelocalUpstreamFailing,
        cache,
        format!(
            "the node-local DNS cache at {cache} {answers} but not one it must ask its upstream for ({}: {}); {behind_text}: the cache's upstream is broken (`kubectl -n kube-system logs -l k8s-app=node-local-dns`, `kubectl -n kube-system get endpointslices -l kubernetes.io/service-name=kube-dns-upstream`)",
            failed.name,
            why(failed)
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::{Address, Link};
    use dnsprobe::hickory_proto::op::ResponseCode;
    use dnsprobe::{Failure, ProbeSpec, Transport};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn node(addrs: &[(u32, &str)]) -> NetSnapshot {
        NetSnapshot {
            links: vec![
                Link {
                    index: 1,
                    name: "lo".into(),
                    loopback: true,
                    ..Link::default()
                },
                Link {
                    index: 2,
                    name: "eth0".into(),
                    ..Link::default()
                },
                Link {
                    index: 5,
                    name: NODELOCAL_INTERFACE.into(),
                    ..Link::default()
                },
            ],
            addresses: addrs
                .iter()
                .map(|(i, a)| Address {
                    index: *i,
                    ip: ip(a),
                    prefix_len: 32,
                })
                .collect(),
            ..NetSnapshot::default()
        }
    }

    #[test]
    fn found_from_the_node_only() {
        let vip = [ip("10.96.0.10")];
        // The interface, with the link-local address and the ClusterIP (iptables mode).
        let n = node(&[
            (2, "192.168.1.5"),
            (5, "169.254.20.10"),
            (5, "10.96.0.10"),
            (5, "fe80::1"),
        ]);
        let c = detect_nodelocal(&n, &vip, &[]).unwrap();
        assert_eq!(c.addresses, [ip("169.254.20.10"), ip("10.96.0.10")]);
        assert!(c.evidence[0].contains("on nodelocaldns"));
        // No such interface, no bound address: nothing, whatever pods' files name.
        let n = node(&[(2, "192.168.1.5")]);
        assert_eq!(
            detect_nodelocal(&n, &vip, &[ip("169.254.20.10"), ip("192.0.2.53")]),
            None
        );
        // A link-local address a pod names and the node binds elsewhere (another interface name).
        let n = node(&[(2, "192.168.1.5"), (1, "169.254.20.10")]);
        let c = detect_nodelocal(&n, &vip, &[ip("169.254.20.10")]).unwrap();
        assert_eq!(c.addresses, [ip("169.254.20.10")]);
        // ... but not one no pod names, nor a routable address a pod names.
        assert_eq!(detect_nodelocal(&n, &vip, &[]), None);
        let n = node(&[(2, "192.168.1.5")]);
        assert_eq!(detect_nodelocal(&n, &vip, &[ip("192.168.1.5")]), None);
        // The ClusterIP bound on the node by another name.
        let n = node(&[(2, "10.96.0.10")]);
        assert!(detect_nodelocal(&n, &vip, &[]).unwrap().evidence[0].contains("bound on eth0"));
    }

    #[test]
    fn a_miss_is_a_fresh_sibling_of_the_probe_name() {
        let name = Name::from_ascii("kubernetes.default.svc.cluster.local.").unwrap();
        let (a, b) = (miss_name(&name), miss_name(&name));
        assert_ne!(a, b);
        let text = a.to_ascii();
        assert!(text.starts_with("hc-miss-"), "{text}");
        assert!(text.ends_with(".default.svc.cluster.local."), "{text}");
    }

    fn cache() -> SocketAddr {
        "169.254.20.10:53".parse().unwrap()
    }

    fn probe(target: SocketAddr, name: &Name, failure: Option<Failure>) -> ProbeReport {
        let spec = ProbeSpec::new(target).with_name(name.clone());
        let mut r = ProbeReport::failed(&spec, Transport::Udp, Failure::Refused);
        r.failure = failure;
        r
    }

    #[test]
    fn the_cache_down_while_coredns_answers() {
        let hit = Name::from_ascii("kubernetes.default.svc.cluster.local.").unwrap();
        let miss = miss_name(&hit);
        let coredns: SocketAddr = "10.244.0.2:53".parse().unwrap();
        let probes = [probe(cache(), &hit, Some(Failure::Refused))];
        let ok = probe(coredns, &hit, None);
        let f = nodelocal_findings(cache(), &probes, &miss, Some(&ok));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::NodelocalCacheDown);
        assert_eq!(f[0].target, Some(cache()));
        assert!(f[0].message.contains("CoreDNS at 10.244.0.2:53 answers"));
        // CoreDNS fails too: not the cache's fault alone; the probes say it.
        let down = probe(coredns, &hit, Some(Failure::Refused));
        assert!(nodelocal_findings(cache(), &probes, &miss, Some(&down)).is_empty());
        assert!(nodelocal_findings(cache(), &probes, &miss, None).is_empty());
        // A healthy cache: nothing.
        let probes = [probe(cache(), &hit, None)];
        assert!(nodelocal_findings(cache(), &probes, &miss, Some(&ok)).is_empty());
    }

    #[test]
    fn the_cache_answers_what_it_holds_but_misses_fail() {
        let hit = Name::from_ascii("kubernetes.default.svc.cluster.local.").unwrap();
        let miss = miss_name(&hit);
        let servfail = Failure::Rcode {
            rcode: ResponseCode::ServFail,
        };
        let mut failed_miss = probe(cache(), &miss, Some(servfail));
        failed_miss.rcode = Some(ResponseCode::ServFail);
        let probes = [failed_miss, probe(cache(), &hit, None)];
        let coredns = probe("10.244.0.2:53".parse().unwrap(), &hit, None);
        let f = nodelocal_findings(cache(), &probes, &miss, Some(&coredns));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code, FindingCode::NodelocalUpstreamFailing);
        assert!(
            f[0].message
                .contains("answers a name it holds (kubernetes.default.svc.cluster.local.)"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("hc-miss-"), "{}", f[0].message);
        // A miss that times out, the held name answered: the same.
        let probes = [
            probe(
                cache(),
                &miss,
                Some(Failure::Timeout {
                    attempts: 1,
                    timeout: std::time::Duration::from_secs(1),
                }),
            ),
            probe(cache(), &hit, None),
        ];
        let f = nodelocal_findings(cache(), &probes, &miss, None);
        assert_eq!(f[0].code, FindingCode::NodelocalUpstreamFailing);
    }
}
