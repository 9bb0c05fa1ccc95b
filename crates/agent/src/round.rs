//! One round of the agent: composition of the libraries. Probing is `dnsprobe`'s, the sweep and
//! its rotation `hc_netns`'s, the thresholds `dnsprobe::HealthBook`'s, metrics and the status
//! document `hc_exporter`'s, Kubernetes `hc_remedy`'s ([`AgentCluster`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dnsprobe::{
    AnswerExpectation, HealthBook, HealthState, ProbeReport, ProbeSpec, Prober, Thresholds,
    Transport, TransportMode, TransportVerdict,
};
use hc_exporter::{KubernetesStatus, Metrics, Source, Status};
use hc_netns::{Namespace, NamespaceBook, NetnsError, NsReport, SweepConfig};
use hc_remedy::{AgentCluster, Discovered, ProbePodError};
use tracing::{info, warn};

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
    /// Targets given on the command line (probed over UDP and TCP).
    pub targets: Vec<SocketAddr>,
    /// The query every probe is made from (its target is replaced).
    pub probe: ProbeSpec,
    /// The name was given: discovery does not replace it.
    pub name_given: bool,
    /// When a target is up or down.
    pub thresholds: Thresholds,
    /// What to sweep, if the pod namespaces are swept.
    pub sweep: Option<SweepConfig>,
    /// Pod namespaces swept per round at most.
    pub per_round: usize,
}

impl AgentConfig {
    /// Probes of `targets` made from `probe`, default thresholds, no sweep.
    pub fn new(targets: Vec<SocketAddr>, probe: ProbeSpec) -> Self {
        AgentConfig {
            targets,
            probe,
            name_given: false,
            thresholds: Thresholds::default(),
            sweep: None,
            per_round: 16,
        }
    }
}

/// One round's reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Round {
    /// From the agent's own namespace, every target over its transports.
    pub host: Vec<ProbeReport>,
    /// This round's share of the pod namespaces.
    pub namespaces: Vec<NsReport>,
}

impl Round {
    /// Every probe passed and every swept namespace is healthy.
    pub fn healthy(&self) -> bool {
        self.host.iter().all(ProbeReport::healthy) && self.namespaces.iter().all(NsReport::healthy)
    }
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
    specs: Vec<ProbeSpec>,
    cluster: Option<AgentCluster>,
    kube_status: Option<KubernetesStatus>,
    /// What discovery knew at the start of the last round.
    discovered: Option<Discovered>,
    health: HealthBook,
    namespaces: NamespaceBook,
    round: u64,
    metrics: Option<Metrics>,
    /// Targets whose UDP is down while TCP is up, as last logged.
    udp_blocked: Vec<SocketAddr>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("round", &self.round)
            .field("targets", &self.targets())
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent; `metrics` are updated every round, `cluster` gives its targets in Kubernetes.
    pub fn new(cfg: AgentConfig, metrics: Option<Metrics>, cluster: Option<AgentCluster>) -> Agent {
        let mut agent = Agent {
            health: HealthBook::new(cfg.thresholds),
            cfg,
            specs: Vec::new(),
            cluster,
            kube_status: None,
            discovered: None,
            namespaces: NamespaceBook::default(),
            round: 0,
            metrics,
            udp_blocked: Vec::new(),
        };
        agent.refresh(None);
        agent
    }

    /// The targets of the next round, as `ip:port` strings.
    pub fn targets(&self) -> Vec<String> {
        self.specs.iter().map(|s| s.target.to_string()).collect()
    }

    /// Rebuilds the probe list from the static targets and what discovery knows; pairs that
    /// stay keep their state, the others are forgotten (and their `target_up` series removed).
    fn refresh(&mut self, discovered: Option<&Discovered>) {
        let mut template = self.cfg.probe.clone();
        let mut targets: Vec<(SocketAddr, TransportMode)> = self
            .cfg
            .targets
            .iter()
            .map(|t| (*t, TransportMode::Both))
            .collect();
        if let (Some(c), Some(d)) = (&self.cluster, discovered) {
            for t in c.targets(d) {
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
            if !self.cfg.name_given {
                template.name = c.query_name().clone();
            }
            if template.expect.answer == AnswerExpectation::NonEmpty
                && let Some(api) = d.api_ip
            {
                template.expect.answer = AnswerExpectation::Contains(vec![api]);
            }
        }
        self.specs = targets
            .into_iter()
            .map(|(t, mode)| template.clone().with_target(t).with_transport(mode))
            .collect();
        let keys: Vec<(SocketAddr, Transport)> = self
            .specs
            .iter()
            .flat_map(|s| s.transport.transports().iter().map(move |t| (s.target, *t)))
            .collect();
        for (target, transport) in self.health.track(keys) {
            if let Some(m) = &self.metrics {
                m.forget_target(&target.to_string(), transport.as_str());
            }
        }
        if let Some(cfg) = &mut self.cfg.sweep {
            let mut t: Vec<SocketAddr> = self.specs.iter().map(|s| s.target).collect();
            t.dedup();
            cfg.targets = t;
            cfg.probe = template;
        }
    }

    /// One round. `all_namespaces`: sweep every selected namespace (for `--once`) instead of this
    /// round's share of the rotation.
    pub async fn round(&mut self, all_namespaces: bool) -> Result<Round, AgentError> {
        let started = Instant::now();
        let discovered = self.cluster.as_ref().map(AgentCluster::snapshot);
        self.refresh(discovered.as_ref());
        let (host, swept) = tokio::join!(
            self.host_probes(discovered.as_ref()),
            self.sweep_share(all_namespaces)
        );
        let host = host?;
        let (present, namespaces) = swept.unwrap_or_else(|e| {
            warn!(error = %e, "namespace sweep failed this round");
            (self.namespaces.last_present(), Vec::new())
        });
        self.round += 1;
        self.record_host(&host);
        self.record_namespaces(&present, &namespaces);
        if let Some(c) = &mut self.cluster {
            self.kube_status = Some(c.status().await);
            let unhealthy = self.namespaces.summary().unhealthy;
            c.update_node_condition(&self.health, unhealthy).await;
        }
        self.discovered = discovered;
        if let Some(m) = &self.metrics {
            m.round_done(started.elapsed());
        }
        Ok(Round { host, namespaces })
    }

    async fn host_probes(&self, d: Option<&Discovered>) -> Result<Vec<ProbeReport>, AgentError> {
        match (&self.cluster, d) {
            (Some(c), Some(d)) if c.probes_elsewhere() => Ok(c.probe(&self.specs, d).await?),
            _ => {
                let prober = Prober::new();
                let deadline = prober.deadline_for(&self.specs);
                Ok(prober.probe_many(&self.specs, deadline).await)
            }
        }
    }

    /// This round's share of the pod namespaces, swept; and the namespaces present.
    async fn sweep_share(&self, all: bool) -> Result<(Vec<Namespace>, Vec<NsReport>), NetnsError> {
        let Some(cfg) = &self.cfg.sweep else {
            return Ok((Vec::new(), Vec::new()));
        };
        let c = cfg.clone();
        let (_, present) = tokio::task::spawn_blocking(move || hc_netns::discover(&c))
            .await
            .map_err(|e| NetnsError::Task {
                what: "the namespace scan",
                detail: e.to_string(),
            })??;
        let per_round = if all {
            present.len()
        } else {
            self.cfg.per_round
        };
        let share = self.namespaces.share(&present, per_round);
        Ok((present, hc_netns::check(cfg, None, share).await))
    }

    fn record_host(&mut self, reports: &[ProbeReport]) {
        for r in reports {
            if let Some(m) = &self.metrics {
                m.observe_report(r, Source::Host);
            }
            match self
                .health
                .record(r)
                .map(|t| (t.state, t.consecutive_failures))
            {
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
        // A UDP failure next to a working TCP path is the case the HTTP liveness probe misses:
        // say it when it starts.
        let blocked: Vec<SocketAddr> = self
            .specs
            .iter()
            .map(|s| s.target)
            .filter(|t| self.health.verdict(*t) == TransportVerdict::UdpBlocked)
            .collect();
        for t in blocked.iter().filter(|t| !self.udp_blocked.contains(t)) {
            warn!(target = %t, finding = "udp-blocked", "UDP to the target fails while TCP works");
        }
        self.udp_blocked = blocked;
    }

    fn record_namespaces(&mut self, present: &[Namespace], swept: &[NsReport]) {
        for p in swept.iter().flat_map(|r| &r.probes) {
            if let Some(m) = &self.metrics {
                m.observe_report(p, Source::Pod);
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

    /// The `/status` document of the last round.
    pub fn status(&self, duration: Duration) -> Status {
        let mut s = Status::new(self.round, duration, &self.health, &self.namespaces);
        if let (Some(c), Some(d)) = (&self.cluster, &self.discovered) {
            c.annotate(d, &mut s.targets);
            s.node = c.node().map(str::to_owned);
        }
        s.kubernetes = self.kube_status.clone();
        s
    }
}
