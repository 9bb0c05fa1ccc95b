use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::Dnsmasq;
use crate::netns::{Netns, ip};

/// The Service VIP of the lab's cluster DNS (kube-dns).
pub const LAB_DNS_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The answer every lab DNS server gives for `kubernetes.default.svc.cluster.local`.
pub const LAB_API_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
/// The node's address on the pod bridge (the pods' gateway).
pub const LAB_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);

/// A pod: its namespace, its address, and the node-side end of its veth.
#[derive(Debug)]
pub struct LabPod {
    /// The pod's network namespace (`<prefix>-p<i>` or `<prefix>-d<i>`).
    pub ns: Netns,
    /// Its eth0 address.
    pub ip: Ipv4Addr,
    /// The node-side veth's name, in the node namespace.
    pub host_veth: String,
    resolv_dir: PathBuf,
}

impl LabPod {
    /// A pod namespace `name` on a veth whose node side `host_veth` is enslaved to the bridge
    /// `br0` of `node` (hairpin on), with `addr`/`prefix`, a default route via `gateway`, and a
    /// resolv.conf naming the DNS VIP.
    pub(crate) fn attach(
        node: &Netns,
        name: &str,
        host_veth: &str,
        (addr, prefix): (Ipv4Addr, u8),
        gateway: Ipv4Addr,
    ) -> LabPod {
        let ns = Netns::new_named(name);
        let n = node.name();
        ip(&[
            "-n",
            n,
            "link",
            "add",
            host_veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ]);
        ip(&["-n", n, "link", "set", host_veth, "master", "br0"]);
        ip(&[
            "-n",
            n,
            "link",
            "set",
            host_veth,
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
        ip(&["-n", n, "link", "set", host_veth, "up"]);
        ip(&[
            "-n",
            ns.name(),
            "addr",
            "add",
            &format!("{addr}/{prefix}"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", ns.name(), "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            ns.name(),
            "route",
            "add",
            "default",
            "via",
            &gateway.to_string(),
        ]);
        let resolv_dir = PathBuf::from("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&resolv_dir).unwrap();
        let pod = LabPod {
            ns,
            ip: addr,
            host_veth: host_veth.to_owned(),
            resolv_dir,
        };
        pod.write_resolv_conf(&format!(
            "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver {LAB_DNS_VIP}\noptions ndots:5\n"
        ));
        pod
    }

    /// Rewrites the pod's resolv.conf (`/etc/netns/<ns>/resolv.conf`).
    pub fn write_resolv_conf(&self, text: &str) {
        let mut f = std::fs::File::create(self.resolv_dir.join("resolv.conf")).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Removes `/etc/netns/<ns>/resolv.conf`: the pod's processes then read their own root's.
    pub fn remove_resolv_conf(&self) {
        let _ = std::fs::remove_file(self.resolv_dir.join("resolv.conf"));
    }
}

impl Drop for LabPod {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.resolv_dir);
    }
}

/// A DNS pod: a pod running dnsmasq on its own address, port 53.
#[derive(Debug)]
pub struct LabDnsPod {
    /// The server (dropped first: killed before its namespace goes).
    pub server: Dnsmasq,
    /// The pod.
    pub pod: LabPod,
}

/// A miniature Kubernetes node in network namespaces, built the way a bridge CNI and kube-proxy
/// build one:
///
/// - a node namespace with a bridge `br0` (10.244.0.1/16), `ip_forward` on, hairpin on every
///   port, a route for the Service range 10.96.0.0/12 onto the bridge, and nftables NAT: the
///   DNS VIP 10.96.0.10:53 (UDP and TCP) DNAT'ed round-robin to the DNS pods in `prerouting`
///   (from pods) and `output` (from the node), with masquerade of the DNAT'ed traffic;
/// - DNS pods (10.244.0.2, .3, ...) running dnsmasq that answer
///   `kubernetes.default.svc.cluster.local A 10.96.0.1`;
/// - client pods (10.244.x.y) with a default route via the bridge and a resolv.conf naming the
///   VIP in `/etc/netns/<ns>/resolv.conf`.
///
/// Every name starts with a prefix unique to the run; everything is removed on drop, even when
/// the test panics. Needs root, iproute2, nftables and dnsmasq.
#[derive(Debug)]
pub struct Lab {
    /// The DNS pods (dropped before the client pods and the node).
    pub dns: Vec<LabDnsPod>,
    /// The client pods.
    pub pods: Vec<LabPod>,
    /// The node namespace: run the tool under test here.
    pub node: Netns,
    prefix: String,
    /// DNS pods replaced so far.
    replaced: usize,
}

/// Loads an nftables `script` in `ns`; panics with nft's message when it fails.
pub fn nft(ns: &Netns, script: &str) {
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run nft ({e}): install nftables"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    /// Builds a node with `dns_pods` DNS pods and `client_pods` client pods.
    pub fn new(dns_pods: usize, client_pods: usize) -> Lab {
        let prefix = crate::unique_name("hl");
        let node = Netns::new_named(&format!("{prefix}-node"));
        let n = node.name().to_owned();
        ip(&["-n", &n, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &n, "addr", "add", "10.244.0.1/16", "dev", "br0"]);
        ip(&["-n", &n, "link", "set", "br0", "up"]);
        ip(&["-n", &n, "route", "add", "10.96.0.0/12", "dev", "br0"]);
        let sysctl = node
            .command("sysctl")
            .args(["-qw", "net.ipv4.ip_forward=1"])
            .status()
            .unwrap();
        assert!(
            sysctl.success(),
            "sysctl ip_forward in the node namespace failed"
        );
        let mut lab = Lab {
            dns: Vec::new(),
            pods: Vec::new(),
            node,
            prefix,
            replaced: 0,
        };
        for i in 0..dns_pods {
            let addr = Ipv4Addr::new(10, 244, 0, 2 + i as u8);
            let dns = lab.dns_pod(&format!("d{i}"), addr);
            lab.dns.push(dns);
        }
        for i in 0..client_pods {
            let addr = Ipv4Addr::new(10, 244, 1 + (i / 250) as u8, 10 + (i % 250) as u8);
            let pod = lab.add_pod(&format!("p{i}"), addr);
            lab.pods.push(pod);
        }
        lab.install_service();
        lab
    }

    fn dns_pod(&self, suffix: &str, addr: Ipv4Addr) -> LabDnsPod {
        let pod = self.add_pod(suffix, addr);
        let server = Dnsmasq::start_in(
            &pod.ns,
            IpAddr::V4(addr),
            53,
            &[(
                "kubernetes.default.svc.cluster.local",
                IpAddr::V4(LAB_API_IP),
            )],
            "cluster.local",
        );
        LabDnsPod { server, pod }
    }

    /// Replaces DNS pod `i` the way a Deployment replaces a pod: the old one (its dnsmasq, its
    /// namespace and veth) goes, a new one (`<prefix>-d<i>r<n>`) comes up at a new address
    /// (`10.244.0.100 + n`, the n-th replacement of this lab), and the Service NAT is rewritten
    /// to the new set of endpoints. Conntrack entries made through the old NAT are left as they
    /// are (nobody deletes them here). Returns the new address.
    pub fn replace_dns_pod(&mut self, i: usize) -> Ipv4Addr {
        self.replaced += 1;
        let n = self.replaced;
        let addr = Ipv4Addr::new(10, 244, 0, 100 + n as u8);
        drop(self.dns.remove(i));
        // New names: the kernel removes a deleted namespace's veth in the background.
        let new = self.dns_pod(&format!("d{i}r{n}"), addr);
        self.dns.insert(i, new);
        nft(&self.node, "delete table ip lab\n");
        self.install_service();
        addr
    }

    fn add_pod(&self, suffix: &str, addr: Ipv4Addr) -> LabPod {
        let name = format!("{}-{suffix}", self.prefix);
        LabPod::attach(
            &self.node,
            &name,
            &format!("v{suffix}"),
            (addr, 16),
            LAB_GATEWAY,
        )
    }

    fn install_service(&self) {
        let backends: Vec<String> = self
            .dns
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{i} : {}", d.pod.ip))
            .collect();
        if backends.is_empty() {
            return;
        }
        let map = format!(
            "numgen inc mod {} map {{ {} }}",
            backends.len(),
            backends.join(", ")
        );
        let dnat = format!(
            "ip daddr {LAB_DNS_VIP} udp dport 53 dnat to {map}:53\n    ip daddr {LAB_DNS_VIP} tcp dport 53 dnat to {map}:53"
        );
        nft(
            &self.node,
            &format!(
                "table ip lab {{
  chain pre {{ type nat hook prerouting priority dstnat; policy accept;
    {dnat}
  }}
  chain out {{ type nat hook output priority -100; policy accept;
    {dnat}
  }}
  chain post {{ type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip saddr 10.244.0.0/16 masquerade
  }}
}}
"
            ),
        );
    }

    /// The glob that matches this lab's pod namespaces (client and DNS pods, not the node).
    pub fn glob(&self) -> String {
        format!("{}-[pd]*", self.prefix)
    }

    /// The glob that matches only the client pods.
    pub fn client_glob(&self) -> String {
        format!("{}-p*", self.prefix)
    }

    /// The DNS targets a sweep should probe: the VIP and every DNS pod, port 53.
    pub fn targets(&self) -> Vec<SocketAddr> {
        let mut t = vec![SocketAddr::new(IpAddr::V4(LAB_DNS_VIP), 53)];
        t.extend(
            self.dns
                .iter()
                .map(|d| SocketAddr::new(IpAddr::V4(d.pod.ip), 53)),
        );
        t
    }

    /// Drops UDP port 53 at DNS pod `i` (an nftables input rule in its namespace); TCP still works.
    pub fn drop_udp_at_dns_pod(&self, i: usize) {
        nft(
            &self.dns[i].pod.ns,
            "table inet fault {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    udp dport 53 drop\n  }\n}\n",
        );
    }

    /// Runs `ip link set <client pod i's node-side veth> ARGS...` in the node namespace
    /// (`down`, `nomaster`, ...).
    pub fn set_host_veth(&self, i: usize, args: &[&str]) {
        let mut cmd = vec![
            "-n",
            self.node.name(),
            "link",
            "set",
            self.pods[i].host_veth.as_str(),
        ];
        cmd.extend_from_slice(args);
        ip(&cmd);
    }

    /// Undoes [`Lab::drop_udp_at_dns_pod`].
    pub fn restore_udp_at_dns_pod(&self, i: usize) {
        nft(&self.dns[i].pod.ns, "delete table inet fault\n");
    }
}
