//! The sweep: probe the DNS targets from this namespace and from every selected pod namespace at
//! once, follow up failed UDP with TCP, and diagnose what fails. Composition only: namespaces
//! and diagnosis rules come from `netns`, probes from `dnsprobe`.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use dnsprobe::hickory_proto::rr::Name;
use dnsprobe::socket2::Socket;
use dnsprobe::{
    AnswerExpectation, ProbeReport, ProbeSpec, Prober, SocketSource, Transport, TransportMode,
};
use futures_util::future::join_all;
use hc_netns::{Finding, FindingCode, Namespace, NetSnapshot, ProbeOutcome, ResolvConf};

/// What to sweep and how.
#[derive(Debug, Clone)]
pub(crate) struct SweepConfig {
    pub(crate) targets: Vec<SocketAddr>,
    pub(crate) name: Name,
    pub(crate) expect: Vec<IpAddr>,
    pub(crate) dns_service: Vec<IpAddr>,
    pub(crate) netns: Vec<String>,
    pub(crate) netns_glob: Option<glob::Pattern>,
    pub(crate) proc_root: PathBuf,
    pub(crate) timeout: Duration,
    /// Attempts per probe (one pre-opened socket each).
    pub(crate) attempts: u32,
}

/// One swept namespace.
#[derive(Debug, Clone)]
pub(crate) struct NsReport {
    pub(crate) ns: Namespace,
    /// The namespace hc-cli runs in (the node's, for a hostNetwork agent).
    pub(crate) host: bool,
    pub(crate) probes: Vec<ProbeReport>,
    pub(crate) findings: Vec<Finding>,
}

impl NsReport {
    pub(crate) fn healthy(&self) -> bool {
        self.findings.is_empty() && self.probes.iter().all(ProbeReport::healthy)
    }
}

/// Hands out the sockets opened for one probe (or the errors from opening them), one per attempt.
struct Opened(Mutex<Vec<io::Result<Socket>>>);

impl SocketSource for Opened {
    fn open(&self, t: Transport, _: SocketAddr) -> io::Result<Socket> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(|| {
                Err(io::Error::other(format!(
                    "no {t} socket left for this namespace"
                )))
            })
    }
}

fn spec(cfg: &SweepConfig, target: SocketAddr, transport: TransportMode) -> ProbeSpec {
    let mut s = ProbeSpec::new(target);
    s.name = cfg.name.clone();
    s.transport = transport;
    // Sockets are opened ahead inside each namespace; a truncated reply is reported as such.
    s.tcp_fallback = false;
    s.timeout = cfg.timeout;
    s.attempts = std::num::NonZeroU32::new(cfg.attempts).unwrap_or(std::num::NonZeroU32::MIN);
    if !cfg.expect.is_empty() {
        s.expect.answer = AnswerExpectation::Contains(cfg.expect.clone());
    }
    s
}

/// Chooses the namespaces to sweep: `--netns` and `--netns-glob` when given, else every
/// namespace found except our own.
pub(crate) fn select(
    cfg: &SweepConfig,
    scan: &[Namespace],
    me: (u64, u64),
) -> anyhow::Result<Vec<Namespace>> {
    let mut chosen: BTreeMap<(u64, u64), Namespace> = BTreeMap::new();
    for want in &cfg.netns {
        let ns = if want.contains('/') {
            let id = hc_netns::identity(Path::new(want))?;
            scan.iter()
                .find(|n| (n.dev, n.inode) == id)
                .cloned()
                .unwrap_or(Namespace {
                    dev: id.0,
                    inode: id.1,
                    pid: None,
                    process: None,
                    name: None,
                    path: PathBuf::from(want),
                    pod_uid: None,
                    container_id: None,
                })
        } else {
            match scan
                .iter()
                .find(|n| n.name.as_deref() == Some(want.as_str()))
            {
                Some(n) => n.clone(),
                None => bail!(
                    "no network namespace named {want:?} under /run/netns or /var/run/netns (see `hc-cli netns list`)"
                ),
            }
        };
        chosen.insert((ns.dev, ns.inode), ns);
    }
    if let Some(g) = &cfg.netns_glob {
        for n in scan
            .iter()
            .filter(|n| n.name.as_deref().is_some_and(|name| g.matches(name)))
        {
            chosen.insert((n.dev, n.inode), n.clone());
        }
    }
    if cfg.netns.is_empty() && cfg.netns_glob.is_none() {
        for n in scan {
            chosen.insert((n.dev, n.inode), n.clone());
        }
    }
    chosen.remove(&me);
    // Keep the scan's order (PIDs, then names).
    let mut out: Vec<Namespace> = chosen.into_values().collect();
    out.sort_by_key(|n| (n.pid.is_none(), n.pid, n.name.clone()));
    Ok(out)
}

/// The resolv.conf a namespace's processes read: a named namespace's `/etc/netns/NAME/` file
/// when it exists (what `ip netns exec` mounts), else the file in its process's own mount
/// namespace.
fn resolv_conf_path(ns: &Namespace, proc_root: &Path) -> PathBuf {
    if let Some(name) = &ns.name {
        let p = PathBuf::from("/etc/netns").join(name).join("resolv.conf");
        if p.exists() || ns.pid.is_none() {
            return p;
        }
    }
    match ns.pid {
        Some(pid) => proc_root.join(pid.to_string()).join("root/etc/resolv.conf"),
        None => PathBuf::from("/etc/resolv.conf"),
    }
}

fn outcome(r: &ProbeReport) -> ProbeOutcome {
    match &r.failure {
        None => ProbeOutcome::Ok,
        Some(f) => ProbeOutcome::Failed {
            kind: f.kind().as_str(),
            message: f.to_string(),
            path: f.kind().is_transport(),
        },
    }
}

/// Sockets for one namespace: per target, one per attempt.
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
) -> Vec<Result<NsSockets, hc_netns::NetnsError>> {
    let n = paths.len();
    let work = move || {
        let mut targets = targets.into_iter();
        hc_netns::run_in_each(&paths, |_| {
            sockets_for(&targets.next().unwrap_or_default(), transport, attempts)
        })
    };
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        // The worker panicked: every namespace gets the error.
        (0..n)
            .map(|_| {
                Err(hc_netns::NetnsError::Thread {
                    path: PathBuf::from(e.to_string()),
                })
            })
            .collect()
    })
}

/// Probes each (namespace, target) pair over `transport`: namespaces' pairs through sockets
/// opened inside them, the host's (`None`) with sockets of our own. All concurrently.
async fn probe_pairs(
    cfg: &SweepConfig,
    entries: &[(Option<PathBuf>, Vec<SocketAddr>)],
    transport: Transport,
) -> Vec<Vec<Result<ProbeReport, String>>> {
    let (paths, targets): (Vec<PathBuf>, Vec<Vec<SocketAddr>>) = entries
        .iter()
        .filter_map(|(p, t)| p.clone().map(|p| (p, t.clone())))
        .unzip();
    let mut opened = open_sockets(paths, targets, transport, cfg.attempts)
        .await
        .into_iter();
    let mode = match transport {
        Transport::Udp => TransportMode::Udp,
        Transport::Tcp => TransportMode::Tcp,
    };
    let per_probe = cfg.timeout * cfg.attempts;
    // One limit for all namespaces: they all aim at the same few servers.
    let limit = dnsprobe::InFlightLimit::new(dnsprobe::DEFAULT_MAX_IN_FLIGHT);
    let batches = entries
        .iter()
        .map(|(_, t)| t.len())
        .sum::<usize>()
        .div_ceil(dnsprobe::DEFAULT_MAX_IN_FLIGHT)
        .max(1);
    let deadline =
        tokio::time::Instant::now() + per_probe * batches as u32 + Duration::from_millis(500);
    let mut futures = Vec::new();
    for (path, targets) in entries {
        let sockets: Result<NsSockets, String> = match path {
            None => Ok(sockets_for(targets, transport, cfg.attempts)),
            Some(_) => opened
                .next()
                .unwrap_or_else(|| Err(hc_netns::NetnsError::Thread { path: "?".into() }))
                .map_err(|e| e.to_string()),
        };
        let limit = limit.clone();
        futures.push(async move {
            match sockets {
                Err(e) => targets.iter().map(|_| Err(e.clone())).collect(),
                Ok(sockets) => {
                    join_all(targets.iter().zip(sockets).map(|(t, s)| {
                        let prober = Prober::with_sockets(Opened(Mutex::new(s)))
                            .with_limit(Some(limit.clone()));
                        let spec = spec(cfg, *t, mode);
                        async move {
                            Ok(prober
                                .probe_transport(&spec, transport, Some(deadline))
                                .await)
                        }
                    }))
                    .await
                }
            }
        });
    }
    join_all(futures).await
}

/// The namespace hc-cli runs in, and the pod namespaces selected by the configuration.
/// `Err` for bad configuration (proc root, unknown namespace name).
pub(crate) fn discover(cfg: &SweepConfig) -> anyhow::Result<(Namespace, Vec<Namespace>)> {
    let scan = hc_netns::scan(&crate::netns_cmd::scan_options(&cfg.proc_root))?;
    let self_path = Path::new("/proc/self/ns/net");
    let me = hc_netns::identity(self_path)
        .context("cannot identify this process's own network namespace")?;
    let pods = select(cfg, &scan.namespaces, me)?;
    let host = scan
        .namespaces
        .iter()
        .find(|n| (n.dev, n.inode) == me)
        .cloned()
        .unwrap_or(Namespace {
            dev: me.0,
            inode: me.1,
            pid: Some(std::process::id()),
            process: Some("hc-cli".into()),
            name: None,
            path: self_path.to_owned(),
            pod_uid: None,
            container_id: None,
        });
    Ok((host, pods))
}

/// Runs the sweep of `hc-cli sweep`: our own namespace first, then every selected one.
pub(crate) async fn sweep(cfg: &SweepConfig) -> anyhow::Result<Vec<NsReport>> {
    let (host, pods) = discover(cfg)?;
    Ok(check(cfg, Some(host), pods).await)
}

/// Probes, follows up and diagnoses `host` (when given) and `pods`, all at once.
pub(crate) async fn check(
    cfg: &SweepConfig,
    host: Option<Namespace>,
    pods: Vec<Namespace>,
) -> Vec<NsReport> {
    let mut reports: Vec<NsReport> = host
        .map(|h| (h, true))
        .into_iter()
        .chain(pods.into_iter().map(|n| (n, false)))
        .map(|(ns, host)| NsReport {
            ns,
            host,
            probes: Vec::new(),
            findings: Vec::new(),
        })
        .collect();
    let location = |r: &NsReport| (!r.host).then(|| r.ns.path.clone());

    // 1. UDP from everywhere at once.
    let entries: Vec<_> = reports
        .iter()
        .map(|r| (location(r), cfg.targets.clone()))
        .collect();
    let udp = probe_pairs(cfg, &entries, Transport::Udp).await;
    // 2. TCP where UDP failed on the path.
    let mut follow: Vec<(usize, Vec<SocketAddr>)> = Vec::new();
    for (i, results) in udp.iter().enumerate() {
        let failed: Vec<SocketAddr> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|r| r.failure_kind().is_some_and(|k| k.is_transport()))
            .map(|r| r.target)
            .collect();
        if !failed.is_empty() {
            follow.push((i, failed));
        }
    }
    let tcp_entries: Vec<_> = follow
        .iter()
        .map(|(i, t)| (location(&reports[*i]), t.clone()))
        .collect();
    let tcp = probe_pairs(cfg, &tcp_entries, Transport::Tcp).await;
    let mut tcp_by_ns: BTreeMap<usize, Vec<ProbeReport>> = BTreeMap::new();
    for ((i, _), results) in follow.iter().zip(tcp) {
        tcp_by_ns.insert(*i, results.into_iter().filter_map(Result::ok).collect());
    }

    // 3. Findings.
    let mut node: Option<Option<NetSnapshot>> = None;
    for (i, (report, results)) in reports.iter_mut().zip(udp).enumerate() {
        let tcp = tcp_by_ns.remove(&i).unwrap_or_default();
        if let Some(Err(e)) = results.first() {
            report
                .findings
                .push(Finding::new(FindingCode::NetnsUnavailable, e.clone()));
            continue;
        }
        let udp: Vec<ProbeReport> = results.into_iter().filter_map(Result::ok).collect();
        for u in &udp {
            let t = tcp.iter().find(|t| t.target == u.target).map(outcome);
            report.findings.extend(hc_netns::transport_findings(
                u.target,
                &outcome(u),
                t.as_ref(),
            ));
        }
        if !report.host && !cfg.dns_service.is_empty() {
            let path = resolv_conf_path(&report.ns, &cfg.proc_root);
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string());
            let parsed = text
                .as_ref()
                .map(|t| ResolvConf::parse(t))
                .map_err(String::as_str);
            report.findings.extend(hc_netns::check_resolv_conf(
                parsed.as_ref().map_err(|e| *e),
                &path.display().to_string(),
                &cfg.dns_service,
            ));
        }
        let failing: Vec<SocketAddr> = udp
            .iter()
            .filter(|u| u.failure_kind().is_some_and(|k| k.is_transport()))
            .map(|u| u.target)
            .collect();
        if !failing.is_empty() {
            if node.is_none() {
                node = Some(snapshot(None, vec![]).await.ok());
            }
            let at = location(report);
            match snapshot(at, failing.iter().map(SocketAddr::ip).collect()).await {
                Ok(snap) => {
                    let node_snap = if report.host {
                        None
                    } else {
                        node.as_ref().and_then(Option::as_ref)
                    };
                    report
                        .findings
                        .extend(hc_netns::diagnose_path(&snap, node_snap, &failing));
                }
                Err(e) => report
                    .findings
                    .push(Finding::new(FindingCode::NetnsUnavailable, e.to_string())),
            }
        }
        report.probes = udp;
        report.probes.extend(tcp);
    }
    reports
}

async fn snapshot(
    path: Option<PathBuf>,
    targets: Vec<IpAddr>,
) -> Result<NetSnapshot, hc_netns::NetnsError> {
    tokio::task::spawn_blocking(move || hc_netns::snapshot(path.as_deref(), &targets))
        .await
        .unwrap_or_else(|_| {
            Err(hc_netns::NetnsError::Thread {
                path: PathBuf::from("snapshot"),
            })
        })
}
