//! Test fixtures shared by the workspace's tests and benchmarks.
//!
//! - [`Dnsmasq`]: a real DNS server (Debian's `dnsmasq`) on a loopback address, serving only the
//!   records given — never forwarding anywhere (`--no-resolv`, no `--server`), so no test can
//!   reach the machine's own resolver.
//! - [`ScriptedServer`]: a DNS server on hickory-proto whose misbehaviour is scripted per
//!   transport (silence, SERVFAIL, truncation, spoofed IDs, garbage, ...), for the failure modes
//!   a real server will not produce on demand.
//! - [`HostileServer`]: replies written byte by byte for what no encoder produces: compression
//!   loops, other owners, other questions, endless TCP streams, oversize datagrams, records a
//!   strict decoder refuses, CNAME-only answers.
//! - [`MemoryCgroup`]: a memory cgroup with a limit, as a pod gets, OOM kills counted.
//! - [`unique_name`] and [`free_port`]: per-run names and ports.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod background;
#[cfg(target_os = "linux")]
mod cgroup;
mod cluster;
#[cfg(target_os = "linux")]
mod cluster_lab;
mod dnsmasq;
mod fakeapi;
mod hostile;
mod http;
#[cfg(target_os = "linux")]
mod lab;
#[cfg(target_os = "linux")]
mod netns;
mod rbac;
mod scripted;

#[cfg(target_os = "linux")]
pub use cgroup::MemoryCgroup;
#[cfg(target_os = "linux")]
pub use cluster::install_cluster;
pub use cluster::{
    agent_pod, coredns_pod, coredns_pod_on, endpoint_slice, install_coredns, oom_killed,
    oom_killed_at, pod_uid, rfc3339,
};
#[cfg(target_os = "linux")]
pub use cluster_lab::{ClusterDnsPod, ClusterLab, LabNode, UNDERLAY_GATEWAY};
pub use dnsmasq::Dnsmasq;
pub use fakeapi::{ADMIN, AuditEntry, FakeApi};
pub use hostile::{Hostile, HostileServer};
pub use http::{HttpResponse, http, metric_value};
#[cfg(target_os = "linux")]
pub use lab::{LAB_API_IP, LAB_DNS_VIP, LAB_GATEWAY, Lab, LabDnsPod, LabPod, nft};
#[cfg(target_os = "linux")]
pub use netns::{Netns, ip};
pub use rbac::{Attributes, Rbac};
pub use scripted::{Behaviour, ScriptedServer};

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// Panics with "needs root: `what`" unless the effective UID is 0: a test that needs root fails
/// loudly without it, never passes silently. The namespace fixtures call it themselves.
pub fn needs_root(what: &str) {
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2).map(str::to_owned)
        });
    assert!(
        euid.as_deref() == Some("0"),
        "needs root: {what} (network namespaces, veths and nftables need CAP_SYS_ADMIN and CAP_NET_ADMIN; run the tests as root, as CI does)"
    );
}

/// A name unique to this process and call, short enough for a network interface (15 bytes) when
/// `prefix` is at most 4 bytes: `prefix` + 5 hex digits of the PID + 3 of a counter + 3 of time.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{:05x}{:03x}{:03x}",
        std::process::id() & 0xfffff,
        n & 0xfff,
        (nanos >> 8) & 0xfff
    )
}

/// A loopback address of its own for one server: `127.X.Y.Z` from the PID and a counter, so
/// servers of concurrent tests (and runs) never share an address, and a port freed by one cannot
/// be taken by another. All of 127.0.0.0/8 is routed to `lo` on Linux.
pub fn loopback() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff;
    let pid = std::process::id() & 0x7f;
    IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        (100 + pid) as u8,
        (n >> 8) as u8,
        (n & 0xff).max(1) as u8,
    ))
}

/// A port free for both UDP and TCP on `ip` right now.
pub fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(SocketAddr::new(ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on {ip} after 100 tries");
}

/// A loopback port that refuses: bound, then closed, so nothing listens (UDP gets ICMP port
/// unreachable, TCP a RST).
pub fn closed_port(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, free_port(ip))
}
