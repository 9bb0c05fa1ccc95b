use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::Dnsmasq;
use crate::netns::{Netns, ip};

/// The Service VIP of the lab's cluster DNS (kube-dns).
pub const LAB_DNS_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The IPv6 Service VIP of the lab's cluster DNS, in a dual-stack lab.
pub const LAB_DNS_VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x96, 0, 0, 0, 0, 0xa);
/// The `kube-dns-upstream` Service of a lab with a node-local cache: the cache's way to
/// CoreDNS, DNAT'ed to the DNS pods like the DNS VIP.
pub const LAB_UPSTREAM_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 11);
/// Where a lab's node-local cache listens (NodeLocal DNSCache's default address).
pub const LAB_NODELOCAL_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 20, 10);

/// A pod's IPv6 address in a dual-stack lab: `10.244.A.B` is `fd00:10:244:A::B`.
pub fn lab_v6(v4: Ipv4Addr) -> Ipv6Addr {
    let [_, _, a, b] = v4.octets();
    Ipv6Addr::new(0xfd00, 0x10, 0x244, u16::from(a), 0, 0, 0, u16::from(b))
}
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
    /// Its eth0 IPv6 address, in a dual-stack lab ([`lab_v6`] of `ip`).
    pub ip6: Option<Ipv6Addr>,
    /// The node-side veth's name, in the node namespace.
    pub host_veth: String,
    resolv_dir: PathBuf,
}

impl LabPod {
    /// Starts a lab DNS pod's server in this pod: dnsmasq on its addresses (IPv4, and IPv6 in a
    /// dual-stack lab), port 53, answering `kubernetes.default.svc.cluster.local` with the lab's
    /// API address.
    pub(crate) fn serve_dns(&self) -> Dnsmasq {
        let ips: Vec<IpAddr> = std::iter::once(IpAddr::V4(self.ip))
            .chain(self.ip6.map(IpAddr::V6))
            .collect();
        let api = (
            "kubernetes.default.svc.cluster.local",
            IpAddr::V4(LAB_API_IP),
        );
        Dnsmasq::start_in_addrs(&self.ns, &ips, 53, &[api], "cluster.local")
    }

    /// A pod namespace `name` on a veth whose node side `host_veth` is enslaved to the bridge
    /// `br0` of `node` (hairpin on), with `addr`/`prefix`, a default route via `gateway`, and a
    /// resolv.conf naming the DNS VIP. With `ipv6`, also [`lab_v6`] of `addr` (`prefix` + 40)
    /// and an IPv6 default route via `lab_v6(gateway)`.
    pub(crate) fn attach(
        node: &Netns,
        name: &str,
        host_veth: &str,
        (addr, prefix): (Ipv4Addr, u8),
        gateway: Ipv4Addr,
        ipv6: bool,
    ) -> LabPod {
        let ns = Netns::new_named(name);
        if ipv6 {
            no_dad(&ns);
        }
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
        let ip6 = ipv6.then(|| lab_v6(addr));
        if let Some(v6) = ip6 {
            let n = ns.name();
            let cidr = format!("{v6}/{}", prefix + 40);
            // nodad: usable at once, not tentative for a second or two.
            ip(&["-n", n, "-6", "addr", "add", &cidr, "dev", "eth0", "nodad"]);
            let via = lab_v6(gateway).to_string();
            ip(&["-n", n, "-6", "route", "add", "default", "via", &via]);
        }
        let resolv_dir = PathBuf::from("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&resolv_dir).unwrap();
        let pod = LabPod {
            ns,
            ip: addr,
            ip6,
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

/// What a [`Lab`] has besides IPv4 pods and DNS pods behind a VIP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LabOptions {
    /// Dual-stack: every pod also has an IPv6 address ([`lab_v6`]), the DNS pods answer on it,
    /// and the IPv6 VIP [`LAB_DNS_VIP6`] is DNAT'ed to them.
    pub ipv6: bool,
    /// A node-local cache (NodeLocal DNSCache's shape): a caching dnsmasq in the node namespace
    /// on [`LAB_NODELOCAL_IP`], bound to an interface named `nodelocaldns`, forwarding
    /// `cluster.local` to [`LAB_UPSTREAM_VIP`] (DNAT'ed to the DNS pods, as the
    /// `kube-dns-upstream` Service is).
    pub nodelocal: bool,
}

impl LabOptions {
    /// Dual-stack.
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// With a node-local cache.
    pub fn nodelocal(mut self) -> Self {
        self.nodelocal = true;
        self
    }
}

/// A miniature Kubernetes node in network namespaces, built the way a bridge CNI and kube-proxy
/// build one:
///
/// - a node namespace with a bridge `br0` (10.244.0.1/16), `ip_forward` on, hairpin on every
///   port, a route for the Service range 10.96.0.0/12 onto the bridge, and nftables NAT: the
///   DNS VIP 10.96.0.10:53 (UDP and TCP) DNAT'ed round-robin to the DNS pods in `prerouting`
///   (from pods) and `output` (from the node), with masquerade of the DNAT'ed traffic;
/// - DNS pods (10.244.0.2, .3, ...) running dnsmasq that answer
///   `kubernetes.default.svc.cluster.local A 10.96.0.1` and NXDOMAIN for any other name;
/// - client pods (10.244.x.y) with a default route via the bridge and a resolv.conf naming the
///   VIP in `/etc/netns/<ns>/resolv.conf`;
/// - with [`LabOptions`], IPv6 beside all of it (`fd00:10:244::/56` on the bridge, the VIP
///   `fd00:10:96::a` in `fd00:10:96::/112`), and a node-local cache.
///
/// Every name starts with a prefix unique to the run; everything is removed on drop, even when
/// the test panics. Needs root, iproute2, nftables and dnsmasq.
#[derive(Debug)]
pub struct Lab {
    /// The node-local cache, with [`LabOptions::nodelocal`] (dropped first).
    pub nodelocal: Option<Dnsmasq>,
    /// The DNS pods (dropped before the client pods and the node).
    pub dns: Vec<LabDnsPod>,
    /// The client pods.
    pub pods: Vec<LabPod>,
    /// The node namespace: run the tool under test here.
    pub node: Netns,
    prefix: String,
    options: LabOptions,
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

/// A node's IPv6 side: `pods_cidr` on its bridge `br0` (the pods' gateway and range), the IPv6
/// Service range `fd00:10:96::/112` routed onto the bridge, forwarding on.
pub(crate) fn node_ipv6(node: &Netns, pods_cidr: &str) {
    let n = node.name();
    ip(&[
        "-n", n, "-6", "addr", "add", pods_cidr, "dev", "br0", "nodad",
    ]);
    ip(&[
        "-n",
        n,
        "-6",
        "route",
        "add",
        "fd00:10:96::/112",
        "dev",
        "br0",
    ]);
    // br_netfilter would bridge a DNAT'ed IPv6 packet straight to a pod on the same bridge, past
    // the masquerade, and the reply would come from the pod's own address: IPv6 here goes
    // through the node's routing, as kube-proxy's IPv6 rules expect.
    sysctl(
        node,
        &[
            "net.ipv6.conf.all.forwarding=1",
            "net.bridge.bridge-nf-call-ip6tables=0",
        ],
    );
}

/// No IPv6 duplicate address detection on the interfaces `ns` gets from now on: their
/// link-local addresses, which neighbour discovery sends from, are usable at once instead of
/// tentative for a second or two (during which a first packet waits for its neighbour).
pub(crate) fn no_dad(ns: &Netns) {
    sysctl(
        ns,
        &[
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ],
    );
}

/// Sets sysctls (`key=value`) in `ns`; panics naming the one that failed.
pub(crate) fn sysctl(ns: &Netns, kvs: &[&str]) {
    for kv in kvs {
        let ok = (ns.command("sysctl").args(["-qw", kv]).status()).is_ok_and(|s| s.success());
        assert!(ok, "sysctl {kv} in {} failed", ns.name());
    }
}

/// The kube-proxy-like NAT of a node: each `(VIP, backends)` DNAT'ed round-robin, UDP and TCP
/// port 53, in `prerouting` (from pods) and `output` (from the node), and the DNAT'ed traffic
/// of `pod_range` masqueraded. IPv4 and IPv6 alike (`family` `ip` or `ip6`).
pub(crate) fn service_nat(
    node: &Netns,
    family: &str,
    services: &[(IpAddr, Vec<IpAddr>)],
    pod_range: &str,
) {
    let dnat: Vec<String> = (services.iter())
        .filter(|(_, b)| !b.is_empty())
        .map(|(vip, backends)| {
            let map: Vec<String> = (backends.iter().enumerate())
                .map(|(i, b)| format!("{i} : {b}"))
                .collect();
            let to = format!(
                "numgen inc mod {} map {{ {} }}:53",
                backends.len(),
                map.join(", ")
            );
            format!(
                "{family} daddr {vip} udp dport 53 dnat {family} to {to}\n    {family} daddr {vip} tcp dport 53 dnat {family} to {to}"
            )
        })
        .collect();
    if dnat.is_empty() {
        return;
    }
    let dnat = dnat.join("\n    ");
    let table = if family == "ip" { "lab" } else { "lab6" };
    nft(
        node,
        &format!(
            "table {family} {table} {{
  chain pre {{ type nat hook prerouting priority dstnat; policy accept;
    {dnat}
  }}
  chain out {{ type nat hook output priority -100; policy accept;
    {dnat}
  }}
  chain post {{ type nat hook postrouting priority srcnat; policy accept;
    ct status dnat {family} saddr {pod_range} masquerade
  }}
}}
"
        ),
    );
}

impl Lab {
    /// Builds a node with `dns_pods` DNS pods and `client_pods` client pods, IPv4 only.
    pub fn new(dns_pods: usize, client_pods: usize) -> Lab {
        Self::with(dns_pods, client_pods, LabOptions::default())
    }

    /// Builds a node with `dns_pods` DNS pods, `client_pods` client pods and `options`.
    pub fn with(dns_pods: usize, client_pods: usize, options: LabOptions) -> Lab {
        let prefix = crate::unique_name("hl");
        let node = Netns::new_named(&format!("{prefix}-node"));
        if options.ipv6 {
            no_dad(&node);
        }
        let n = node.name().to_owned();
        // No multicast snooping: see ClusterLab (IPv6 neighbour discovery on a fresh bridge).
        let nosnoop = ["type", "bridge", "mcast_snooping", "0"];
        ip(&[&["-n", &n, "link", "add", "br0"][..], &nosnoop].concat());
        ip(&["-n", &n, "addr", "add", "10.244.0.1/16", "dev", "br0"]);
        ip(&["-n", &n, "link", "set", "br0", "up"]);
        ip(&["-n", &n, "route", "add", "10.96.0.0/12", "dev", "br0"]);
        sysctl(&node, &["net.ipv4.ip_forward=1"]);
        if options.ipv6 {
            node_ipv6(&node, &format!("{}/56", lab_v6(LAB_GATEWAY)));
        }
        let mut lab = Lab {
            nodelocal: None,
            dns: Vec::new(),
            pods: Vec::new(),
            node,
            prefix,
            options,
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
        if options.nodelocal {
            lab.start_nodelocal();
        }
        lab
    }

    fn dns_pod(&self, suffix: &str, addr: Ipv4Addr) -> LabDnsPod {
        let pod = self.add_pod(suffix, addr);
        let server = pod.serve_dns();
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
            self.options.ipv6,
        )
    }

    fn install_service(&self) {
        let v4: Vec<IpAddr> = self.dns.iter().map(|d| IpAddr::V4(d.pod.ip)).collect();
        let mut services = vec![(IpAddr::V4(LAB_DNS_VIP), v4.clone())];
        if self.options.nodelocal {
            services.push((IpAddr::V4(LAB_UPSTREAM_VIP), v4));
        }
        service_nat(&self.node, "ip", &services, "10.244.0.0/16");
        if self.options.ipv6 {
            let v6: Vec<IpAddr> = (self.dns.iter())
                .filter_map(|d| d.pod.ip6.map(IpAddr::V6))
                .collect();
            service_nat(
                &self.node,
                "ip6",
                &[(IpAddr::V6(LAB_DNS_VIP6), v6)],
                "fd00:10:244::/56",
            );
        }
    }

    /// The node-local cache: an interface `nodelocaldns` holding [`LAB_NODELOCAL_IP`] (a bridge
    /// without ports stands in for NodeLocal DNSCache's dummy interface: it holds addresses the
    /// same way), and a caching dnsmasq on it whose upstream is [`LAB_UPSTREAM_VIP`].
    fn start_nodelocal(&mut self) {
        let n = self.node.name().to_owned();
        let cidr = format!("{LAB_NODELOCAL_IP}/32");
        ip(&["-n", &n, "link", "add", "nodelocaldns", "type", "bridge"]);
        ip(&["-n", &n, "addr", "add", &cidr, "dev", "nodelocaldns"]);
        ip(&["-n", &n, "link", "set", "nodelocaldns", "up"]);
        self.nodelocal = Some(Dnsmasq::start_cache_in(
            &self.node,
            IpAddr::V4(LAB_NODELOCAL_IP),
            53,
            SocketAddr::new(IpAddr::V4(LAB_UPSTREAM_VIP), 53),
            "cluster.local",
        ));
    }

    /// The glob that matches this lab's pod namespaces (client and DNS pods, not the node).
    pub fn glob(&self) -> String {
        format!("{}-[pd]*", self.prefix)
    }

    /// Runs `bin` (the hc-cli under test) with `args` and `--json` in the node's namespace,
    /// colour off, and reads its JSON report, panicking with its output when it is none. Logs
    /// how long it took and the finding codes it reported (the time to name a fault).
    pub fn run_json(&self, bin: &str, args: &[String]) -> (i32, serde_json::Value) {
        let started = std::time::Instant::now();
        let o = (self.node.command(bin).args(args).arg("--json"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        let mut codes: Vec<&str> = (v.as_array().into_iter().flatten())
            .flat_map(|e| e["findings"].as_array().into_iter().flatten())
            .filter_map(|f| f["code"].as_str())
            .collect();
        codes.sort_unstable();
        codes.dedup();
        let flags: Vec<&String> = args.iter().filter(|a| a.starts_with("--")).collect();
        eprintln!(
            "{flags:?} took {:?}: {}",
            started.elapsed(),
            codes.join(",")
        );
        (o.status.code().unwrap_or(-1), v)
    }

    /// `hc-cli sweep --json` (`bin`) of [`Lab::targets`] from the node, as a pod expects them
    /// (`--expect 10.96.0.1 --dns-service 10.96.0.10 --timeout 400ms`), of the namespaces that
    /// match `glob`, with `extra` flags: its exit code and report.
    pub fn sweep(&self, bin: &str, glob: &str, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let mut args: Vec<String> = vec!["sweep".into()];
        for t in self.targets() {
            args.extend(["--target".into(), t.to_string()]);
        }
        let fixed = ["--expect", "10.96.0.1", "--dns-service", "10.96.0.10"];
        let more = ["--timeout", "400ms", "--netns-glob", glob];
        args.extend(
            fixed
                .iter()
                .chain(&more)
                .chain(extra)
                .map(|s| s.to_string()),
        );
        let (code, v) = self.run_json(bin, &args);
        (code, v.as_array().cloned().unwrap_or_default())
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

    /// The IPv6 DNS targets of a dual-stack lab: the IPv6 VIP and every DNS pod's IPv6 address,
    /// port 53 (empty in an IPv4 lab).
    pub fn targets6(&self) -> Vec<SocketAddr> {
        if !self.options.ipv6 {
            return Vec::new();
        }
        let mut t = vec![SocketAddr::new(IpAddr::V6(LAB_DNS_VIP6), 53)];
        t.extend(
            (self.dns.iter())
                .filter_map(|d| d.pod.ip6)
                .map(|ip| SocketAddr::new(IpAddr::V6(ip), 53)),
        );
        t
    }

    /// Cuts the node-local cache from its upstream: the node drops what it sends to
    /// [`LAB_UPSTREAM_VIP`] (as a `kube-dns-upstream` Service without endpoints would). Names
    /// the cache holds still answer; others fail. The DNS pods still answer directly.
    pub fn break_nodelocal_upstream(&self) {
        nft(
            &self.node,
            &format!(
                "table ip nlfault {{\n  chain out {{ type filter hook output priority -200; policy accept;\n    ip daddr {LAB_UPSTREAM_VIP} drop\n  }}\n}}\n"
            ),
        );
    }

    /// Stops the node-local cache (its address then refuses).
    pub fn kill_nodelocal(&mut self) {
        if let Some(c) = &mut self.nodelocal {
            c.kill();
        }
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
