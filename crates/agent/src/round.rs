//! One round of the agent: composition of the libraries. Probing is `dnsprobe`'s, the sweep and
//! its rotation `hc_netns`'s, the thresholds `dnsprobe::HealthBook`'s, metrics and the status
//! document `hc_exporter`'s, Kubernetes `hc_remedy`'s ([`AgentCluster`]); what to probe within
//! the query budget is [`crate::schedule`]'s.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use dnsprobe::hickory_proto::rr::RecordType;
use dnsprobe::{
    AnswerExpectation, HealthBook, HealthState, ProbeReport, ProbeSpec, Prober, Thresholds,
    Transport, TransportMode, TransportVerdict,
};
use hc_exporter::{KubernetesStatus, Metrics, Source, Status};
use hc_netns::{Namespace, NamespaceBook, NetnsError, NsReport, SweepConfig};
use hc_remedy::{AgentCluster, Discovered, ProbePodError};
use tracing::{info, warn};

use hc_remedy::probing::{self, DEFAULT_EPOCH};

use crate::api_dns::ApiDnsCheck;
use crate::schedule::{Budget, CLIENT_WALK_QUERIES, NamespaceShare};

/// How long the scan of the namespaces may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a round could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The probe pod (`--via probe-pod`) gave no result.
    #[error(transparent)]
    ProbePod(#[from] ProbePodError),
}

/// What the agent probes and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Targets given on the command line: probed over UDP and TCP every round.
    pub targets: Vec<SocketAddr>,
    /// The query every probe is made from (its target is replaced).
    pub probe: ProbeSpec,
    /// The name was given: discovery does not replace it.
    pub name_given: bool,
    /// When a target is up or down.
    pub thresholds: Thresholds,
    /// What to sweep, if the pod namespaces are swept.
    pub sweep: Option<SweepConfig>,
    /// The query budget and its shares (discovered targets, the API server through cluster DNS
    /// ([`crate::api_dns`], `budget.api_dns_every`), namespaces).
    pub budget: Budget,
}

impl AgentConfig {
    /// Probes of `targets` made from `probe`, default thresholds and budget, no sweep.
    pub fn new(targets: Vec<SocketAddr>, probe: ProbeSpec) -> Self {
        AgentConfig {
            targets,
            probe,
            name_given: false,
            thresholds: Thresholds::default(),
            sweep: None,
            budget: Budget::default(),
        }
    }
}

/// One round's reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Round {
    /// From the agent's own namespace: what was probed this round.
    pub host: Vec<ProbeReport>,
    /// This round's share of the pod namespaces.
    pub namespaces: Vec<NsReport>,
    /// The budget, not the need, limited the namespaces checked.
    pub budget_limited: bool,
}

impl Round {
    /// Every probe passed and every swept namespace is healthy.
    pub fn healthy(&self) -> bool {
        self.host.iter().all(ProbeReport::healthy) && self.namespaces.iter().all(NsReport::healthy)
    }
}

/// What a target is to the schedule.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Named on the command line: UDP and TCP every round.
    Static,
    /// A ClusterIP of the DNS Service: every round, over TCP every `tcp_every`-th.
    Service,
    /// A CoreDNS pod (by UID, else its address): when this round's sample takes it.
    Pod(String),
}

/// The CoreDNS pods' addresses among `targets`.
fn endpoints(targets: &[(ProbeSpec, Kind)]) -> Vec<std::net::IpAddr> {
    (targets.iter())
        .filter(|(_, k)| matches!(k, Kind::Pod(_)))
        .map(|(s, _)| s.target.ip())
        .collect()
}

/// The agent: what it probes, and what it remembers between rounds.
///
/// ```no_run
/// # async fn run() -> Result<(), hc_agent::AgentError> {
/// use hc_agent::{Agent, AgentConfig};
///
/// let target = "10.96.0.10:53".parse().unwrap();
/// let cfg = AgentConfig::new(vec![target], dnsprobe::ProbeSpec::new(target));
/// let mut agent = Agent::new(cfg, None, None);
/// let round = agent.round(false).await?;
/// println!("{} reports; healthy: {}", round.host.len(), agent.status(std::time::Duration::ZERO).healthy());
/// # Ok(()) }
/// ```
pub struct Agent {
    cfg: AgentConfig,
    targets: Vec<(ProbeSpec, Kind)>,
    cluster: Option<AgentCluster>,
    kube_status: Option<KubernetesStatus>,
    /// What discovery knew at the start of the last round.
    discovered: Option<Discovered>,
    health: HealthBook,
    namespaces: NamespaceBook,
    share: NamespaceShare,
    round: u64,
    /// The epoch of the pod sample, the pods of its sample already probed, and those probed in
    /// the epoch before.
    sampled: (u64, Vec<String>, Vec<String>),
    metrics: Option<Metrics>,
    /// Targets with one transport down while the other is up, as last logged.
    blocked: Vec<(SocketAddr, TransportVerdict)>,
    /// Why the last round checked nothing, when it did not.
    nothing_checked: Option<String>,
    node: String,
    /// The check of the API server through cluster DNS (Kubernetes mode, probing from here).
    api_dns: Option<ApiDnsCheck>,
    /// When a pod's client path was last walked, and the queries the last walk sent past its
    /// charge (paid in the next round).
    walked: (Option<Instant>, f64),
    /// The node's conntrack statistics at the last round.
    conntrack: Option<hc_netns::ConntrackStats>,
    /// The CoreDNS pod addresses of the last stale-entry check, and what it found.
    stale: (Vec<std::net::IpAddr>, Vec<String>),
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.targets();
        f.debug_struct("Agent")
            .field("round", &self.round)
            .field("targets", &t)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent; `metrics` are updated every round, `cluster` gives its targets in Kubernetes.
    pub fn new(cfg: AgentConfig, metrics: Option<Metrics>, cluster: Option<AgentCluster>) -> Agent {
        let node = (cluster.as_ref().and_then(|c| c.node().map(str::to_owned)))
            .or_else(hc_remedy::hostname)
            .unwrap_or_else(|| "node".to_owned());
        let api_dns = (cluster.as_ref())
            .filter(|c| !c.probes_elsewhere())
            .and_then(|_| ApiDnsCheck::new(cfg.budget.api_dns_every));
        if let (Some(m), Some(_)) = (&metrics, &api_dns) {
            m.api_dns_enabled();
        }
        let mut agent = Agent {
            api_dns,
            health: HealthBook::new(cfg.thresholds),
            cfg,
            targets: Vec::new(),
            cluster,
            kube_status: None,
            discovered: None,
            namespaces: NamespaceBook::default(),
            share: NamespaceShare::default(),
            round: 0,
            sampled: (0, Vec::new(), Vec::new()),
            metrics,
            blocked: Vec::new(),
            nothing_checked: None,
            node,
            walked: (None, 0.0),
            conntrack: None,
            stale: (Vec::new(), Vec::new()),
        };
        agent.refresh(None);
        agent
    }

    /// Every target the agent knows, as `ip:port` strings.
    pub fn targets(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|(s, _)| s.target.to_string())
            .collect()
    }

    /// Rebuilds the target list from the static targets and what discovery knows; pairs that
    /// stay keep their state, the others are forgotten (and their `target_up` series removed).
    fn refresh(&mut self, discovered: Option<&Discovered>) {
        let mut template = self.cfg.probe.clone();
        let both = TransportMode::Both;
        let mut targets: Vec<(ProbeSpec, Kind)> = (self.cfg.targets.iter())
            .map(|t| {
                (
                    template.clone().with_target(*t).with_transport(both),
                    Kind::Static,
                )
            })
            .collect();
        if let (Some(c), Some(d)) = (&self.cluster, discovered) {
            if !self.cfg.name_given {
                template.name = c.query_name().clone();
            }
            if template.expect.answer == AnswerExpectation::NonEmpty
                && let Some(api) = d.api_ip
            {
                template.expect.answer = AnswerExpectation::Contains(vec![api]);
            }
            for (t, mode) in c.targets(d) {
                if targets.iter().any(|(s, _)| s.target == t) {
                    continue;
                }
                let kind = match d.endpoint(t.ip()) {
                    Some(e) => Kind::Pod(e.pod_uid.clone().unwrap_or_else(|| t.ip().to_string())),
                    None => Kind::Service,
                };
                targets.push((template.clone().with_target(t).with_transport(mode), kind));
            }
            for (s, _) in &mut targets {
                s.name = template.name.clone();
                s.expect = template.expect.clone();
            }
        }
        if let Some(cfg) = &mut self.cfg.sweep {
            let mut t: Vec<SocketAddr> = targets.iter().map(|(s, _)| s.target).collect();
            t.dedup();
            cfg.targets = t;
            cfg.probe = template;
            cfg.endpoints = endpoints(&targets);
        }
        self.targets = targets;
    }

    /// Keeps state for what this node probes: the static targets, the Service, and the CoreDNS
    /// pods of its sample in this epoch and the last (`all`: every pod). A pod that left the
    /// sample is forgotten, with its `target_up` series: its state would otherwise grow stale
    /// (a node may not probe it again for many epochs).
    fn track(&mut self, all: bool) {
        let (this, last) = (&self.sampled.1, &self.sampled.2);
        let keys: Vec<(SocketAddr, Transport)> = (self.targets.iter())
            .filter(|(_, k)| match k {
                Kind::Pod(uid) => all || this.contains(uid) || last.contains(uid),
                _ => true,
            })
            .flat_map(|(s, _)| s.transport.transports().iter().map(move |t| (s.target, *t)))
            .collect();
        if let Some(m) = &self.metrics {
            // At 0 from the round a target is known, so `increase()` sees its first failure
            // (once: the book knows the targets it tracks already).
            (keys.iter())
                .filter(|(t, tr)| self.health.get(*t, *tr).is_none())
                .for_each(|(t, tr)| m.target_known(&t.to_string(), tr.as_str()));
        }
        for (target, transport) in self.health.track(keys) {
            if let Some(m) = &self.metrics {
                m.forget_target(&target.to_string(), transport.as_str());
            }
        }
    }

    /// This round's probes: the static targets whole, the Service over one transport, this
    /// round's share of the sample of CoreDNS pods over UDP.
    fn plan(&mut self, round: u64, d: Option<&Discovered>) -> Vec<ProbeSpec> {
        let sample = self.pods_this_round(d, SystemTime::now());
        let b = &self.cfg.budget;
        let one = |s: &ProbeSpec, t| s.clone().with_transport(t);
        let service = if b.service_over_tcp(round) {
            TransportMode::Tcp
        } else {
            TransportMode::Udp
        };
        // The race check rides on the first Service address's UDP probe (docs/performance.md).
        let mut parallel = b.parallel_this_round(round);
        let mut race = |s: ProbeSpec| {
            let on = parallel && s.transport == TransportMode::Udp;
            parallel &= !on;
            s.with_parallel_a_aaaa(on)
        };
        (self.targets.iter())
            .filter_map(|(s, k)| match k {
                Kind::Static => Some(s.clone()),
                Kind::Service if s.transport == TransportMode::Both => Some(race(one(s, service))),
                Kind::Service => Some(race(s.clone())),
                Kind::Pod(uid) if sample.contains(uid) => {
                    Some(if s.transport == TransportMode::Tcp {
                        s.clone()
                    } else {
                        one(s, TransportMode::Udp)
                    })
                }
                Kind::Pod(_) => None,
            })
            .collect()
    }

    /// The CoreDNS pods (by UID) to probe this round: this epoch's sample (the plan's size, or
    /// the default without one; never more than the budget pays for), each pod once in the
    /// epoch, when it is due.
    fn pods_this_round(&mut self, d: Option<&Discovered>, now: SystemTime) -> Vec<String> {
        let b = &self.cfg.budget;
        let uids: Vec<&str> = (self.targets.iter())
            .filter_map(|(_, k)| match k {
                Kind::Pod(uid) => Some(uid.as_str()),
                _ => None,
            })
            .collect();
        let fixed: usize = (self.targets.iter())
            .map(|(_, k)| match k {
                Kind::Static => 2,
                Kind::Service => 1,
                Kind::Pod(_) => 0,
            })
            .sum();
        let (k, len) = match d.and_then(|d| d.plan) {
            Some(p) => (p.pods_per_epoch, p.epoch),
            None => (
                probing::pods_per_epoch(b.observers, uids.len(), None),
                DEFAULT_EPOCH,
            ),
        };
        let k = k.min(b.pods_cap(len, fixed));
        let epoch = probing::epoch_of(now, len);
        if self.sampled.0 != epoch {
            let last = std::mem::take(&mut self.sampled.1);
            self.sampled = (
                epoch,
                Vec::new(),
                if self.sampled.0 + 1 == epoch {
                    last
                } else {
                    Vec::new()
                },
            );
        }
        // Each pod of the sample is due at its own moment of the epoch: the node's offset (a
        // hash of its name and the epoch) plus an even share, so that across the cluster the
        // probes of a pod are spread over the epoch, not bunched at its start. Due before the
        // epoch's last round, so that a round still comes.
        let offset = (probing::score(&self.node, "", epoch) % 10_000) as f64 / 10_000.0;
        let usable = len.saturating_sub(b.interval).max(Duration::from_millis(1));
        let into = (now.duration_since(probing::epoch_start(epoch, len))).unwrap_or_default();
        let done = &mut self.sampled.1;
        let sample = probing::sample(&self.node, &uids, k, epoch);
        let now: Vec<String> = (sample.iter().enumerate())
            .filter(|(j, _)| usable.mul_f64((offset + *j as f64 / k as f64).fract()) <= into)
            .map(|(_, u)| *u)
            .filter(|u| !done.iter().any(|d| d == u))
            .map(str::to_owned)
            .collect();
        done.extend(now.iter().cloned());
        now
    }

    /// One round. `all_namespaces`: probe every target over both transports and sweep every
    /// selected namespace (for `--once`), instead of this round's budgeted share.
    pub async fn round(&mut self, all_namespaces: bool) -> Result<Round, AgentError> {
        let started = Instant::now();
        let discovered = self.cluster.as_ref().map(AgentCluster::snapshot);
        self.refresh(discovered.as_ref());
        self.round += 1;
        let specs = if all_namespaces {
            self.targets.iter().map(|(s, _)| s.clone()).collect()
        } else {
            self.plan(self.round, discovered.as_ref())
        };
        self.track(all_namespaces);
        let mut host = self.host_probes(&specs, discovered.as_ref()).await?;
        host.extend(self.follow_up(&host, discovered.as_ref()).await?);
        let api_dns = match all_namespaces {
            false => self.api_dns_round(discovered.as_ref()).await,
            true => None,
        };
        // The namespaces get what the node's own view left of the round's budget.
        let used: u32 = (host.iter().chain(&api_dns))
            .map(|r| r.attempts.max(1) * if r.parallel.is_some() { 2 } else { 1 })
            .sum();
        let (present, namespaces, limited) = self
            .sweep_share(all_namespaces, f64::from(used))
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "namespace sweep failed this round");
                (self.namespaces.last_present(), Vec::new(), false)
            });
        self.record_host(&host);
        self.record_namespaces(&present, &namespaces);
        self.conntrack().await;
        if let Some(c) = &mut self.cluster {
            self.kube_status = Some(c.status().await);
            let unhealthy = self.namespaces.summary().unhealthy;
            c.update_node_condition(&self.health, unhealthy).await;
        }
        self.discovered = discovered;
        self.note_nothing_checked(&host, &namespaces);
        if let Some(m) = &self.metrics {
            m.set_budget(self.cfg.budget.qps, limited);
            m.round_done(started.elapsed());
        }
        Ok(Round {
            host,
            namespaces,
            budget_limited: limited,
        })
    }

    async fn host_probes(
        &self,
        specs: &[ProbeSpec],
        d: Option<&Discovered>,
    ) -> Result<Vec<ProbeReport>, AgentError> {
        match (&self.cluster, d) {
            (Some(c), Some(d)) if c.probes_elsewhere() => Ok(c.probe(specs, d).await?),
            _ => {
                let prober = Prober::new();
                let deadline = prober.deadline_for(specs);
                Ok(prober.probe_many(specs, deadline).await)
            }
        }
    }

    /// TCP where a UDP probe failed on the path and TCP was not probed this round: what tells
    /// "UDP blocked" from "unreachable".
    async fn follow_up(
        &self,
        host: &[ProbeReport],
        d: Option<&Discovered>,
    ) -> Result<Vec<ProbeReport>, AgentError> {
        let tcp_done = |t| {
            host.iter()
                .any(|r| r.target == t && r.transport == Transport::Tcp)
        };
        let specs: Vec<ProbeSpec> = (host.iter())
            .filter(|r| r.transport == Transport::Udp && !r.path_works() && !tcp_done(r.target))
            .filter_map(|r| self.targets.iter().find(|(s, _)| s.target == r.target))
            .filter(|(s, _)| s.transport == TransportMode::Both)
            .map(|(s, _)| s.clone().with_transport(TransportMode::Tcp))
            .collect();
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        self.host_probes(&specs, d).await
    }

    /// The check of the API server through cluster DNS, when it is due and the DNS Service and
    /// `default/kubernetes` are known: the DNS report it cost (counted, and in the budget). A
    /// change of its result is logged once.
    async fn api_dns_round(&mut self, d: Option<&Discovered>) -> Option<ProbeReport> {
        let check = self.api_dns.as_mut()?;
        let (d, c) = (d?, self.cluster.as_ref()?);
        if !check.due(Instant::now()) {
            return None;
        }
        let api = d.api_ip?;
        let resolver = (self.targets.iter())
            .find(|(s, k)| *k == Kind::Service && s.target.is_ipv4() == api.is_ipv4())
            .map(|(s, _)| s.target)?;
        let template = (self.cfg.probe.clone())
            .with_name(c.query_name().clone())
            .with_query_type(if api.is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            });
        let was = check.last().map(|s| s.ok());
        let (report, s) = check
            .run(&template, resolver, api, d.api_port.unwrap_or(443))
            .await;
        if let Some(m) = &self.metrics {
            m.observe_report(&report, Source::Host);
            m.api_dns(&s);
        }
        match (was, s.ok()) {
            (Some(true) | None, false) => warn!(
                name = %s.name, resolver = %s.resolver, result = %s.result,
                reason = %s.message.as_deref().unwrap_or(""), finding = "api-dns-unreachable",
                "the API server cannot be reached through cluster DNS"
            ),
            (Some(false), true) => {
                info!(name = %s.name, "the API server is reached through cluster DNS again")
            }
            _ => {}
        }
        Some(report)
    }

    /// This round's share of the pod namespaces, swept, given the queries already `used`; the
    /// namespaces present; whether the budget cut the share.
    async fn sweep_share(
        &mut self,
        all: bool,
        used: f64,
    ) -> Result<(Vec<Namespace>, Vec<NsReport>, bool), NetnsError> {
        let Some(cfg) = &self.cfg.sweep else {
            return Ok((Vec::new(), Vec::new(), false));
        };
        let c = cfg.clone();
        // Off the runtime's thread, and bounded: a proc root on a filesystem that hangs must
        // not stop the rounds.
        let scan = tokio::task::spawn_blocking(move || hc_netns::discover(&c));
        let (_, present) = tokio::time::timeout(SCAN_TIMEOUT, scan)
            .await
            .map_err(|_| NetnsError::Task {
                what: "the namespace scan",
                detail: format!("no result within {}s", SCAN_TIMEOUT.as_secs()),
            })?
            .map_err(|e| NetnsError::Task {
                what: "the namespace scan",
                detail: e.to_string(),
            })??;
        let b = &self.cfg.budget;
        // One pod's client path every `client_every` (the first of the share: the rotation
        // moves it on), charged before the namespaces take what is left, with what the last
        // walk sent past its charge.
        let due = (self.walked.0).is_none_or(|t| t.elapsed() >= b.client_every);
        let charge = if due {
            f64::from(CLIENT_WALK_QUERIES)
        } else {
            0.0
        } + self.walked.1;
        let (n, limited) = if all {
            (present.len(), false)
        } else {
            self.share
                .take(b, present.len(), b.per_round() - used - charge)
        };
        let share = self.namespaces.share(&present, n);
        let mut cfg = cfg.clone();
        cfg.client_walks = usize::from(due);
        let reports = hc_netns::check(&cfg, None, share).await;
        self.walked.1 = 0.0;
        if let Some(c) = reports.iter().find_map(|r| r.client.as_ref()) {
            self.walked = (
                Some(Instant::now()),
                (f64::from(c.sent) - f64::from(CLIENT_WALK_QUERIES)).max(0.0),
            );
        }
        Ok((present, reports, limited))
    }

    fn record_host(&mut self, reports: &[ProbeReport]) {
        for r in reports {
            if let Some(m) = &self.metrics {
                m.observe_report(r, Source::Host);
            }
            let changed = self
                .health
                .record(r)
                .map(|t| (t.state, t.consecutive_failures));
            match changed {
                Some((HealthState::Down, failures)) => warn!(
                    target = %r.target,
                    transport = %r.transport,
                    reason = %r.failure.as_ref().map(ToString::to_string).unwrap_or_default(),
                    kind = r.result_label(),
                    failures,
                    "DNS target down"
                ),
                Some((HealthState::Up, _)) => {
                    info!(target = %r.target, transport = %r.transport, "DNS target up")
                }
                _ => {}
            }
        }
        if let Some(m) = &self.metrics {
            self.health
                .entries()
                .iter()
                .for_each(|e| m.set_target_state(e));
        }
        // One transport failing next to the other working is the case the HTTP liveness probe
        // misses (UDP), or the one large answers and zone transfers meet (TCP): say it when it
        // starts.
        let blocked: Vec<(SocketAddr, TransportVerdict)> = (self.targets.iter())
            .map(|(s, _)| (s.target, self.health.verdict(s.target)))
            .filter(|(_, v)| {
                matches!(
                    v,
                    TransportVerdict::UdpBlocked | TransportVerdict::TcpBlocked
                )
            })
            .collect();
        for (t, v) in blocked.iter().filter(|b| !self.blocked.contains(b)) {
            let (works, fails) = match v {
                TransportVerdict::UdpBlocked => ("TCP", "UDP"),
                _ => ("UDP", "TCP"),
            };
            warn!(target = %t, finding = v.as_str(), "{fails} to the target fails while {works} works");
        }
        self.blocked = blocked;
    }

    fn record_namespaces(&mut self, present: &[Namespace], swept: &[NsReport]) {
        for p in swept.iter().flat_map(|r| &r.probes) {
            if let Some(m) = &self.metrics {
                m.observe_report(p, Source::Pod);
            }
        }
        for c in swept.iter().filter_map(|r| r.client.as_ref()) {
            if let Some(m) = &self.metrics {
                m.observe_client_lookup(c);
            }
        }
        for g in swept.iter().filter_map(|r| r.conntrack.as_ref()) {
            if let Some(m) = &self.metrics {
                m.observe_conntrack(Source::Pod, g);
            }
        }
        for r in self.namespaces.record(self.round, present, swept) {
            let pod_uid = r.ns.pod_uid.as_deref().unwrap_or("-");
            if r.healthy() {
                info!(netns = %r.ns.label(), pod_uid, "pod namespace resolves again");
            } else {
                let findings: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
                warn!(netns = %r.ns.label(), pod_uid, findings = %findings.join("; "), "pod namespace cannot resolve");
            }
        }
        if let Some(m) = &self.metrics {
            m.set_netns_summary(&self.namespaces.summary());
        }
    }

    /// The node's conntrack counters since the last round (`conntrack_stat_total{source="host"}`),
    /// and, every 8th round or when the CoreDNS pods changed, its UDP entries to the Service
    /// that lead to a gone pod (`conntrack_stale_entries`, logged when they change). Needs
    /// CAP_NET_ADMIN for the entries; without it the gauge stays 0.
    async fn conntrack(&mut self) {
        let now = tokio::task::spawn_blocking(|| hc_netns::read_stats(None).ok().flatten())
            .await
            .ok()
            .flatten();
        if let (Some(m), Some(before), Some(now)) = (&self.metrics, &self.conntrack, &now) {
            m.observe_conntrack(Source::Host, &now.growth_since(before));
        }
        if now.is_some() {
            self.conntrack = now;
        }
        let eps = endpoints(&self.targets);
        if eps.is_empty() || (self.round % 8 != 1 && eps == self.stale.0) {
            return;
        }
        let services: Vec<SocketAddr> = (self.targets.iter())
            .filter(|(_, k)| *k == Kind::Service)
            .map(|(s, _)| s.target)
            .collect();
        let mut cfg = SweepConfig::new(services);
        cfg.endpoints = eps.clone();
        let stale = hc_netns::stale_endpoints(&cfg).await;
        if let Some(m) = &self.metrics {
            m.set_conntrack_stale(stale.iter().map(|s| s.clients.len()).sum());
        }
        let found: Vec<String> = stale.iter().map(ToString::to_string).collect();
        for f in found.iter().filter(|f| !self.stale.1.contains(f)) {
            warn!(finding = "conntrack-stale-endpoint", "{f}");
        }
        self.stale = (eps, found);
    }

    /// Why the last round checked nothing (no target known, no probe could start), or `None`
    /// when it checked something. Such a round is not healthy.
    pub fn nothing_checked(&self) -> Option<&str> {
        self.nothing_checked.as_deref()
    }

    /// Sets why this round checked nothing, logging when that starts and ends.
    fn note_nothing_checked(&mut self, host: &[ProbeReport], namespaces: &[NsReport]) {
        let not_started = |r: &ProbeReport| {
            r.failure
                .as_ref()
                .is_some_and(|f| !f.kind().counts_against_target())
        };
        let checked = host.iter().any(|r| !not_started(r)) || !namespaces.is_empty();
        let why = (!checked).then(|| {
            if let Some(f) = host.iter().find_map(|r| r.failure.as_ref()) {
                format!("no probe could start: {f}")
            } else if let Some(e) = self.kube_status.as_ref().and_then(|k| k.last_error.as_ref()) {
                format!("no DNS target known: the Kubernetes API: {e}")
            } else {
                "no DNS target known: discovery found no ClusterIP and no endpoint for the DNS Service (check --namespace and --service)".to_owned()
            }
        });
        match (&self.nothing_checked, &why) {
            (None, Some(w)) => warn!(reason = %w, "this round checked nothing: not healthy"),
            (Some(_), None) => info!("checking again"),
            _ => {}
        }
        self.nothing_checked = why;
    }

    /// The `/status` document of the last round.
    pub fn status(&self, duration: Duration) -> Status {
        let mut s = Status::new(self.round, duration, &self.health, &self.namespaces);
        if let (Some(c), Some(d)) = (&self.cluster, &self.discovered) {
            c.annotate(d, &mut s.targets);
            s.node = c.node().map(str::to_owned);
        }
        s.kubernetes = self.kube_status.clone();
        s.nothing_checked = self.nothing_checked.clone();
        s.api_dns = self.api_dns.as_ref().and_then(|c| c.last().cloned());
        s
    }
}
