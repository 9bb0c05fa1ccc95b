//! The sweep: probe the DNS targets from this namespace and from pod namespaces, all at once,
//! follow a UDP failure on the path with TCP, and diagnose what fails.
//!
//! Sockets are opened inside each namespace on one dedicated thread ([`crate::run_in_each`]),
//! then every probe runs concurrently on the caller's runtime (see [`dnsprobe`] for what that
//! runtime needs), under one in-flight limit shared by all namespaces: they all aim at the same
//! few servers.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use dnsprobe::hickory_proto::op::ResponseCode;
use dnsprobe::hickory_proto::rr::Name;
use dnsprobe::socket2::Socket;
use dnsprobe::{
    AnswerExpectation, Expectation, InFlightLimit, JsonReport, Preopened, ProbeReport, ProbeSpec,
    Prober, Transport, TransportMode,
};
use futures_util::future::join_all;
use serde::Serialize;

use crate::conntrack::{ConntrackGrowth, conntrack_findings};
use crate::enumerate::{Namespace, ScanOptions, identity, scan};
use crate::error::NetnsError;
use crate::finding::{Finding, FindingCode, parallel_finding, transport_findings};
use crate::netfilter::{self, Failing};
use crate::nodelocal::{NodeLocalCache, detect_nodelocal, miss_name, nodelocal_findings};
use crate::resolv::ResolvConf;
use crate::walk::{CLIENT_LOOKUP_NAME, ClientLookup};
use crate::{NetSnapshot, check_resolv_conf, diagnose_path};

/// What to sweep and how.
///
/// ```
/// let cfg = hc_netns::SweepConfig::new(vec!["10.96.0.10:53".parse().unwrap()]);
/// assert_eq!(cfg.proc_root, std::path::Path::new("/proc"));
/// assert_eq!(cfg.attempts, 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SweepConfig {
    /// The DNS servers every namespace probes.
    pub targets: Vec<SocketAddr>,
    /// The query (name, timeout, attempts, expectation); its target is replaced per probe.
    pub probe: ProbeSpec,
    /// Addresses a pod's resolv.conf must name; empty: resolv.conf is not checked.
    pub dns_service: Vec<IpAddr>,
    /// Namespaces to sweep by name (under /run/netns) or path (`/proc/PID/ns/net`).
    pub netns: Vec<String>,
    /// Namespaces to sweep by a glob on their /run/netns name.
    pub netns_glob: Option<glob::Pattern>,
    /// The node's proc filesystem.
    pub proc_root: PathBuf,
    /// Attempts per probe (one socket is opened ahead for each).
    pub attempts: u32,
    /// Each pod namespace sends one query, to what the pod itself uses: the first nameserver of
    /// its own resolv.conf (port 53) when that is a known cluster-DNS address (`targets`,
    /// `dns_service`, or a node-local cache the node binds), else the first target. The agent's
    /// mode; otherwise every target (and the pod's own nameserver when it is a node-local cache).
    pub own_nameservers: bool,
    /// How many of the swept pod namespaces (the first ones) also resolve
    /// [`CLIENT_LOOKUP_NAME`] the way glibc would through their own resolv.conf ([`crate::walk`]):
    /// about 4 queries each. 0: none.
    pub client_walks: usize,
    /// The DNS pods' addresses as they are now (the Service's endpoints). With them, UDP
    /// conntrack entries to a Service address that lead elsewhere are reported
    /// (`conntrack-stale-endpoint`), and a dropping rule written for a pod's address is matched
    /// to a failing probe of the Service. Empty: neither.
    pub endpoints: Vec<IpAddr>,
}

impl SweepConfig {
    /// A sweep of `targets` from every namespace, with the default query, `/proc`, one attempt.
    pub fn new(targets: Vec<SocketAddr>) -> Self {
        SweepConfig {
            targets,
            probe: ProbeSpec::new(SocketAddr::from(([0, 0, 0, 0], 53))),
            dns_service: Vec::new(),
            netns: Vec::new(),
            netns_glob: None,
            proc_root: PathBuf::from("/proc"),
            attempts: 1,
            own_nameservers: false,
            client_walks: 0,
            endpoints: Vec::new(),
        }
    }

    pub(crate) fn spec(&self, target: SocketAddr, transport: Transport) -> ProbeSpec {
        let mode = match transport {
            Transport::Udp => TransportMode::Udp,
            Transport::Tcp => TransportMode::Tcp,
        };
        // Sockets are opened ahead inside each namespace: a truncated reply is reported as such.
        self.probe
            .clone()
            .with_target(target)
            .with_transport(mode)
            .with_tcp_fallback(false)
            .with_attempts(self.attempts)
    }

    /// The addresses the answer must hold, if any.
    pub fn expected(&self) -> &[IpAddr] {
        match &self.probe.expect.answer {
            AnswerExpectation::Contains(v) | AnswerExpectation::Equals(v) => v,
            _ => &[],
        }
    }
}

/// One swept namespace. Serializes to the object of `hc-cli sweep --json` (a contract:
/// `netns`, `healthy`, `probes`, `findings`); `Display` gives its one-line summary.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NsReport {
    /// The namespace.
    pub ns: Namespace,
    /// The namespace the sweep runs in (the node's, for a hostNetwork agent).
    pub host: bool,
    /// The UDP probes, then any TCP follow-ups.
    pub probes: Vec<ProbeReport>,
    /// What is wrong, if anything: errors, and warnings (which leave the namespace healthy).
    pub findings: Vec<Finding>,
    /// The client's path, when this namespace was walked ([`SweepConfig::client_walks`]).
    pub client: Option<ClientLookup>,
    /// How much the namespace's conntrack counters grew during the check, when it has a
    /// connection tracker.
    pub conntrack: Option<ConntrackGrowth>,
}

impl NsReport {
    /// A report with no probe yet.
    pub fn new(ns: Namespace, host: bool) -> Self {
        NsReport {
            ns,
            host,
            probes: Vec::new(),
            findings: Vec::new(),
            client: None,
            conntrack: None,
        }
    }

    /// Every probe passed and there is no finding but warnings.
    pub fn healthy(&self) -> bool {
        !self.findings.iter().any(Finding::is_error) && self.probes.iter().all(ProbeReport::healthy)
    }
}

impl Serialize for NsReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            netns: NamespaceJson<'a>,
            healthy: bool,
            probes: Vec<JsonReport>,
            findings: &'a [Finding],
            #[serde(skip_serializing_if = "Option::is_none")]
            client: Option<&'a ClientLookup>,
            conntrack: Option<&'a ConntrackGrowth>,
        }
        View {
            netns: NamespaceJson {
                ns: &self.ns,
                host: self.host,
            },
            healthy: self.healthy(),
            probes: self.probes.iter().map(JsonReport::from).collect(),
            findings: &self.findings,
            client: self.client.as_ref(),
            conntrack: self.conntrack.as_ref(),
        }
        .serialize(s)
    }
}

/// A namespace as `hc-cli netns list --json` prints it: its fields, and `host: true` on the
/// namespace the caller runs in.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceJson<'a> {
    /// The namespace.
    #[serde(flatten)]
    pub ns: &'a Namespace,
    /// True for the caller's own namespace (absent otherwise).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub host: bool,
}

/// `OK`/`FAIL` aside, the line `hc-cli sweep` prints: who, then what was answered or what is
/// wrong, then any warnings (`warning: CODE: ...`). A target's own probe finding is left out when
/// `udp-blocked` or `dns-unreachable` already says what it found (JSON keeps both). The alternate
/// form (`{:#}`) puts each finding on a line of its own, as `\n    - code: message`.
impl fmt::Display for NsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host {
            write!(f, "host (netns {})", self.ns.inode)?;
        } else {
            f.write_str(&self.ns.label())?;
        }
        if let Some(uid) = &self.ns.pod_uid {
            write!(f, " pod={uid}")?;
        }
        let warnings: Vec<String> = (self.findings.iter())
            .filter(|x| !x.is_error())
            .map(|x| format!("warning: {x}"))
            .collect();
        if self.healthy() {
            let ok = self.probes.iter().filter(|p| p.healthy()).count();
            write!(f, ": {ok} probes answered")?;
            return warnings.iter().try_for_each(|w| write!(f, "; {w}"));
        }
        let summarized = |x: &Finding| {
            matches!(x.code, FindingCode::Probe(_))
                && self.findings.iter().any(|g| {
                    g.target == x.target
                        && matches!(
                            g.code,
                            FindingCode::UdpBlocked | FindingCode::DnsUnreachable
                        )
                })
        };
        let words: Vec<String> = (self.findings.iter())
            .filter(|x| x.is_error() && !summarized(x))
            .map(ToString::to_string)
            .chain(warnings)
            .collect();
        if f.alternate() {
            f.write_str(":")?;
            return words.iter().try_for_each(|w| write!(f, "\n    - {w}"));
        }
        write!(f, ": {}", words.join("; "))
    }
}

/// Chooses the namespaces to sweep from a scan: `netns` and `netns_glob` when given, else every
/// namespace found; never `me` (the caller's own). In the scan's order (PIDs, then names).
pub fn select(
    cfg: &SweepConfig,
    found: &[Namespace],
    me: (u64, u64),
) -> Result<Vec<Namespace>, NetnsError> {
    let mut chosen: BTreeMap<(u64, u64), Namespace> = BTreeMap::new();
    for want in &cfg.netns {
        let ns = if want.contains('/') {
            let id = identity(Path::new(want))?;
            found
                .iter()
                .find(|n| (n.dev, n.inode) == id)
                .cloned()
                .unwrap_or_else(|| Namespace::at(id, PathBuf::from(want)))
        } else {
            found
                .iter()
                .find(|n| n.name.as_deref() == Some(want.as_str()))
                .cloned()
                .ok_or_else(|| NetnsError::UnknownName { name: want.clone() })?
        };
        chosen.insert((ns.dev, ns.inode), ns);
    }
    if let Some(g) = &cfg.netns_glob {
        for n in found
            .iter()
            .filter(|n| n.name.as_deref().is_some_and(|name| g.matches(name)))
        {
            chosen.insert((n.dev, n.inode), n.clone());
        }
    }
    if cfg.netns.is_empty() && cfg.netns_glob.is_none() {
        for n in found {
            chosen.insert((n.dev, n.inode), n.clone());
        }
    }
    chosen.remove(&me);
    let mut out: Vec<Namespace> = chosen.into_values().collect();
    out.sort_by_key(|n| (n.pid.is_none(), n.pid, n.name.clone()));
    Ok(out)
}

/// The namespace the caller runs in, and the namespaces `cfg` selects. Blocking (it reads the
/// proc root): call it off the async runtime's threads.
pub fn discover(cfg: &SweepConfig) -> Result<(Namespace, Vec<Namespace>), NetnsError> {
    let found = scan(&ScanOptions {
        proc_root: cfg.proc_root.clone(),
        ..ScanOptions::default()
    })?;
    let self_path = Path::new("/proc/self/ns/net");
    let me = identity(self_path)?;
    let pods = select(cfg, &found.namespaces, me)?;
    let host = found
        .namespaces
        .iter()
        .find(|n| (n.dev, n.inode) == me)
        .cloned()
        .unwrap_or_else(|| {
            let mut n = Namespace::at(me, self_path.to_owned());
            n.pid = Some(std::process::id());
            n.process = Some("hc-cli".into());
            n
        });
    Ok((host, pods))
}

/// Sweeps our own namespace first, then every namespace `cfg` selects.
pub async fn sweep(cfg: &SweepConfig) -> Result<Vec<NsReport>, NetnsError> {
    let c = cfg.clone();
    let (host, pods) = blocking("the namespace scan", move || discover(&c)).await??;
    Ok(check(cfg, Some(host), pods).await)
}

pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetnsError::Task {
            what,
            detail: e.to_string(),
        })
}

/// Per target, one entry per attempt: a socket or the error met opening it.
type NsSockets = Vec<Vec<io::Result<Socket>>>;

fn sockets_for(targets: &[SocketAddr], transport: Transport, attempts: u32) -> NsSockets {
    targets
        .iter()
        .map(|t| {
            (0..attempts)
                .map(|_| dnsprobe::new_socket(transport, *t))
                .collect()
        })
        .collect()
}

/// Opens the sockets inside each namespace, on one dedicated thread.
async fn open_sockets(
    paths: Vec<PathBuf>,
    targets: Vec<Vec<SocketAddr>>,
    transport: Transport,
    attempts: u32,
) -> Vec<Result<NsSockets, NetnsError>> {
    let n = paths.len();
    let work = move || {
        let mut targets = targets.into_iter();
        crate::run_in_each(&paths, |_| {
            sockets_for(&targets.next().unwrap_or_default(), transport, attempts)
        })
    };
    blocking("opening sockets in the namespaces", work)
        .await
        .unwrap_or_else(|e| (0..n).map(|_| Err(task_error(&e))).collect())
}

fn task_error(e: &NetnsError) -> NetnsError {
    NetnsError::Task {
        what: "opening sockets in the namespaces",
        detail: e.to_string(),
    }
}

/// One namespace's probes: where (`None`: the caller's own namespace) and what.
pub(crate) type Entry = (Option<PathBuf>, Vec<ProbeSpec>);

/// Probes each entry's specs over `transport`, all concurrently: sockets opened inside the
/// namespace, or our own for the caller's namespace. An `Err` per spec when the namespace could
/// not be entered.
pub(crate) async fn probe_entries(
    cfg: &SweepConfig,
    entries: &[Entry],
    transport: Transport,
) -> Vec<Vec<Result<ProbeReport, String>>> {
    let (paths, targets): (Vec<PathBuf>, Vec<Vec<SocketAddr>>) = entries
        .iter()
        .filter_map(|(p, s)| p.clone().map(|p| (p, s.iter().map(|s| s.target).collect())))
        .unzip();
    let mut opened = open_sockets(paths, targets, transport, cfg.attempts)
        .await
        .into_iter();
    let limit = InFlightLimit::new(dnsprobe::DEFAULT_MAX_IN_FLIGHT);
    let specs: Vec<ProbeSpec> = entries.iter().flat_map(|(_, s)| s.clone()).collect();
    let deadline = Prober::new()
        .with_limit(Some(limit.clone()))
        .deadline_for(&specs);
    let until = tokio::time::Instant::now() + deadline;
    let futures = entries.iter().map(|(path, specs)| {
        let targets: Vec<SocketAddr> = specs.iter().map(|s| s.target).collect();
        let sockets: Result<NsSockets, String> = match path {
            None => Ok(sockets_for(&targets, transport, cfg.attempts)),
            Some(_) => opened
                .next()
                .unwrap_or_else(|| {
                    Err(NetnsError::Task {
                        what: "opening sockets in the namespaces",
                        detail: "no result for this namespace".into(),
                    })
                })
                .map_err(|e| e.to_string()),
        };
        let limit = limit.clone();
        async move {
            let sockets = match sockets {
                Err(e) => return specs.iter().map(|_| Err(e.clone())).collect(),
                Ok(s) => s,
            };
            join_all(specs.iter().zip(sockets).map(|(spec, s)| {
                let prober = Prober::with_sockets(Preopened::from_results(transport, s))
                    .with_limit(Some(limit.clone()));
                async move { Ok(prober.probe_transport(spec, transport, Some(until)).await) }
            }))
            .await
        }
    });
    join_all(futures).await
}

/// A namespace's resolv.conf as read: its path, and the parsed file or why it could not be read.
type Conf = (PathBuf, Result<ResolvConf, String>);

/// What a sweep knows before it probes: the configuration, the node-local cache the node binds
/// (if any), and this sweep's cache-miss name.
struct Plan<'a> {
    cfg: &'a SweepConfig,
    cache: Option<NodeLocalCache>,
    miss: Name,
}

impl<'a> Plan<'a> {
    fn new(cfg: &'a SweepConfig, node: Option<&NetSnapshot>, confs: &[Option<Conf>]) -> Self {
        let cluster_dns: Vec<IpAddr> = (cfg.targets.iter().map(SocketAddr::ip))
            .chain(cfg.dns_service.iter().copied())
            .collect();
        let named: Vec<IpAddr> = (confs.iter().flatten())
            .filter_map(|(_, c)| c.as_ref().ok())
            .flat_map(|c| c.effective_nameservers().iter().copied())
            .collect();
        Plan {
            cfg,
            cache: node.and_then(|n| detect_nodelocal(n, &cluster_dns, &named)),
            miss: miss_name(&cfg.probe.name),
        }
    }

    fn is_cache(&self, ip: IpAddr) -> bool {
        self.cache.as_ref().is_some_and(|c| c.answers_on(ip))
    }

    /// A cluster-DNS address the sweep may query: a target, a `dns_service` address, or the
    /// node-local cache's. Never an address only a pod's file names.
    fn known(&self, ip: IpAddr) -> bool {
        self.cfg.targets.iter().any(|t| t.ip() == ip)
            || self.cfg.dns_service.contains(&ip)
            || self.is_cache(ip)
    }

    /// The addresses a pod's resolv.conf may name: `dns_service` and the cache's.
    fn expected(&self) -> Vec<IpAddr> {
        let mut v = self.cfg.dns_service.clone();
        if let Some(c) = &self.cache {
            v.extend(
                c.addresses
                    .iter()
                    .filter(|a| !v.contains(a))
                    .copied()
                    .collect::<Vec<_>>(),
            );
        }
        v
    }

    /// CoreDNS behind the cache: the first target the cache does not answer for, a CoreDNS
    /// pod's address rather than the Service's when there is one.
    fn behind(&self) -> Option<SocketAddr> {
        let not_cache = |t: &&SocketAddr| !self.is_cache(t.ip());
        let mut t = self.cfg.targets.iter().filter(not_cache);
        (t.clone().find(|t| !self.cfg.dns_service.contains(&t.ip())))
            .or_else(|| t.next())
            .copied()
    }

    fn spec(&self, target: SocketAddr) -> ProbeSpec {
        self.cfg.spec(target, Transport::Udp)
    }

    fn miss_spec(&self, target: SocketAddr) -> ProbeSpec {
        let expect = Expectation::default()
            .with_rcodes([ResponseCode::NXDomain, ResponseCode::NoError])
            .with_answer(AnswerExpectation::Any);
        self.spec(target)
            .with_name(self.miss.clone())
            .with_expect(expect)
    }

    fn is_miss(&self, r: &ProbeReport) -> bool {
        r.name == self.miss
    }

    /// What a namespace probes over UDP. In the agent's mode (`own_nameservers`) one address:
    /// the first nameserver of the pod's own resolv.conf when it is a known cluster-DNS address,
    /// else the first target. Never an address only the pod's file names: a pod with
    /// `dnsPolicy: Default` names the node's upstream resolver, which is not cluster DNS (its
    /// resolv.conf check says so) and not ours to query. Otherwise every target, and the pod's
    /// own nameserver when it is the node-local cache; the caller's namespace (the node) probes
    /// the cache's addresses too.
    fn targets_of(&self, host: bool, conf: Option<&Conf>) -> Vec<SocketAddr> {
        let cfg = self.cfg;
        let port = dnsprobe::DEFAULT_PORT;
        let own = (conf.and_then(|(_, c)| c.as_ref().ok()))
            .and_then(|c| c.effective_nameservers().first().copied())
            .filter(|ip| self.known(*ip));
        if cfg.own_nameservers {
            return match own {
                Some(ip) => vec![SocketAddr::new(ip, port)],
                None => cfg.targets.first().copied().into_iter().collect(),
            };
        }
        let mut t = cfg.targets.clone();
        let extra: Vec<IpAddr> = match (&self.cache, host) {
            (Some(c), true) => c.addresses.clone(),
            _ => own.filter(|ip| self.is_cache(*ip)).into_iter().collect(),
        };
        for ip in extra {
            if !t.iter().any(|x| x.ip() == ip) {
                t.push(SocketAddr::new(ip, port));
            }
        }
        t
    }

    /// The UDP probes of every namespace, and this sweep's one cache miss: in addition to the
    /// caller's own probes when it is swept (`hc-cli sweep`, from the node), else in place of
    /// the first pod's probe of the cache (the agent, whose budget counts one query a pod).
    fn entries(&self, reports: &[NsReport], confs: &[Option<Conf>]) -> Vec<Entry> {
        let mut entries: Vec<Entry> = (reports.iter().zip(confs))
            .map(|(r, conf)| {
                let specs = (self.targets_of(r.host, conf.as_ref()).into_iter())
                    .map(|t| self.spec(t))
                    .collect();
                (location(r), specs)
            })
            .collect();
        let Some(cache) = &self.cache else {
            return entries;
        };
        if let Some((i, (_, specs))) = (entries.iter_mut().enumerate())
            .find(|(_, (_, specs))| specs.iter().any(|s| cache.answers_on(s.target.ip())))
        {
            let j =
                (specs.iter().position(|s| cache.answers_on(s.target.ip()))).unwrap_or_default();
            let miss = self.miss_spec(specs[j].target);
            if reports[i].host {
                specs.push(miss);
            } else {
                specs[j] = miss;
            }
        }
        entries
    }

    /// UDP follow-ups where a probe of the cache failed: CoreDNS behind it, from the same
    /// namespace, and for a failed miss the probe name (does the cache still answer what it
    /// holds?). Per namespace index.
    fn follow_ups(&self, udp: &[Vec<Result<ProbeReport, String>>]) -> Vec<(usize, Vec<ProbeSpec>)> {
        let behind = self.behind();
        (udp.iter().enumerate())
            .filter_map(|(i, results)| {
                let done: Vec<&ProbeReport> =
                    results.iter().filter_map(|r| r.as_ref().ok()).collect();
                let failed: Vec<&&ProbeReport> = (done.iter())
                    .filter(|r| self.is_cache(r.target.ip()) && !r.healthy())
                    .collect();
                let mut specs = Vec::new();
                let asked = |t: SocketAddr, miss: bool| {
                    done.iter()
                        .any(|r| r.target == t && self.is_miss(r) == miss)
                };
                if let Some(b) = behind.filter(|b| !failed.is_empty() && !asked(*b, false)) {
                    specs.push(self.spec(b));
                }
                for f in failed.iter().filter(|f| self.is_miss(f)) {
                    if !asked(f.target, false) {
                        specs.push(self.spec(f.target));
                    }
                }
                (!specs.is_empty()).then_some((i, specs))
            })
            .collect()
    }

    /// The node-local findings of one namespace from all its UDP probes.
    fn cache_findings(&self, probes: &[ProbeReport]) -> Vec<Finding> {
        let Some(cache) = &self.cache else {
            return Vec::new();
        };
        let behind =
            (self.behind()).and_then(|b| probes.iter().find(|p| p.target == b && !self.is_miss(p)));
        let mut targets: Vec<SocketAddr> = (probes.iter().map(|p| p.target))
            .filter(|t| cache.answers_on(t.ip()))
            .collect();
        targets.sort();
        targets.dedup();
        (targets.into_iter())
            .flat_map(|t| nodelocal_findings(t, probes, &self.miss, behind))
            .collect()
    }
}

fn location(r: &NsReport) -> Option<PathBuf> {
    (!r.host).then(|| r.ns.path.clone())
}

/// Probes, follows up and diagnoses `host` (the caller's namespace, when given) and `pods`, all
/// at once; then walks the client's path of the first `client_walks` pods.
pub async fn check(
    cfg: &SweepConfig,
    host: Option<Namespace>,
    pods: Vec<Namespace>,
) -> Vec<NsReport> {
    let mut reports: Vec<NsReport> = host
        .map(|h| NsReport::new(h, true))
        .into_iter()
        .chain(pods.into_iter().map(|n| NsReport::new(n, false)))
        .collect();
    let confs = resolv_confs(cfg, &reports).await;
    // The node (the caller's namespace): what it binds says whether a node-local cache answers
    // here; its links are the veth peers of the pods.
    let node = snapshot(None, vec![]).await.ok();
    let plan = Plan::new(cfg, node.as_ref(), &confs);
    let (node_ct, ct_before) =
        netfilter::conntrack_readings(reports.iter().map(location).collect()).await;
    // 1. UDP from everywhere at once: the configured targets, or what each pod uses.
    let entries = plan.entries(&reports, &confs);
    let udp = probe_entries(cfg, &entries, Transport::Udp).await;
    // 2. TCP where UDP failed on the path (not for the cache miss: its path is the cache's);
    //    UDP to CoreDNS behind a failing cache.
    let follow: Vec<(usize, Vec<ProbeSpec>)> = (udp.iter().zip(&entries).enumerate())
        .filter_map(|(i, (results, (_, specs)))| {
            let failed: Vec<ProbeSpec> = (results.iter().zip(specs))
                .filter(|(r, _)| {
                    r.as_ref()
                        .is_ok_and(|r| !r.path_works() && !plan.is_miss(r))
                })
                .map(|(_, s)| s.clone().with_transport(TransportMode::Tcp))
                .collect();
            (!failed.is_empty()).then_some((i, failed))
        })
        .collect();
    let more = plan.follow_ups(&udp);
    let at = |v: &[(usize, Vec<ProbeSpec>)]| -> Vec<Entry> {
        v.iter()
            .map(|(i, s)| (location(&reports[*i]), s.clone()))
            .collect()
    };
    let (tcp, again) = futures_util::future::join(
        probe_entries(cfg, &at(&follow), Transport::Tcp),
        probe_entries(cfg, &at(&more), Transport::Udp),
    )
    .await;
    let by_ns = |idx: &[(usize, Vec<ProbeSpec>)],
                 results: Vec<Vec<Result<ProbeReport, String>>>| {
        (idx.iter().zip(results))
            .map(|((i, _), r)| (*i, r.into_iter().filter_map(Result::ok).collect()))
            .collect::<BTreeMap<usize, Vec<ProbeReport>>>()
    };
    let mut tcp_by_ns = by_ns(&follow, tcp);
    let mut again_by_ns = by_ns(&more, again);
    let (node_ct_after, ct_after) =
        netfilter::conntrack_readings(reports.iter().map(location).collect()).await;
    let growth = |b: &Option<_>, a: &Option<crate::ConntrackStats>| match (b, a) {
        (Some(b), Some(a)) => Some(a.growth_since(b)),
        _ => None,
    };
    let node_growth = growth(&node_ct, &node_ct_after);
    let mut failing_paths: Vec<Failing> = Vec::new();
    // 3. Findings.
    let expected = plan.expected();
    for (i, ((report, results), conf)) in reports.iter_mut().zip(udp).zip(&confs).enumerate() {
        let tcp = tcp_by_ns.remove(&i).unwrap_or_default();
        let again = again_by_ns.remove(&i).unwrap_or_default();
        if let Some(Err(e)) = results.first() {
            (report.findings).push(Finding::new(FindingCode::NetnsUnavailable, e.clone()));
            continue;
        }
        let mut udp: Vec<ProbeReport> = results.into_iter().filter_map(Result::ok).collect();
        for u in udp.iter().filter(|u| !plan.is_miss(u)) {
            let t = tcp.iter().find(|t| t.target == u.target);
            report.findings.extend(transport_findings(u, t));
            report.findings.extend(parallel_finding(u));
        }
        let own_growth = growth(&ct_before[i], &ct_after[i]);
        let dns_failed = udp
            .iter()
            .any(|u| !u.path_works() || u.parallel.is_some_and(dnsprobe::Parallel::one_lost));
        let node_view = node_growth.as_ref().filter(|_| !report.host);
        (report.findings).extend(conntrack_findings(
            own_growth.as_ref(),
            node_view,
            dns_failed,
        ));
        report.conntrack = own_growth;
        let pairs: Vec<(Transport, SocketAddr)> = (udp.iter().chain(&tcp))
            .filter(|p| !p.path_works())
            .filter(|p| p.failure_kind().is_none_or(|k| k.counts_against_target()))
            .map(|p| (p.transport, p.target))
            .collect();
        if !pairs.is_empty() {
            failing_paths.push((i, location(report), pairs));
        }
        udp.extend(again);
        report.findings.extend(plan.cache_findings(&udp));
        if let Some((path, parsed)) = conf.as_ref().filter(|_| !cfg.dns_service.is_empty()) {
            let parsed = parsed.as_ref().map_err(String::as_str);
            let path = path.display().to_string();
            (report.findings).extend(check_resolv_conf(parsed, &path, &expected));
        }
        let mut failing: Vec<SocketAddr> =
            (udp.iter().filter(|u| !u.path_works() && !plan.is_miss(u)))
                .map(|u| u.target)
                .collect();
        failing.sort();
        failing.dedup();
        if !failing.is_empty() {
            let node_snap = node.as_ref().filter(|_| !report.host);
            report
                .findings
                .extend(diagnose(location(report), node_snap, &failing).await);
        }
        report.probes = udp;
        report.probes.extend(tcp);
    }
    // 4. The rule that drops a failing path, and stale conntrack entries on the node.
    for (i, found) in netfilter::dropping_rules(cfg, failing_paths).await {
        reports[i].findings.extend(found);
    }
    if let Some(host) = reports.iter_mut().find(|r| r.host) {
        let stale = netfilter::stale_destinations(cfg).await;
        host.findings
            .extend(stale.iter().map(crate::conntrack::stale_finding));
    }
    // 5. The client's path, as libc walks it.
    walk_clients(&plan, &mut reports, &confs).await;
    reports
}

/// UDP conntrack entries of the caller's namespace (the node's) to a DNS Service address that
/// still lead to an address that is not one of `cfg.endpoints` (a replaced CoreDNS pod): what
/// [`check`] reports on the caller's own namespace (`conntrack-stale-endpoint`,
/// [`crate::stale_finding`]), for a caller that sweeps without it (the agent). Nothing without
/// endpoints, or without CAP_NET_ADMIN to read the table.
pub async fn stale_endpoints(cfg: &SweepConfig) -> Vec<crate::StaleDestination> {
    netfilter::stale_destinations(cfg).await
}

/// Walks the client's path of the first `client_walks` pod namespaces whose resolv.conf was
/// read, all at once, and adds what each lookup says to its report.
async fn walk_clients(plan: &Plan<'_>, reports: &mut [NsReport], confs: &[Option<Conf>]) {
    let cfg = plan.cfg;
    let chosen: Vec<(usize, PathBuf, ResolvConf)> = (reports.iter().zip(confs).enumerate())
        .filter(|(_, (r, _))| !r.host)
        .filter_map(|(i, (r, c))| {
            let conf = c.as_ref()?.1.as_ref().ok()?.clone();
            Some((i, r.ns.path.clone(), conf))
        })
        .take(cfg.client_walks)
        .collect();
    let timeout = cfg.probe.timeout;
    let known = |ip: IpAddr| plan.known(ip);
    let lookups = join_all(chosen.iter().map(|(_, ns, conf)| {
        let sender = crate::walk_net::Sender::new(ns.clone(), timeout);
        crate::walk::walk(conf, CLIENT_LOOKUP_NAME, &known, move |ask| {
            let s = sender.clone();
            async move { s.ask(ask).await }
        })
    }))
    .await;
    for ((i, _, _), lookup) in chosen.iter().zip(lookups) {
        let path = (confs[*i].as_ref()).map_or_else(String::new, |(p, _)| p.display().to_string());
        let report = &mut reports[*i];
        for f in lookup.findings(&path) {
            if !report.findings.iter().any(|g| g.code == f.code) {
                report.findings.push(f);
            }
        }
        report.client = Some(lookup);
    }
}

/// The pod namespaces' resolv.conf files, read off the runtime's threads, when the sweep needs
/// them (the resolv.conf checks, the agent's mode, the client's path); `None` for the caller's
/// own namespace.
async fn resolv_confs(cfg: &SweepConfig, reports: &[NsReport]) -> Vec<Option<Conf>> {
    if cfg.dns_service.is_empty() && !cfg.own_nameservers && cfg.client_walks == 0 {
        return vec![None; reports.len()];
    }
    let at: Vec<Option<ResolvAt>> = (reports.iter())
        .map(|r| (!r.host).then(|| ResolvAt::of(&r.ns, &cfg.proc_root)))
        .collect();
    let n = at.len();
    let read = move || {
        (at.into_iter())
            .map(|a| {
                a.map(|a| {
                    let (p, text) = a.read();
                    (p, text.map(|t| ResolvConf::parse(&t)))
                })
            })
            .collect::<Vec<_>>()
    };
    match tokio::time::timeout(
        RESOLV_READ_TIMEOUT,
        blocking("reading resolv.conf files", read),
    )
    .await
    {
        Ok(Ok(confs)) => confs,
        _ => vec![None; n],
    }
}

/// Why `failing` targets cannot be reached from the namespace at `at` (the caller's own when
/// `None`), with the node's snapshot for the veth checks.
async fn diagnose(
    at: Option<PathBuf>,
    node: Option<&NetSnapshot>,
    failing: &[SocketAddr],
) -> Vec<Finding> {
    let ips = failing.iter().map(SocketAddr::ip).collect();
    match snapshot(at, ips).await {
        Ok(snap) => diagnose_path(&snap, node, failing),
        Err(e) => vec![Finding::new(FindingCode::NetnsUnavailable, e.to_string())],
    }
}

/// Where a namespace's processes find their resolv.conf: a named namespace's
/// `/etc/netns/NAME/resolv.conf` when it exists (what `ip netns exec` mounts), else
/// `etc/resolv.conf` inside its process's root (`/proc/PID/root`), resolved as the container
/// resolves it.
enum ResolvAt {
    /// A file of the agent's own filesystem.
    Own(PathBuf),
    /// A path inside a container's root.
    InRoot(PathBuf),
}

impl ResolvAt {
    fn of(ns: &Namespace, proc_root: &Path) -> ResolvAt {
        if let Some(name) = &ns.name {
            let p = PathBuf::from("/etc/netns").join(name).join("resolv.conf");
            if p.exists() || ns.pid.is_none() {
                return ResolvAt::Own(p);
            }
        }
        match ns.pid {
            Some(pid) => ResolvAt::InRoot(proc_root.join(pid.to_string()).join("root")),
            None => ResolvAt::Own(PathBuf::from("/etc/resolv.conf")),
        }
    }

    /// The path to show, and the file read within [`crate::MAX_FILE`] bytes (a FIFO, a device or
    /// a huge file is refused at once).
    fn read(self) -> (PathBuf, Result<String, String>) {
        let etc = Path::new("etc/resolv.conf");
        let (shown, text) = match self {
            ResolvAt::Own(p) => {
                let t = crate::files::read_small(&p);
                (p, t)
            }
            ResolvAt::InRoot(root) => {
                let t = crate::files::read_in_root(&root, etc);
                (root.join(etc), t)
            }
        };
        (shown, text.map_err(|e| e.to_string()))
    }
}

/// How long reading every swept namespace's resolv.conf may take (a file on a filesystem that
/// hangs); past it, the round goes on without them.
const RESOLV_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn snapshot(path: Option<PathBuf>, targets: Vec<IpAddr>) -> Result<NetSnapshot, NetnsError> {
    blocking("a network snapshot", move || {
        crate::snapshot(path.as_deref(), &targets)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::{Address, Link};

    fn conf(text: &str) -> Conf {
        (PathBuf::from("resolv.conf"), Ok(ResolvConf::parse(text)))
    }

    fn targets_of(cfg: &SweepConfig, conf: Option<&Conf>) -> Vec<SocketAddr> {
        Plan::new(cfg, None, &[]).targets_of(false, conf)
    }

    #[test]
    fn a_pod_probes_its_own_nameserver_only_when_it_is_cluster_dns() {
        let vip: SocketAddr = "10.96.0.10:53".parse().unwrap();
        let pod: SocketAddr = "10.244.0.5:53".parse().unwrap();
        let mut cfg = SweepConfig::new(vec![vip, pod]);
        // The sweep command: every target.
        assert_eq!(
            targets_of(&cfg, Some(&conf("nameserver 10.244.0.5\n"))),
            [vip, pod]
        );
        cfg.own_nameservers = true;
        // The agent: one query, to what the pod uses when it is a cluster-DNS address ...
        let own = conf("nameserver 10.244.0.5\nnameserver 10.96.0.10\n");
        assert_eq!(targets_of(&cfg, Some(&own)), [pod]);
        // ... never to an address only the pod's file names (the node's upstream resolver of
        // a `dnsPolicy: Default` pod): the first target instead.
        let upstream = conf("nameserver 192.0.2.53\n");
        assert_eq!(targets_of(&cfg, Some(&upstream)), [vip]);
        // An address named by --dns-service counts as cluster DNS.
        cfg.dns_service = vec!["192.0.2.53".parse().unwrap()];
        assert_eq!(
            targets_of(&cfg, Some(&upstream)),
            ["192.0.2.53:53".parse::<SocketAddr>().unwrap()]
        );
        // No file, or an unreadable one: the first target.
        assert_eq!(targets_of(&cfg, None), [vip]);
        let unreadable: Conf = (PathBuf::from("x"), Err("denied".into()));
        assert_eq!(targets_of(&cfg, Some(&unreadable)), [vip]);
    }

    /// A node binding 169.254.20.10 on `nodelocaldns`.
    fn node_with_cache() -> NetSnapshot {
        NetSnapshot {
            links: vec![Link {
                index: 4,
                name: crate::NODELOCAL_INTERFACE.into(),
                ..Link::default()
            }],
            addresses: vec![Address {
                index: 4,
                ip: "169.254.20.10".parse().unwrap(),
                prefix_len: 32,
            }],
            ..NetSnapshot::default()
        }
    }

    #[test]
    fn a_node_local_cache_the_node_binds_is_cluster_dns() {
        let vip: SocketAddr = "10.96.0.10:53".parse().unwrap();
        let coredns: SocketAddr = "10.244.0.2:53".parse().unwrap();
        let cache: SocketAddr = "169.254.20.10:53".parse().unwrap();
        let mut cfg = SweepConfig::new(vec![vip, coredns]);
        cfg.dns_service = vec![vip.ip()];
        cfg.own_nameservers = true;
        let named = [Some(conf("nameserver 169.254.20.10\n"))];
        let plan = Plan::new(&cfg, Some(&node_with_cache()), &named);
        assert_eq!(plan.targets_of(false, named[0].as_ref()), [cache]);
        assert_eq!(plan.expected(), [vip.ip(), cache.ip()]);
        assert_eq!(
            plan.behind(),
            Some(coredns),
            "a CoreDNS pod, not the Service"
        );
        // Without the node binding it, the same file names an address only the pod knows.
        let plan = Plan::new(&cfg, Some(&NetSnapshot::default()), &named);
        assert_eq!(plan.targets_of(false, named[0].as_ref()), [vip]);
        assert_eq!(plan.expected(), [vip.ip()]);
        // The sweep command: every target, plus the pod's cache; the node probes the cache too.
        cfg.own_nameservers = false;
        let plan = Plan::new(&cfg, Some(&node_with_cache()), &named);
        assert_eq!(
            plan.targets_of(false, named[0].as_ref()),
            [vip, coredns, cache]
        );
        assert_eq!(plan.targets_of(true, None), [vip, coredns, cache]);
    }

    #[test]
    fn one_cache_miss_per_sweep() {
        let vip: SocketAddr = "10.96.0.10:53".parse().unwrap();
        let cache: SocketAddr = "169.254.20.10:53".parse().unwrap();
        let mut cfg = SweepConfig::new(vec![vip]);
        cfg.own_nameservers = true;
        let named = [
            Some(conf("nameserver 10.96.0.10\n")),
            Some(conf("nameserver 169.254.20.10\n")),
            Some(conf("nameserver 169.254.20.10\n")),
        ];
        let plan = Plan::new(&cfg, Some(&node_with_cache()), &named);
        let reports: Vec<NsReport> = (1..=3)
            .map(|i| {
                NsReport::new(
                    Namespace::at((1, i), PathBuf::from(format!("/x/{i}"))),
                    false,
                )
            })
            .collect();
        let e = plan.entries(&reports, &named);
        let names: Vec<Vec<(SocketAddr, bool)>> = (e.iter())
            .map(|(_, s)| s.iter().map(|s| (s.target, s.name == plan.miss)).collect())
            .collect();
        // The agent: the first pod using the cache asks the miss in place of its probe.
        assert_eq!(
            names,
            [
                vec![(vip, false)],
                vec![(cache, true)],
                vec![(cache, false)]
            ]
        );
        // The sweep command: the node asks it, in addition to its probes.
        cfg.own_nameservers = false;
        let plan = Plan::new(&cfg, Some(&node_with_cache()), &named);
        let mut all = vec![NsReport::new(
            Namespace::at((1, 9), PathBuf::from("/x/9")),
            true,
        )];
        all.extend(reports);
        let confs: Vec<Option<Conf>> = std::iter::once(None).chain(named).collect();
        let e = plan.entries(&all, &confs);
        let misses: Vec<usize> = (e.iter())
            .map(|(_, s)| s.iter().filter(|s| s.name == plan.miss).count())
            .collect();
        assert_eq!(misses, [1, 0, 0, 0]);
        assert_eq!(e[0].1.len(), 3, "the VIP, the cache, the miss");
    }

    #[test]
    fn warnings_leave_a_namespace_healthy() {
        let mut r = NsReport::new(Namespace::at((1, 1), PathBuf::from("/x")), false);
        r.findings
            .push(Finding::new(FindingCode::SearchAmplification, "many"));
        assert!(r.healthy());
        assert!(
            r.to_string()
                .ends_with(": 0 probes answered; warning: search-amplification: many"),
            "{r}"
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["healthy"], true);
        assert_eq!(v["findings"][0]["severity"], "warning");
        r.findings
            .push(Finding::new(FindingCode::ResolvConfNameserver, "wrong"));
        assert!(!r.healthy());
        assert!(
            r.to_string()
                .ends_with(": resolv-conf-nameserver: wrong; warning: search-amplification: many"),
            "{r}"
        );
    }
}
