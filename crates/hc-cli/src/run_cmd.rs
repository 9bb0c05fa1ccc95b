//! `hc-cli run`: the long-running agent (and `--once`). Composition: probes from `dnsprobe`,
//! thresholds from `dnsprobe::Health`, the sweep from `crate::sweep`, metrics and endpoints from
//! `exporter`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use dnsprobe::{
    AnswerExpectation, Health, HealthState, ProbeReport, ProbeSpec, Prober, Thresholds, Transport,
    TransportMode,
};
use hc_exporter::{
    Admin, ErrorStatus, FindingStatus, KubernetesStatus, Metrics, NamespaceStatus, Registry,
    Source, Status, TargetState, TargetStatus,
};
use hc_remedy::Discovered;
use serde::Serialize;
use tracing::{info, warn};

use crate::cli::{LogFormat, RunArgs};
use crate::cluster::Cluster;
use crate::exit;
use crate::output::{JsonReport, human_line, json_report, use_colour};
use crate::sweep::{NsReport, SweepConfig, check, discover};
use crate::sweep_cmd::{JsonNsReport, ns_human, ns_json};

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .with_max_level(tracing::Level::INFO);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// What the agent remembers of a pod namespace between rounds.
#[derive(Debug, Clone)]
struct Known {
    report: NsReport,
    round: u64,
}

pub(crate) struct Agent {
    /// The template every probe is made from (name, timeout, attempts, expectation).
    base: ProbeSpec,
    name_given: bool,
    static_targets: Vec<SocketAddr>,
    specs: Vec<ProbeSpec>,
    cluster: Option<Cluster>,
    kube_status: Option<KubernetesStatus>,
    sweep: Option<SweepConfig>,
    per_round: usize,
    thresholds: Thresholds,
    /// Per (target, transport), in probe order: state and the last report.
    health: Vec<((SocketAddr, Transport), Health, Option<ProbeReport>)>,
    known: BTreeMap<(u64, u64), Known>,
    cursor: usize,
    round: u64,
    metrics: Option<Metrics>,
}

/// The outcome of one round, for `--once`.
pub(crate) struct RoundReport {
    pub(crate) host: Vec<ProbeReport>,
    pub(crate) namespaces: Vec<NsReport>,
}

impl Agent {
    pub(crate) fn new(args: &RunArgs, metrics: Option<Metrics>, cluster: Option<Cluster>) -> Self {
        let static_targets: Vec<SocketAddr> = args
            .targets
            .iter()
            .map(|t| t.with_default_port(dnsprobe::DEFAULT_PORT))
            .collect();
        let mut base = ProbeSpec::new(SocketAddr::from(([0, 0, 0, 0], 53)));
        base.transport = TransportMode::Both;
        base.timeout = args.timeout;
        base.attempts = NonZeroU32::new(args.attempts).unwrap_or(NonZeroU32::MIN);
        if let Some(n) = &args.name {
            base.name = n.clone();
        }
        if !args.expect.is_empty() {
            base.expect.answer = AnswerExpectation::Contains(args.expect.clone());
        }
        let sweep = args.sweep_netns.then(|| SweepConfig {
            targets: static_targets.clone(),
            name: base.name.clone(),
            expect: args.expect.clone(),
            dns_service: args.dns_service.clone(),
            netns: Vec::new(),
            netns_glob: args.netns_glob.clone(),
            proc_root: args.proc.proc_root.clone(),
            timeout: args.timeout,
            attempts: args.attempts,
        });
        let mut agent = Agent {
            base,
            name_given: args.name.is_some(),
            static_targets,
            specs: Vec::new(),
            cluster,
            kube_status: None,
            sweep,
            per_round: args.netns_per_round as usize,
            thresholds: Thresholds {
                failure: NonZeroU32::new(args.failure_threshold).unwrap_or(NonZeroU32::MIN),
                success: NonZeroU32::new(args.success_threshold).unwrap_or(NonZeroU32::MIN),
            },
            health: Vec::new(),
            known: BTreeMap::new(),
            cursor: 0,
            round: 0,
            metrics,
        };
        agent.refresh(None);
        agent
    }

    /// Rebuilds the probe list from the static targets and what Kubernetes discovery knows;
    /// keeps the state of targets that stay, forgets the ones that went.
    fn refresh(&mut self, discovered: Option<&Discovered>) {
        let mut targets: Vec<(SocketAddr, TransportMode)> = self
            .static_targets
            .iter()
            .map(|t| (*t, TransportMode::Both))
            .collect();
        let mut spec = self.base.clone();
        if let (Some(c), Some(d)) = (&self.cluster, discovered) {
            for t in c.targets(d) {
                if !targets.iter().any(|(a, m)| *a == t.0 && *m == t.1) {
                    targets.push(t);
                }
            }
            if !self.name_given
                && let Ok(n) = c.query_name()
            {
                spec.name = n;
            }
            if spec.expect.answer == AnswerExpectation::NonEmpty
                && let Some(api) = d.api_ip
            {
                spec.expect.answer = AnswerExpectation::Contains(vec![api]);
            }
        }
        self.specs = targets
            .into_iter()
            .map(|(t, mode)| {
                let mut s = spec.clone();
                s.target = t;
                s.transport = mode;
                s
            })
            .collect();
        let keys: Vec<(SocketAddr, Transport)> = self
            .specs
            .iter()
            .flat_map(|s| s.transport.transports().iter().map(move |t| (s.target, *t)))
            .collect();
        let metrics = &self.metrics;
        self.health.retain(|(k, _, _)| {
            let keep = keys.contains(k);
            if !keep && let Some(m) = metrics {
                m.forget_target(&k.0.to_string(), k.1.as_str());
            }
            keep
        });
        for k in keys {
            if !self.health.iter().any(|(h, _, _)| *h == k) {
                self.health.push((k, Health::default(), None));
            }
        }
        if let Some(cfg) = &mut self.sweep {
            let mut t: Vec<SocketAddr> = self.specs.iter().map(|s| s.target).collect();
            t.dedup();
            cfg.targets = t;
            cfg.name = spec.name.clone();
            cfg.expect = match &spec.expect.answer {
                AnswerExpectation::Contains(v) => v.clone(),
                _ => Vec::new(),
            };
        }
    }

    /// One round. `all_namespaces`: sweep every selected namespace (for `--once`) instead of
    /// this round's share of the rotation.
    pub(crate) async fn round(&mut self, all_namespaces: bool) -> anyhow::Result<RoundReport> {
        let started = Instant::now();
        let discovered = self.cluster.as_ref().map(Cluster::snapshot);
        self.refresh(discovered.as_ref());
        let prober = Prober::new();
        let deadline = prober.deadline_for(&self.specs);
        let specs = &self.specs;
        let cluster = &self.cluster;
        let disc = discovered.as_ref();
        let host_probes = async move {
            match (cluster, disc) {
                (Some(c), _) if c.probes_via_pod() => c.probe_via_pod(specs).await,
                (Some(c), Some(d)) if c.probes_via_port_forward() => {
                    Ok(c.probe_via_port_forward(specs, d).await)
                }
                _ => Ok(prober.probe_many(specs, deadline).await),
            }
        };

        let sweep = async {
            let Some(cfg) = &self.sweep else {
                return Ok((Vec::new(), Vec::new()));
            };
            let cfg2 = cfg.clone();
            let (_, mut pods) = tokio::task::spawn_blocking(move || discover(&cfg2))
                .await
                .context("namespace discovery panicked")??;
            pods.sort_by_key(|n| (n.dev, n.inode));
            let present: Vec<(u64, u64)> = pods.iter().map(|n| (n.dev, n.inode)).collect();
            let chosen = if all_namespaces || pods.len() <= self.per_round {
                pods
            } else {
                let start = self.cursor % pods.len();
                let mut v: Vec<_> = pods
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(self.per_round)
                    .cloned()
                    .collect();
                v.sort_by_key(|n| (n.dev, n.inode));
                v
            };
            anyhow::Ok((present, check(cfg, None, chosen).await))
        };
        let (host, swept) = tokio::join!(host_probes, sweep);
        let host = host?;
        let (present, namespaces) = match swept {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "namespace sweep failed this round");
                (self.known.keys().copied().collect(), Vec::new())
            }
        };
        self.round += 1;
        self.cursor = self.cursor.wrapping_add(namespaces.len());
        self.record_host(&host);
        self.record_namespaces(&present, &namespaces);
        if let (Some(c), Some(d)) = (&mut self.cluster, &discovered) {
            self.kube_status = Some(c.after_round(d, &host, self.metrics.as_ref()).await);
            let down: Vec<(SocketAddr, Transport)> = self
                .health
                .iter()
                .filter(|(_, h, _)| h.state == HealthState::Down)
                .map(|(k, _, _)| *k)
                .collect();
            let tcp_up: Vec<SocketAddr> = self
                .health
                .iter()
                .filter(|((_, t), h, _)| *t == Transport::Tcp && h.state == HealthState::Up)
                .map(|((a, _), _, _)| *a)
                .collect();
            let unhealthy = self.known.values().filter(|k| !k.report.healthy()).count();
            c.update_node_condition(&down, &tcp_up, unhealthy).await;
        }
        if let Some(m) = &self.metrics {
            m.round_done(started.elapsed());
        }
        Ok(RoundReport { host, namespaces })
    }

    fn record_host(&mut self, reports: &[ProbeReport]) {
        for r in reports {
            let Some(entry) = self
                .health
                .iter_mut()
                .find(|(k, _, _)| *k == (r.target, r.transport))
            else {
                continue;
            };
            let target = r.target.to_string();
            if let Some(m) = &self.metrics {
                m.observe_query(
                    &target,
                    r.transport.as_str(),
                    Source::Host,
                    r.result_label(),
                    r.rtt,
                );
            }
            match entry.1.record(r.healthy(), self.thresholds) {
                Some(HealthState::Down) => warn!(
                    target = %target,
                    transport = %r.transport,
                    reason = %r.failure.as_ref().map(ToString::to_string).unwrap_or_default(),
                    kind = r.result_label(),
                    failures = entry.1.consecutive_failures,
                    "DNS target down"
                ),
                Some(HealthState::Up) => {
                    info!(target = %target, transport = %r.transport, "DNS target up")
                }
                _ => {}
            }
            entry.2 = Some(r.clone());
            if let Some(m) = &self.metrics
                && entry.1.state != HealthState::Unknown
            {
                m.set_target_up(
                    &target,
                    r.transport.as_str(),
                    entry.1.state == HealthState::Up,
                );
            }
        }
        // A UDP failure next to a working TCP path is the case the HTTP liveness probe misses:
        // say it when it starts.
        for s in &self.specs {
            let udp = self
                .health
                .iter()
                .find(|(k, _, _)| *k == (s.target, Transport::Udp));
            let tcp = self
                .health
                .iter()
                .find(|(k, _, _)| *k == (s.target, Transport::Tcp));
            if let (Some((_, u, _)), Some((_, t, _))) = (udp, tcp)
                && u.state == HealthState::Down
                && t.state == HealthState::Up
                && u.consecutive_failures == self.thresholds.failure.get()
            {
                warn!(target = %s.target, finding = "udp-blocked", "UDP to the target fails while TCP works");
            }
        }
    }

    fn record_namespaces(&mut self, present: &[(u64, u64)], swept: &[NsReport]) {
        self.known.retain(|k, _| present.contains(k));
        for r in swept {
            let key = (r.ns.dev, r.ns.inode);
            for p in &r.probes {
                if let Some(m) = &self.metrics {
                    m.observe_query(
                        &p.target.to_string(),
                        p.transport.as_str(),
                        Source::Pod,
                        p.result_label(),
                        p.rtt,
                    );
                }
            }
            let was = self.known.get(&key).map(|k| k.report.healthy());
            let now = r.healthy();
            if was != Some(now) && !(was.is_none() && now) {
                let findings: Vec<String> = r
                    .findings
                    .iter()
                    .map(|f| format!("{}: {}", f.code, f.message))
                    .collect();
                if now {
                    info!(netns = %r.ns.label(), pod_uid = r.ns.pod_uid.as_deref().unwrap_or("-"), "pod namespace resolves again");
                } else {
                    warn!(
                        netns = %r.ns.label(),
                        pod_uid = r.ns.pod_uid.as_deref().unwrap_or("-"),
                        findings = %findings.join("; "),
                        "pod namespace cannot resolve"
                    );
                }
            }
            self.known.insert(
                key,
                Known {
                    report: r.clone(),
                    round: self.round,
                },
            );
        }
        if let Some(m) = &self.metrics {
            let unhealthy = self.known.values().filter(|k| !k.report.healthy()).count();
            let mut codes: BTreeMap<String, usize> = BTreeMap::new();
            for k in self.known.values() {
                let mut seen: Vec<&str> =
                    k.report.findings.iter().map(|f| f.code.as_str()).collect();
                seen.sort_unstable();
                seen.dedup();
                for c in seen {
                    *codes.entry(c.to_owned()).or_default() += 1;
                }
            }
            let codes: Vec<(String, usize)> = codes.into_iter().collect();
            m.set_netns(self.known.len(), unhealthy, &codes);
        }
    }

    pub(crate) fn status(&self, duration: Duration) -> Status {
        let targets =
            self.health
                .iter()
                .map(|((target, transport), h, last)| TargetStatus {
                    target: target.to_string(),
                    transport: transport.as_str().to_owned(),
                    state: match h.state {
                        HealthState::Unknown => TargetState::Unknown,
                        HealthState::Up => TargetState::Up,
                        HealthState::Down => TargetState::Down,
                    },
                    last_error: last.as_ref().and_then(|r| r.failure.as_ref()).map(|f| {
                        ErrorStatus {
                            kind: f.kind().as_str().to_owned(),
                            message: f.to_string(),
                        }
                    }),
                    rtt_ms: last
                        .as_ref()
                        .and_then(|r| r.rtt)
                        .map(|d| d.as_micros() as f64 / 1000.0),
                    consecutive_failures: h.consecutive_failures,
                    consecutive_successes: h.consecutive_successes,
                })
                .collect();
        let namespaces = self
            .known
            .values()
            .map(|k| NamespaceStatus {
                inode: k.report.ns.inode,
                name: k.report.ns.name.clone(),
                pid: k.report.ns.pid,
                pod_uid: k.report.ns.pod_uid.clone(),
                healthy: k.report.healthy(),
                findings: k
                    .report
                    .findings
                    .iter()
                    .map(|f| FindingStatus {
                        code: f.code.as_str().to_owned(),
                        message: f.message.clone(),
                        target: f.target.map(|t| t.to_string()),
                    })
                    .collect(),
                checked_round: k.round,
            })
            .collect();
        Status {
            round: self.round,
            finished_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            duration_ms: duration.as_micros() as f64 / 1000.0,
            targets,
            namespaces,
            kubernetes: self.kube_status.clone(),
        }
    }
}

#[derive(Serialize)]
struct OnceJson {
    healthy: bool,
    /// How the targets were reached: `direct`, `probe-pod`, `port-forward`.
    via: &'static str,
    /// A caveat on the results, e.g. that UDP was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    targets: Vec<JsonReport>,
    namespaces: Vec<JsonNsReport>,
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => std::future::pending().await,
    }
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<u8> {
    // --once prints its report; logs are for the agent.
    if !args.once {
        init_logging(args.log_format);
    }
    let buckets = if args.latency_buckets.is_empty() {
        hc_exporter::DEFAULT_LATENCY_BUCKETS.to_vec()
    } else {
        args.latency_buckets.clone()
    };
    let metrics = match Metrics::new(&buckets) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("Error: --latency-buckets: {e}");
            return Ok(exit::USAGE);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let source = hc_remedy::cluster_source(args.kube.kubeconfig.as_deref(), |k| std::env::var(k).ok());
        if source.is_none() && args.targets.is_empty() {
            eprintln!(
                "Error: no target: give --target IP[:PORT] (repeatable), or --kubeconfig PATH (or KUBECONFIG, or run inside a pod) to discover CoreDNS"
            );
            return Ok(exit::USAGE);
        }
        if source.is_none() && args.kube.via == crate::cli::Via::ProbePod {
            eprintln!("Error: --via probe-pod needs a cluster: give --kubeconfig PATH (or KUBECONFIG)");
            return Ok(exit::USAGE);
        }
        let cluster = match &source {
            None => None,
            Some(src) => match Cluster::start(&args, src).await {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    return Ok(exit::USAGE);
                }
            },
        };
        if args.once {
            return once(&args, cluster).await;
        }
        let mut registry = Registry::default();
        let metrics = metrics.register(&mut registry, env!("CARGO_PKG_VERSION"));
        let admin = Admin::new(registry);
        let server = match admin.bind(args.metrics_addr).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: {e}");
                return Ok(exit::USAGE);
            }
        };
        let listening = server.local_addr().map_or_else(|_| args.metrics_addr.to_string(), |a| a.to_string());
        tokio::spawn(server.run());
        let mut agent = Agent::new(&args, Some(metrics), cluster);
        info!(
            targets = %agent.specs.iter().map(|s| s.target.to_string()).collect::<Vec<_>>().join(","),
            interval = %humantime::format_duration(args.interval),
            sweep_netns = args.sweep_netns,
            metrics_addr = %listening,
            "agent started"
        );
        let mut ticks = tokio::time::interval(args.interval);
        // A round that overruns the interval delays the next one; rounds never stack.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let sig = tokio::select! {
                s = &mut shutdown => Some(s),
                _ = ticks.tick() => None,
            };
            if let Some(sig) = sig {
                admin.shutting_down();
                info!(signal = sig, "shutting down");
                if let Some(c) = &agent.cluster {
                    c.shutdown().await;
                }
                return Ok(exit::HEALTHY);
            }
            let started = Instant::now();
            let done = tokio::select! {
                s = &mut shutdown => Err(s),
                r = agent.round(false) => Ok(r),
            };
            match done {
                Err(sig) => {
                    admin.shutting_down();
                    info!(signal = sig, "shutting down; the round in progress is abandoned");
                    if let Some(c) = &agent.cluster {
                        // Bounded: the process must be gone within 2 s of the signal.
                        let _ = tokio::time::timeout(Duration::from_secs(1), c.shutdown()).await;
                    }
                    return Ok(exit::HEALTHY);
                }
                Ok(Err(e)) => warn!(error = %format!("{e:#}"), "round failed"),
                Ok(Ok(_)) => admin.publish(agent.status(started.elapsed())),
            }
        }
    })
}

async fn once(args: &RunArgs, cluster: Option<Cluster>) -> anyhow::Result<u8> {
    let mut agent = Agent::new(args, None, cluster);
    let report = match agent.round(true).await {
        Ok(r) => r,
        Err(e) => {
            // Configuration or access problems (e.g. a probe pod that cannot be created).
            eprintln!("Error: {e:#}");
            return Ok(exit::USAGE);
        }
    };
    let healthy = report.host.iter().all(ProbeReport::healthy)
        && report.namespaces.iter().all(NsReport::healthy);
    let (via, note) = match args.kube.via {
        crate::cli::Via::Direct => ("direct", None),
        crate::cli::Via::ProbePod => ("probe-pod", None),
        crate::cli::Via::PortForward => (
            "port-forward",
            Some(
                "through a port-forward only TCP can be checked: UDP, what pods use, was not probed",
            ),
        ),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = OnceJson {
            healthy,
            via,
            note,
            targets: report.host.iter().map(json_report).collect(),
            namespaces: report.namespaces.iter().map(ns_json).collect(),
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        let colour = use_colour();
        for r in &report.host {
            writeln!(out, "{}", human_line(r, colour))?;
        }
        for n in &report.namespaces {
            writeln!(out, "{}", ns_human(n, colour))?;
        }
        if let Some(n) = note {
            writeln!(out, "note: {n}")?;
        }
    }
    out.flush()?;
    Ok(if healthy {
        exit::HEALTHY
    } else {
        exit::UNHEALTHY
    })
}
