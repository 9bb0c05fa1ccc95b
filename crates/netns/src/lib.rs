//! # hc_netns
//!
//! Linux network namespaces for DNS health checks: find every namespace of a node, open sockets
//! and run code inside one without disturbing the async runtime, and diagnose why DNS fails from
//! there.
//!
//! - **Enumerate** ([`scan`]): `<proc-root>/[0-9]*/ns/net`, deduplicated by (device, inode), one
//!   representative (lowest) PID per namespace with its process name, merged with the bind mounts
//!   under `/run/netns` and `/var/run/netns` (CNI's `cni-*` names), and attributed to a Kubernetes
//!   pod UID and container ID from the process's cgroup ([`parse_cgroup`]: v1 and v2, systemd and
//!   cgroupfs drivers, containerd, CRI-O and Docker naming). Works on the host's `/proc` mounted
//!   anywhere (`/host/proc` in a DaemonSet).
//! - **Enter** ([`run_in`], [`run_in_each`]): on a dedicated OS thread, never a tokio worker.
//!   Sockets created there stay in the namespace: hand them to a prober running on the runtime.
//! - **Diagnose** ([`snapshot`] over rtnetlink, then the pure [`diagnose_path`] and
//!   [`check_resolv_conf`]): route to the target, default route, interfaces up and addressed, the
//!   node-side veth peer present, up, and bridged or routed, resolv.conf nameservers and glibc's
//!   limits. Findings carry stable kebab-case codes ([`FindingCode`]).
//! - **Netfilter** ([`read_stats`], [`dump_udp_entries`], [`read_ruleset`] over nfnetlink, then
//!   the pure [`conntrack_findings`], [`stale_entries`], [`culprits`]): conntrack insert
//!   failures and a full table during a DNS failure, UDP entries still leading to a replaced
//!   CoreDNS pod, and the nftables (or iptables-nft) rule that drops or rejects a failing path.
//!
//! - **Sweep** ([`sweep`], [`check`]): probe the DNS targets from the caller's namespace and
//!   from every selected pod namespace at once (sockets opened inside each, probes by
//!   [`dnsprobe`] on the caller's runtime), follow a UDP failure with TCP, and diagnose; a
//!   [`NamespaceBook`] keeps a rotating share per round and what is known between rounds.
//!
//! The parsers and the diagnosis rules are pure and portable; the parts that touch the kernel
//! are Linux-only (`cfg(target_os = "linux")`).
//!
//! ## Capabilities
//! Listing `/proc/PID/ns/net` of other users' processes needs `CAP_SYS_PTRACE`; entering a
//! namespace (`setns`) needs `CAP_SYS_ADMIN`. Errors say which ([`NetnsError`]).
//!
//! ## Example
//! ```no_run
//! # #[cfg(target_os = "linux")]
//! # fn main() -> Result<(), hc_netns::NetnsError> {
//! let scan = hc_netns::scan(&hc_netns::ScanOptions::default())?;
//! for ns in &scan.namespaces {
//!     println!("{} {} pod={:?}", ns.inode, ns.label(), ns.pod_uid);
//! }
//! // Open a UDP socket inside the first named namespace.
//! if let Some(ns) = scan.namespaces.iter().find(|n| n.name.is_some()) {
//!     let sock = hc_netns::run_in(&ns.path, || std::net::UdpSocket::bind("0.0.0.0:0"))?;
//!     println!("{:?}", sock.map(|s| s.local_addr()));
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(target_os = "linux"))]
//! # fn main() {}
//! ```

mod cgroup;
mod conntrack;
mod diagnose;
mod finding;
mod nftables;
mod nodelocal;
mod resolv;
mod walk;

pub use cgroup::{KubeRef, from_path as cgroup_path_ref, parse_cgroup};
pub use conntrack::{
    ConntrackGrowth, ConntrackStats, StaleDestination, StatsParseError, UdpEntry, WATCHED,
    conntrack_findings, stale_entries, stale_finding,
};
#[cfg(target_os = "linux")]
pub use conntrack::{dump_udp_entries, read_stats};
pub use diagnose::{
    Address, KUBERNETES_SEARCH_DOMAINS, Link, Lookup, NetSnapshot, Route, check_resolv_conf,
    diagnose_path, outside_lookup_queries,
};
pub use finding::{
    Finding, FindingCode, Severity, compare_transports, parallel_finding, transport_findings,
};
#[cfg(target_os = "linux")]
pub use nftables::read_ruleset;
pub use nftables::{
    Action, CmpOp, Cond, Culprit, Field, Fit, Flow, NftRule, culprit_finding, culprits,
};
pub use nodelocal::{NODELOCAL_INTERFACE, NodeLocalCache, detect_nodelocal, nodelocal_findings};
pub use resolv::{
    GLIBC_DEFAULT_ATTEMPTS, GLIBC_DEFAULT_TIMEOUT, GLIBC_MAX_NAMESERVERS, GLIBC_MAX_SEARCH,
    LEGACY_MAX_SEARCH, ResolvConf, ResolverOptions,
};
pub use walk::{
    Ask, CLIENT_LOOKUP_NAME, CLUSTER_FIRST_QUERIES, ClientLookup, Exchange, Heard, LookupResult,
    MAX_WALK_SENDS, WalkStep, walk,
};

#[cfg(target_os = "linux")]
mod enter;
#[cfg(target_os = "linux")]
mod enumerate;
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
mod files;
#[cfg(target_os = "linux")]
mod netfilter;
#[cfg(target_os = "linux")]
mod nfnl;
#[cfg(target_os = "linux")]
mod rotation;
#[cfg(target_os = "linux")]
mod snapshot;
#[cfg(target_os = "linux")]
mod sweep;
#[cfg(target_os = "linux")]
mod walk_net;

#[cfg(target_os = "linux")]
pub use enter::{run_in, run_in_each};
#[cfg(target_os = "linux")]
pub use enumerate::{Namespace, NamespaceTable, Scan, ScanOptions, identity, scan};
#[cfg(target_os = "linux")]
pub use error::NetnsError;
#[cfg(target_os = "linux")]
pub use files::{MAX_FILE, read_in_root, read_small};
#[cfg(target_os = "linux")]
pub use rotation::{KnownNamespace, NamespaceBook, NamespaceSummary};
#[cfg(target_os = "linux")]
pub use snapshot::snapshot;
#[cfg(target_os = "linux")]
pub use sweep::{
    NamespaceJson, NsReport, SweepConfig, check, discover, select, stale_endpoints, sweep,
};
