//! The controller: decide in one place, by quorum. Each round it reads a sample of agents'
//! `/status`, folds them into the node x CoreDNS-pod [`View`], classifies where cluster DNS
//! breaks ([`classify`]), and — on the Lease holder, with remediation on — carries out at most
//! one action the [`plan`] allows, after re-proving its leadership with a write of the Lease.
//!
//! Remediation pauses while any watch is stale: acting on a stale list of pods is how a healthy
//! pod gets evicted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use hc_exporter::{
    AgentsView, ControllerMetrics, ControllerStatus, PlannedAction, PodView, ServiceView,
    VerdictView, WatchStatus,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};
use tracing::{info, warn};

use crate::agents::{AgentRef, Coverage, Sampler, agents_of, read_all};
use crate::classify::{Quorum, Verdict, classify};
use crate::discovery::{PodInfo, pod_info};
use crate::execute::{Executor, Mode, Outcome};
use crate::freshness::{Freshness, FreshnessConfig};
use crate::health_http::{HttpChecks, HttpChecksConfig};
use crate::lease::{Elector, LeaseConfig};
use crate::plan::{Action, DeploymentInfo, Inputs, Policy, plan};
use crate::probing::ProbingPlan;
use crate::quantity::parse_quantity;
use crate::view::View;
use crate::watch::{RECHECK, Watched};

/// The controller's settings (flags of `hc-cli controller`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ControllerConfig {
    /// Namespace of CoreDNS and of the Lease (`kube-system`).
    pub namespace: String,
    /// Label selector of the CoreDNS pods and their Deployment (`k8s-app=kube-dns`).
    pub selector: String,
    /// Namespace of the agent pods.
    pub agent_namespace: String,
    /// Label selector of the agent pods.
    pub agent_selector: String,
    /// The agents' admin port.
    pub agent_port: u16,
    /// Agents read per round at most.
    pub sample: usize,
    /// Agents read at once at most.
    pub concurrency: usize,
    /// Time allowed to read one agent.
    pub read_timeout: Duration,
    /// The share of reporting nodes that must agree.
    pub quorum: f64,
    /// Nodes that must report on a pod, at least (all of them when the cluster has fewer).
    pub min_nodes: usize,
    /// How long a node's result counts.
    pub window: Duration,
    /// Consecutive rounds a pod verdict must hold before an eviction.
    pub confirm_rounds: u32,
    /// `off`, `dry-run` or `on`.
    pub mode: Mode,
    /// The planner's rules.
    pub policy: Policy,
    /// This replica (Lease holder identity, Event reporter).
    pub identity: String,
    /// The Lease's name.
    pub lease_name: String,
    /// Delete pods instead of evicting them.
    pub delete_pods: bool,
    /// The freshness check (how fast Service changes resolve); `follow` 0: off.
    pub freshness: FreshnessConfig,
    /// CoreDNS's own HTTP endpoints, read against the verdicts.
    pub http: HttpChecksConfig,
}

impl ControllerConfig {
    /// This replica's name when none is given: `$POD_NAME` (the downward API), else the
    /// hostname.
    pub fn default_identity() -> String {
        std::env::var("POD_NAME")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(crate::hostname)
            .unwrap_or_else(|| "coredns-healthcheck".to_owned())
    }

    /// The defaults of `hc-cli controller`, for replica `identity`.
    pub fn new(identity: &str) -> Self {
        ControllerConfig {
            namespace: "kube-system".into(),
            selector: "k8s-app=kube-dns".into(),
            agent_namespace: "kube-system".into(),
            agent_selector:
                "app.kubernetes.io/name=coredns-healthcheck,app.kubernetes.io/component=agent"
                    .into(),
            agent_port: 9890,
            sample: 100,
            concurrency: 8,
            read_timeout: Duration::from_secs(2),
            quorum: 0.6,
            min_nodes: 3,
            window: Duration::from_secs(120),
            confirm_rounds: 2,
            mode: Mode::DryRun,
            policy: Policy::default(),
            identity: identity.into(),
            lease_name: "coredns-healthcheck".into(),
            delete_pods: false,
            freshness: FreshnessConfig::default(),
            http: HttpChecksConfig::default(),
        }
    }
}

/// How many past actions `/status` shows.
const LAST_ACTIONS: usize = 10;
/// The freshness check's watch of every Service: its health is shown, but a stale one does not
/// pause remediation (it says nothing about CoreDNS's pods).
pub const SERVICES_WATCH: &str = "services";

/// A running controller.
pub struct Controller {
    cfg: ControllerConfig,
    pods: Watched<Pod>,
    deployments: Watched<Deployment>,
    agents: Watched<Pod>,
    elector: Elector,
    executor: Executor,
    view: View,
    sampler: Sampler,
    /// Pod UID -> consecutive rounds with a pod verdict.
    confirmations: BTreeMap<String, u32>,
    /// Nodes with a node verdict already announced by an Event.
    announced: BTreeSet<String>,
    /// Pod UID -> restarts seen.
    restarts: BTreeMap<String, u32>,
    verdicts_logged: BTreeSet<String>,
    reports_logged: BTreeSet<String>,
    last_actions: VecDeque<PlannedAction>,
    round: u64,
    client: Client,
    /// The probing plan last published, and when.
    plan: Option<(ProbingPlan, std::time::Instant)>,
    freshness: Option<Freshness>,
    http: HttpChecks,
    /// Pods with a health gap already logged.
    gaps_logged: BTreeSet<String>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Starts the watches (CoreDNS pods and Deployments, agent pods) and the Lease election, on
    /// the caller's runtime; waits up to `sync` for the watches' first lists.
    pub async fn start(client: Client, cfg: ControllerConfig, sync: Duration) -> Controller {
        let ns = &cfg.namespace;
        let by_labels = |l: &str| watcher::Config::default().labels(l);
        let c = Controller {
            pods: Watched::spawn(
                "coredns-pods",
                Api::namespaced(client.clone(), ns),
                by_labels(&cfg.selector),
            ),
            deployments: Watched::spawn(
                "coredns-deployments",
                Api::namespaced(client.clone(), ns),
                by_labels(&cfg.selector),
            ),
            agents: Watched::spawn(
                "agent-pods",
                Api::namespaced(client.clone(), &cfg.agent_namespace),
                by_labels(&cfg.agent_selector),
            ),
            elector: Elector::spawn(
                client.clone(),
                LeaseConfig::new(ns, &cfg.lease_name, &cfg.identity),
            ),
            executor: Executor::new(client.clone(), ns, cfg.mode, &cfg.identity, cfg.delete_pods),
            view: View::new(cfg.window),
            sampler: Sampler::default(),
            confirmations: BTreeMap::new(),
            announced: BTreeSet::new(),
            restarts: BTreeMap::new(),
            verdicts_logged: BTreeSet::new(),
            reports_logged: BTreeSet::new(),
            last_actions: VecDeque::new(),
            round: 0,
            plan: None,
            freshness: (cfg.freshness.follow > 0)
                .then(|| Freshness::spawn(client.clone(), cfg.freshness.clone())),
            http: HttpChecks::new(cfg.http.clone()),
            gaps_logged: BTreeSet::new(),
            client: client.clone(),
            cfg,
        };
        let synced = tokio::join!(
            c.pods.wait_synced(sync),
            c.deployments.wait_synced(sync),
            c.agents.wait_synced(sync)
        );
        if synced != (true, true, true) {
            warn!(watches = ?c.watch_status(), "Kubernetes watches not synced yet: remediation waits for them");
        }
        c
    }

    /// Each watch's health.
    fn watch_status(&self) -> Vec<WatchStatus> {
        [
            (self.pods.name(), self.pods.health()),
            (self.deployments.name(), self.deployments.health()),
            (self.agents.name(), self.agents.health()),
        ]
        .into_iter()
        .chain((self.freshness.as_ref()).map(|f| (SERVICES_WATCH, f.health())))
        .map(|(name, h)| WatchStatus {
            name: name.into(),
            healthy: h.healthy(),
            last_error: h
                .last_error
                .or_else(|| (!h.synced).then(|| "not synced yet".into())),
        })
        .collect()
    }

    /// One round: read, classify, decide, maybe act. Returns the `/status` document.
    pub async fn round(&mut self, metrics: Option<&ControllerMetrics>) -> ControllerStatus {
        self.round += 1;
        self.pods.recheck(RECHECK).await;
        self.deployments.recheck(RECHECK).await;
        self.agents.recheck(RECHECK).await;
        let agents = agents_of(&self.agents.state(), self.cfg.agent_port);
        let pods: Vec<PodInfo> = self.pods.state().iter().map(|p| pod_info(p)).collect();
        // What the agents sample from: the pods behind the Service's endpoints.
        let serving: Vec<&str> = (pods.iter())
            .filter(|p| p.ready && !p.terminating && p.ip.is_some())
            .map(|p| p.uid.as_str())
            .collect();
        let probing = ProbingPlan::new(agents.len(), serving.len(), self.cfg.window / 2);
        let coverage = Coverage {
            plan: &probing,
            pods: &serving,
            view: &self.view,
            need: self.cfg.min_nodes,
        };
        let now = SystemTime::now();
        let sample = (self.sampler).pick(&agents, self.cfg.sample, Some(coverage), now);
        let sampled = sample.len();
        let reading = read_all(sample, self.cfg.concurrency, self.cfg.read_timeout);
        let (results, ()) = tokio::join!(reading, self.http.check(&pods, self.cfg.window));
        let now = SystemTime::now();
        let failed = self.observe(results, now, metrics);
        let live: BTreeSet<String> = pods.iter().map(|p| p.uid.clone()).collect();
        self.view.prune(now, &live);
        let quorum = Quorum {
            share: self.cfg.quorum,
            min_nodes: self.cfg.min_nodes,
            agents: agents.len(),
        };
        let verdicts = classify(&self.view, &quorum);
        self.log_verdicts(&verdicts);
        let actionable = self.confirm(&verdicts);
        self.count_restarts(&pods, metrics);
        let deployments = self.deployment_infos(metrics);
        let leader = self.elector.is_leader();
        if let Some(m) = metrics {
            m.set_leader(leader);
        }
        let gaps = self.health_gaps(&pods, &verdicts);
        if leader && self.agents.health().healthy() && self.pods.health().healthy() {
            self.publish_plan(probing).await;
        }
        let watches = self.watch_status();
        if self.cfg.mode != Mode::Off && leader {
            if let Some(stale) = (watches.iter()).find(|w| !w.healthy && w.name != SERVICES_WATCH) {
                let a = Action::Report {
                    code: "api-stale",
                    message: format!(
                        "watch {} is not healthy ({}): remediation paused",
                        stale.name,
                        stale.last_error.as_deref().unwrap_or("?")
                    ),
                };
                self.carry_out("api", &a, metrics).await;
            } else {
                let history = self.elector.history().await;
                let planned = plan(&Inputs {
                    verdicts: &actionable,
                    pods: &pods,
                    deployments: &deployments,
                    history: &history,
                    policy: &self.cfg.policy,
                    now,
                });
                self.act(planned, metrics).await;
            }
        }
        let agents_view = AgentsView {
            known: agents.len(),
            sampled,
            failed,
            reporting: self.view.nodes().len(),
        };
        let mut status = self.status(&pods, &verdicts, agents_view, watches, leader);
        status.health_gaps = gaps;
        status.freshness = self.freshness(leader, &pods, metrics);
        if let Some(m) = metrics {
            m.set_view(&status);
            for w in &status.watches {
                m.set_watch(&w.name, w.healthy);
            }
        }
        status
    }

    /// Folds the agents' documents into the view; returns how many could not be read.
    fn observe(
        &mut self,
        results: Vec<(
            AgentRef,
            Result<hc_exporter::Status, crate::agents::ReadError>,
        )>,
        now: SystemTime,
        metrics: Option<&ControllerMetrics>,
    ) -> usize {
        let mut failed = 0;
        for (agent, r) in results {
            if let Some(m) = metrics {
                m.agent_read(r.is_ok());
            }
            match r {
                Ok(status) => self.view.observe(&status, &agent.node, now),
                Err(e) => {
                    failed += 1;
                    tracing::debug!(node = %agent.node, agent = %agent.addr, error = %e, "cannot read the agent");
                }
            }
        }
        failed
    }

    /// The CoreDNS pods whose HTTP endpoints say healthy while the verdicts say DNS fails from
    /// the nodes; each logged once when it appears.
    fn health_gaps(
        &mut self,
        pods: &[PodInfo],
        verdicts: &[Verdict],
    ) -> Vec<hc_exporter::HealthGap> {
        let gaps = self.http.gaps(pods, verdicts, &self.view);
        for g in &gaps {
            if !self.gaps_logged.contains(&g.pod) {
                warn!(pod = %g.pod, finding = "http-healthy-dns-failing", "{}", g.message);
            }
        }
        self.gaps_logged = gaps.iter().map(|g| g.pod.clone()).collect();
        gaps
    }

    /// Follows Service changes on the Lease holder only; counts what ended since the last
    /// round; the view for `/status` (the holder's only).
    fn freshness(
        &self,
        leader: bool,
        pods: &[PodInfo],
        metrics: Option<&ControllerMetrics>,
    ) -> Option<hc_exporter::FreshnessView> {
        let f = self.freshness.as_ref()?;
        f.set_active(leader);
        f.set_pods(
            (pods.iter())
                .filter(|p| !p.terminating)
                .filter_map(|p| Some((p.name.clone(), p.ip?)))
                .collect(),
        );
        let (done, skipped, view) = f.take();
        if let Some(m) = metrics {
            use crate::freshness::Outcome;
            for c in &done {
                match c.outcome {
                    Outcome::Resolved(d) => m.propagation(c.change.as_str(), d.as_secs_f64()),
                    Outcome::Cleared => {}
                    o => m.freshness(c.change.as_str(), o.as_str()),
                }
            }
            for change in skipped {
                m.freshness(change.as_str(), "skipped");
            }
        }
        leader.then_some(view)
    }

    /// Pod verdicts count once they held for `confirm_rounds` rounds; the others at once.
    fn confirm(&mut self, verdicts: &[Verdict]) -> Vec<Verdict> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for v in verdicts {
            if let Verdict::Pod { uid, .. } = v {
                let n = self.confirmations.get(uid).copied().unwrap_or(0) + 1;
                seen.insert(uid.clone(), n);
                if n < self.cfg.confirm_rounds {
                    continue;
                }
            }
            out.push(v.clone());
        }
        self.confirmations = seen;
        out
    }

    fn log_verdicts(&mut self, verdicts: &[Verdict]) {
        let now: BTreeSet<String> = verdicts
            .iter()
            .map(|v| format!("{}:{}", v.kind(), v.subject()))
            .collect();
        for v in verdicts {
            if !self
                .verdicts_logged
                .contains(&format!("{}:{}", v.kind(), v.subject()))
            {
                warn!(verdict = v.kind(), subject = v.subject(), "{v}");
            }
        }
        for gone in self.verdicts_logged.difference(&now) {
            info!(verdict = %gone, "verdict cleared");
        }
        self.announced
            .retain(|n| now.contains(&format!("node:{n}")));
        self.verdicts_logged = now;
    }

    fn count_restarts(&mut self, pods: &[PodInfo], metrics: Option<&ControllerMetrics>) {
        for p in pods {
            if let Some(seen) = self.restarts.insert(p.uid.clone(), p.restarts)
                && p.restarts > seen
                && let Some(m) = metrics
            {
                let oom = u64::from(p.last_termination.as_deref() == Some("OOMKilled"));
                m.pod_restarts(u64::from(p.restarts - seen), oom);
            }
        }
        self.restarts
            .retain(|uid, _| pods.iter().any(|p| &p.uid == uid));
    }

    fn deployment_infos(&self, metrics: Option<&ControllerMetrics>) -> Vec<DeploymentInfo> {
        let out: Vec<DeploymentInfo> = self
            .deployments
            .state()
            .iter()
            .map(|d| deployment_info(d))
            .collect();
        if let Some(m) = metrics {
            for d in &out {
                if let Some(l) = d.memory_limit {
                    m.set_memory_limit(&d.name, l);
                }
            }
        }
        out
    }

    async fn act(
        &mut self,
        planned: Vec<(&'static str, Action)>,
        metrics: Option<&ControllerMetrics>,
    ) {
        let reports: BTreeSet<String> = planned
            .iter()
            .filter(|(_, a)| a.kind() == crate::plan::ActionKind::Report)
            .map(|(_, a)| a.describe())
            .collect();
        for (verdict, action) in &planned {
            if let Action::NodeEvent { node, .. } = action
                && self.announced.contains(node)
            {
                continue;
            }
            if action.kind() == crate::plan::ActionKind::Report
                && self.reports_logged.contains(&action.describe())
            {
                continue;
            }
            self.carry_out(verdict, action, metrics).await;
        }
        self.reports_logged = reports;
    }

    /// Carries out one action: a disruptive one only after committing it to the Lease (which
    /// proves we still lead); dry-run changes and records nothing.
    async fn carry_out(
        &mut self,
        verdict: &'static str,
        action: &Action,
        metrics: Option<&ControllerMetrics>,
    ) {
        let now = SystemTime::now();
        let outcome = if action.kind() == crate::plan::ActionKind::Report {
            info!(plan = %action.describe(), remediation = self.cfg.mode.as_str(), "remediation report");
            Outcome::Reported
        } else if self.cfg.mode != Mode::On {
            Outcome::DryRun
        } else {
            match self.elector.commit(|h| h.record(action, now)).await {
                Err(e) => Outcome::Refused(e.to_string()),
                Ok(()) => {
                    let o = self.executor.execute(action).await;
                    if !matches!(o, Outcome::Success) {
                        let _ = self.elector.commit(|h| h.forget(action)).await;
                    }
                    o
                }
            }
        };
        if let Action::NodeEvent { node, .. } = action
            && matches!(outcome, Outcome::Success | Outcome::DryRun)
        {
            self.announced.insert(node.clone());
        }
        if action.kind() != crate::plan::ActionKind::Report {
            warn!(action = action.kind().as_str(), result = outcome.label(), plan = %action.describe(), detail = ?outcome, "remediation");
        }
        if let Some(m) = metrics {
            let result = if outcome == Outcome::Reported {
                "reported"
            } else {
                outcome.label()
            };
            m.decision(verdict, action.kind().as_str(), result);
        }
        self.last_actions.push_back(PlannedAction {
            action: action.kind().as_str().to_owned(),
            result: outcome.label().to_owned(),
            description: action.describe(),
        });
        while self.last_actions.len() > LAST_ACTIONS {
            self.last_actions.pop_front();
        }
    }

    fn status(
        &self,
        pods: &[PodInfo],
        verdicts: &[Verdict],
        agents: AgentsView,
        watches: Vec<WatchStatus>,
        leader: bool,
    ) -> ControllerStatus {
        let pods = pods
            .iter()
            .map(|p| {
                let (udp, tcp) = self.view.pod_reach(&p.uid);
                PodView {
                    name: p.name.clone(),
                    uid: p.uid.clone(),
                    ip: p.ip.map(|i| i.to_string()),
                    node: p.node.clone(),
                    udp,
                    tcp,
                    nodes_reporting: self.view.nodes_of(&p.uid).len(),
                    http: self.http.of(&p.uid).cloned(),
                }
            })
            .collect();
        let (udp, tcp) = self.view.service_reach();
        ControllerStatus {
            round: self.round,
            finished_unix_ms: hc_exporter::unix_ms(SystemTime::now()),
            identity: self.cfg.identity.clone(),
            leader,
            remediation: self.cfg.mode.as_str().into(),
            window_seconds: self.cfg.window.as_secs(),
            watches,
            agents,
            service: ServiceView { udp, tcp },
            pods,
            nodes_failing: verdicts
                .iter()
                .filter_map(|v| match v {
                    Verdict::Node { node, .. } => Some(node.clone()),
                    _ => None,
                })
                .collect(),
            verdicts: verdicts
                .iter()
                .map(|v| VerdictView {
                    kind: v.kind().into(),
                    subject: v.subject().into(),
                    message: v.to_string(),
                })
                .collect(),
            last_actions: self.last_actions.iter().cloned().collect(),
            health_gaps: Vec::new(),
            freshness: None,
        }
    }

    /// Publishes the probing plan when it changed (or was never published): at most once a
    /// minute after the first, a write now and then that every agent's watch reads.
    async fn publish_plan(&mut self, plan: ProbingPlan) {
        let due = self.plan.is_none_or(|(p, at)| {
            (p.pods_per_epoch, p.epoch) != (plan.pods_per_epoch, plan.epoch)
                && at.elapsed() >= Duration::from_secs(60)
        });
        if !due || plan.nodes == 0 {
            return;
        }
        if self.elector.commit(|_| {}).await.is_err() {
            return;
        }
        match crate::client::write_plan(&self.client, &self.cfg.namespace, &plan).await {
            Ok(()) => {
                info!(
                    nodes = plan.nodes,
                    pods_per_epoch = plan.pods_per_epoch,
                    epoch_ms = plan.epoch.as_millis() as u64,
                    configmap = crate::PLAN_CONFIGMAP,
                    "probing plan published"
                );
                self.plan = Some((plan, std::time::Instant::now()));
            }
            Err(e) => {
                warn!(error = %e, configmap = crate::PLAN_CONFIGMAP, "cannot publish the probing plan")
            }
        }
    }

    /// Releases the Lease (on shutdown).
    pub async fn shutdown(&self) {
        self.elector.release().await;
    }
}

/// The parts of a Deployment the planner needs.
pub fn deployment_info(d: &Deployment) -> DeploymentInfo {
    let spec = d.spec.clone().unwrap_or_default();
    let container = spec
        .template
        .spec
        .and_then(|s| s.containers.into_iter().next());
    let res = container
        .as_ref()
        .and_then(|c| c.resources.clone())
        .unwrap_or_default();
    let mem = |m: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >| {
        m.and_then(|m| m.get("memory"))
            .and_then(|q| parse_quantity(&q.0))
    };
    DeploymentInfo {
        name: d.metadata.name.clone().unwrap_or_default(),
        container: container.map(|c| c.name).unwrap_or_default(),
        desired: spec.replicas.unwrap_or(1).max(0) as u32,
        available: d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
            .max(0) as u32,
        memory_limit: mem(res.limits.as_ref()),
        memory_request: mem(res.requests.as_ref()),
        addon_managed: d
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("addonmanager.kubernetes.io/mode"))
            .is_some_and(|m| m == "Reconcile"),
    }
}
