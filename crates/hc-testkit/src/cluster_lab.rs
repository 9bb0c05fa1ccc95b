//! A cluster of several lab nodes: each node a network namespace with its own pod bridge, pods
//! and kube-proxy-like NAT for the DNS Service, all nodes on one underlay network (the "node
//! network", 192.168.100.0/24) with routes to each other's pod ranges, the way a routed CNI
//! connects nodes. DNS pods run dnsmasq and are spread over the nodes. The fake API server and
//! the controller listen on the underlay ([`UNDERLAY_GATEWAY`]); each node's agent listens on
//! its node address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::Dnsmasq;
use crate::lab::{
    LAB_API_IP, LAB_DNS_VIP, LAB_DNS_VIP6, LabOptions, LabPod, lab_v6, nft, no_dad, node_ipv6,
    service_nat, sysctl,
};
use crate::netns::{Netns, ip};

/// The underlay's own address (in its namespace): where the fake API server listens.
pub const UNDERLAY_GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 254);

/// A node's IPv6 address on the underlay of a dual-stack cluster: `fd00:192:168:100::N` for
/// `192.168.100.N`.
pub fn underlay_v6(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfd00,
        0x192,
        0x168,
        0x100,
        0,
        0,
        0,
        u16::from(v4.octets()[3]),
    )
}

/// One node: its namespace, its address on the underlay, its client pods.
#[derive(Debug)]
pub struct LabNode {
    /// `node-<i>`: its name in Kubernetes.
    pub name: String,
    /// Client pods on it (dropped before the node).
    pub pods: Vec<LabPod>,
    /// The node's network namespace: run its agent here.
    pub ns: Netns,
    /// Its address on the underlay (192.168.100.<i+1>).
    pub ip: Ipv4Addr,
    /// Its IPv6 address on the underlay, in a dual-stack cluster ([`underlay_v6`] of `ip`).
    pub ip6: Option<Ipv6Addr>,
}

/// A CoreDNS pod of the cluster lab.
#[derive(Debug)]
pub struct ClusterDnsPod {
    /// The server (dropped first).
    pub server: Dnsmasq,
    /// The pod.
    pub pod: LabPod,
    /// Index of its node.
    pub node: usize,
    /// `coredns-<k>`: its name in Kubernetes.
    pub name: String,
}

/// The cluster. Everything is removed on drop, even when the test panics. Needs root,
/// iproute2, nftables and dnsmasq.
#[derive(Debug)]
pub struct ClusterLab {
    /// The DNS pods (dropped first).
    pub dns: Vec<ClusterDnsPod>,
    /// The nodes.
    pub nodes: Vec<LabNode>,
    /// The underlay: a bridge all nodes hang on; the fake API server listens here.
    pub net: Netns,
    prefix: String,
    ipv6: bool,
}

impl ClusterLab {
    /// `nodes` nodes, `dns_pods` DNS pods spread round-robin over them, `clients` client pods
    /// per node.
    pub fn new(nodes: usize, dns_pods: usize, clients: usize) -> ClusterLab {
        Self::with(nodes, dns_pods, clients, LabOptions::default())
    }

    /// As [`ClusterLab::new`]; with [`LabOptions::ipv6`] dual-stack: the underlay
    /// `fd00:192:168:100::/64` beside 192.168.100.0/24, node `n`'s pods in
    /// `fd00:10:244:n::/64` routed to it, and the IPv6 VIP [`LAB_DNS_VIP6`] DNAT'ed on every node
    /// to every DNS pod's IPv6 address. (The node-local cache is the single-node [`crate::Lab`]'s.)
    pub fn with(nodes: usize, dns_pods: usize, clients: usize, options: LabOptions) -> ClusterLab {
        assert!((1..=50).contains(&nodes), "1 to 50 nodes");
        let prefix = crate::unique_name("hk");
        let net = Netns::new_named(&format!("{prefix}-net"));
        if options.ipv6 {
            no_dad(&net);
        }
        // No multicast snooping: a bridge that has not yet heard a node's MLD report would drop
        // the IPv6 neighbour solicitations to it, and a first query would wait out a retry.
        let nosnoop = ["type", "bridge", "mcast_snooping", "0"];
        ip(&[&["-n", net.name(), "link", "add", "ubr0"][..], &nosnoop].concat());
        ip(&[
            "-n",
            net.name(),
            "addr",
            "add",
            &format!("{UNDERLAY_GATEWAY}/24"),
            "dev",
            "ubr0",
        ]);
        if options.ipv6 {
            let gw = format!("{}/64", underlay_v6(UNDERLAY_GATEWAY));
            ip(&[
                "-n",
                net.name(),
                "-6",
                "addr",
                "add",
                &gw,
                "dev",
                "ubr0",
                "nodad",
            ]);
        }
        ip(&["-n", net.name(), "link", "set", "ubr0", "up"]);
        let mut lab = ClusterLab {
            dns: Vec::new(),
            nodes: Vec::new(),
            net,
            prefix,
            ipv6: options.ipv6,
        };
        for i in 0..nodes {
            let node = lab.add_node(i, nodes);
            lab.nodes.push(node);
        }
        for k in 0..dns_pods {
            let n = k % nodes;
            let addr = Ipv4Addr::new(10, 244, n as u8, 2 + (k / nodes) as u8);
            let pod = LabPod::attach(
                &lab.nodes[n].ns,
                &format!("{}-d{k}", lab.prefix),
                &format!("vd{k}"),
                (addr, 24),
                lab.gateway(n),
                options.ipv6,
            );
            let server = pod.serve_dns();
            lab.dns.push(ClusterDnsPod {
                server,
                pod,
                node: n,
                name: format!("coredns-{k}"),
            });
        }
        for (n, node) in lab.nodes.iter_mut().enumerate() {
            for c in 0..clients {
                let addr = Ipv4Addr::new(10, 244, n as u8, 100 + c as u8);
                let gw = Ipv4Addr::new(10, 244, n as u8, 1);
                node.pods.push(LabPod::attach(
                    &node.ns,
                    &format!("{}-n{n}p{c}", lab.prefix),
                    &format!("vp{c}"),
                    (addr, 24),
                    gw,
                    options.ipv6,
                ));
            }
        }
        for n in 0..nodes {
            lab.install_service(n);
        }
        lab
    }

    fn gateway(&self, n: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 244, n as u8, 1)
    }

    fn add_node(&self, i: usize, nodes: usize) -> LabNode {
        let ns = Netns::new_named(&format!("{}-n{i}", self.prefix));
        if self.ipv6 {
            no_dad(&ns);
        }
        let n = ns.name().to_owned();
        let node_ip = Ipv4Addr::new(192, 168, 100, (i + 1) as u8);
        let u = format!("u{i}");
        ip(&[
            "-n",
            self.net.name(),
            "link",
            "add",
            &u,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &n,
        ]);
        ip(&["-n", self.net.name(), "link", "set", &u, "master", "ubr0"]);
        ip(&["-n", self.net.name(), "link", "set", &u, "up"]);
        ip(&[
            "-n",
            &n,
            "addr",
            "add",
            &format!("{node_ip}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &n, "link", "set", "eth0", "up"]);
        let nosnoop = ["type", "bridge", "mcast_snooping", "0"];
        ip(&[&["-n", &n, "link", "add", "br0"][..], &nosnoop].concat());
        ip(&[
            "-n",
            &n,
            "addr",
            "add",
            &format!("10.244.{i}.1/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &n, "link", "set", "br0", "up"]);
        ip(&["-n", &n, "route", "add", "10.96.0.0/12", "dev", "br0"]);
        for j in (0..nodes).filter(|j| *j != i) {
            let via = format!("192.168.100.{}", j + 1);
            ip(&[
                "-n",
                &n,
                "route",
                "add",
                &format!("10.244.{j}.0/24"),
                "via",
                &via,
            ]);
        }
        sysctl(&ns, &["net.ipv4.ip_forward=1"]);
        let ip6 = self.ipv6.then(|| underlay_v6(node_ip));
        if let Some(v6) = ip6 {
            let own = format!("{v6}/64");
            ip(&["-n", &n, "-6", "addr", "add", &own, "dev", "eth0", "nodad"]);
            node_ipv6(
                &ns,
                &format!("{}/64", lab_v6(Ipv4Addr::new(10, 244, i as u8, 1))),
            );
            for j in (0..nodes).filter(|j| *j != i) {
                let range = format!("{}/64", lab_v6(Ipv4Addr::new(10, 244, j as u8, 0)));
                let via = underlay_v6(Ipv4Addr::new(192, 168, 100, (j + 1) as u8)).to_string();
                ip(&["-n", &n, "-6", "route", "add", &range, "via", &via]);
            }
        }
        LabNode {
            name: format!("node-{i}"),
            pods: Vec::new(),
            ns,
            ip: node_ip,
            ip6,
        }
    }

    /// The VIP DNAT'ed to every DNS pod of the cluster, as kube-proxy does on each node (and
    /// the IPv6 VIP to their IPv6 addresses, in a dual-stack cluster).
    fn install_service(&self, n: usize) {
        let node = &self.nodes[n].ns;
        let v4: Vec<IpAddr> = self.dns.iter().map(|d| IpAddr::V4(d.pod.ip)).collect();
        service_nat(
            node,
            "ip",
            &[(IpAddr::V4(LAB_DNS_VIP), v4)],
            "10.244.0.0/16",
        );
        if self.ipv6 {
            let v6: Vec<IpAddr> = (self.dns.iter())
                .filter_map(|d| d.pod.ip6.map(IpAddr::V6))
                .collect();
            let vip6 = [(IpAddr::V6(LAB_DNS_VIP6), v6)];
            service_nat(node, "ip6", &vip6, "fd00:10:244::/48");
        }
    }

    /// The glob that matches node `n`'s client pods.
    pub fn node_glob(&self, n: usize) -> String {
        format!("{}-n{n}p*", self.prefix)
    }

    /// The DNS Service's address.
    pub fn vip(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(LAB_DNS_VIP), 53)
    }

    /// The DNS Service's IPv6 address, in a dual-stack cluster.
    pub fn vip6(&self) -> Option<SocketAddr> {
        self.ipv6
            .then(|| SocketAddr::new(IpAddr::V6(LAB_DNS_VIP6), 53))
    }

    /// Cuts node `n`'s own path to DNS: UDP and TCP to port 53 dropped as they leave the node
    /// itself or come from its pods (its agent's probes and its pods' queries); queries from
    /// other nodes to a DNS pod on this node still pass.
    pub fn break_node(&self, n: usize) {
        nft(
            &self.nodes[n].ns,
            "table inet fault {\n  chain out { type filter hook output priority 0; policy accept;\n    meta l4proto { udp, tcp } th dport 53 drop\n  }\n  chain through { type filter hook forward priority 0; policy accept;\n    iifname \"br0\" meta l4proto { udp, tcp } th dport 53 drop\n  }\n}\n",
        );
    }

    /// Breaks the Service's NAT on node `n`, as a kube-proxy that lost its rules would: the VIP
    /// answers nothing; the pods' own addresses still do.
    pub fn break_service(&self, n: usize) {
        nft(
            &self.nodes[n].ns,
            &format!(
                "table ip vipfault {{\n  chain out {{ type filter hook output priority -200; policy accept;\n    ip daddr {LAB_DNS_VIP} drop\n  }}\n  chain pre {{ type filter hook prerouting priority -200; policy accept;\n    ip daddr {LAB_DNS_VIP} drop\n  }}\n}}\n"
            ),
        );
    }

    /// The `kubernetes` Service on every node, as kube-proxy writes it: the node's own
    /// connections to its ClusterIP ([`LAB_API_IP`]) port 443 go to `backend` (the lab's API
    /// server endpoint, e.g. a [`crate::TlsServer`] on the underlay).
    pub fn serve_api_service(&self, backend: SocketAddr) {
        for node in &self.nodes {
            nft(
                &node.ns,
                &format!(
                    "table ip apisvc {{\n  chain out {{ type nat hook output priority -100; policy accept;\n    ip daddr {LAB_API_IP} tcp dport 443 dnat to {backend}\n  }}\n}}\n"
                ),
            );
        }
    }

    /// Node `n` loses the `kubernetes` Service's rule, as a kube-proxy that lost it would:
    /// connections to its ClusterIP go nowhere; DNS is untouched.
    pub fn break_api_service(&self, n: usize) {
        nft(
            &self.nodes[n].ns,
            &format!(
                "table ip apifault {{\n  chain out {{ type filter hook output priority -200; policy accept;\n    ip daddr {LAB_API_IP} tcp dport 443 drop\n  }}\n}}\n"
            ),
        );
    }

    /// Undoes [`ClusterLab::break_api_service`].
    pub fn restore_api_service(&self, n: usize) {
        nft(&self.nodes[n].ns, "delete table ip apifault\n");
    }

    /// Drops UDP port 53 at DNS pod `k`; TCP still works.
    pub fn drop_udp_at_dns_pod(&self, k: usize) {
        nft(
            &self.dns[k].pod.ns,
            "table inet fault {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    udp dport 53 drop\n  }\n}\n",
        );
    }

    /// Undoes [`ClusterLab::drop_udp_at_dns_pod`].
    pub fn restore_udp_at_dns_pod(&self, k: usize) {
        nft(&self.dns[k].pod.ns, "delete table inet fault\n");
    }

    /// The kubeconfig and other files of this lab go in a directory of their own.
    pub fn file(&self, name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{}-{name}", self.prefix))
    }
}
