//! Kubernetes mode of `hc-cli run`: discovered targets, leader election, and the remediation
//! step after each round. Composition of `remedy` with the agent's probe results.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use dnsprobe::hickory_proto::rr::Name;
use dnsprobe::{HealthBook, HealthState, JsonReport, ProbeReport, Transport, TransportMode};
use hc_exporter::{KubernetesStatus, Metrics, PlannedAction};
use hc_remedy::{
    Action, ActionKind, ClusterSource, Discovered, Discovery, DiscoveryConfig, Done, Elector,
    Executor, History, LeaseConfig, Mode, Observations, Outcome, PodObservation, Policy,
};
use tracing::{info, warn};

use crate::cli::{KubeArgs, RemediationMode};
use crate::exit::{self, Context as _};

/// `--node-condition`: the client, the node, and the (status, reason) last set.
type NodeCondition = (hc_remedy::Client, String, Option<(bool, String)>);

/// The Kubernetes side of the agent.
pub(crate) struct Cluster {
    via: crate::cli::Via,
    client: hc_remedy::Client,
    namespace: String,
    /// `--node-condition`: the client, the node, and the condition last set.
    node_condition: Option<NodeCondition>,
    /// `--via probe-pod`: the client and the pod's settings.
    probe_pod: Option<(hc_remedy::Client, hc_remedy::ProbePodConfig)>,
    discovery: Discovery,
    executor: Executor,
    elector: Option<Elector>,
    mode: Mode,
    policy: Policy,
    identity: String,
    /// `kubernetes.default.svc.<cluster-domain>.`
    pub(crate) query_name: Name,
    port_override: Option<u16>,
    history: History,
    pod_failures: HashMap<IpAddr, u32>,
    pod_answering: HashMap<IpAddr, bool>,
    restarts_seen: HashMap<String, u32>,
    api_error: Option<String>,
    last_reports: Vec<&'static str>,
    last_plan: Vec<PlannedAction>,
    last_recheck: Option<std::time::Instant>,
}

fn identity(args: &KubeArgs) -> String {
    args.identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok().filter(|v| !v.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "hc-cli".to_owned())
}

impl Cluster {
    /// Connects, starts the watches (waiting up to 10 s for their first LIST) and, unless
    /// remediation is off or this is `--once`, the Lease election.
    pub(crate) async fn start(
        kube: &KubeArgs,
        source: &ClusterSource,
        once: bool,
        failure_threshold: u32,
    ) -> exit::Result<Cluster> {
        let args = kube;
        let query_name = dnsprobe::parse_name(&format!(
            "kubernetes.default.svc.{}",
            args.cluster_domain.trim_matches('.')
        ))
        .context("--cluster-domain does not make a valid name")
        .usage()?;
        let client = hc_remedy::connect(source).await.usage()?;
        let client_for_pods = client.clone();
        let cfg = DiscoveryConfig {
            namespace: args.namespace.clone(),
            service: args.service.clone(),
            selector: args.selector.clone(),
        };
        let discovery = Discovery::start(client.clone(), &cfg);
        if !discovery.wait_ready(Duration::from_secs(10)).await {
            let why = discovery
                .health()
                .last_error
                .unwrap_or_else(|| "no answer".into());
            warn!(error = %why, "Kubernetes watches not synced after 10s: starting with the static targets");
        }
        let mode = match args.remediation {
            RemediationMode::Off => Mode::Off,
            RemediationMode::DryRun => Mode::DryRun,
            RemediationMode::On => Mode::On,
        };
        let identity = identity(args);
        let elector = (mode != Mode::Off && !once).then(|| {
            Elector::spawn(
                client.clone(),
                LeaseConfig::new(&args.namespace, &args.lease_name, &identity),
            )
        });
        let executor = Executor::new(client, &args.namespace, mode, &identity, args.delete_pods);
        let policy = Policy {
            fail_rounds: failure_threshold,
            memory_factor: args.memory_factor,
            memory_cap: args.max_memory,
            rollout_restart: args.rollout_restart,
            grace_period: args.grace_period,
            cooldown: args.cooldown,
            max_actions_per_hour: args.max_actions_per_hour as usize,
            ..Policy::default()
        };
        info!(source = ?source, namespace = %args.namespace, service = %args.service,
            remediation = mode.as_str(), identity = %identity, "Kubernetes mode");
        let probe_pod = (args.via == crate::cli::Via::ProbePod).then(|| {
            (
                client_for_pods.clone(),
                hc_remedy::ProbePodConfig {
                    namespace: args.namespace.clone(),
                    image: args.probe_image.clone(),
                    timeout: args.probe_pod_timeout,
                },
            )
        });
        let node_condition = if args.node_condition {
            let node = args
                .node_name
                .clone()
                .or_else(|| std::env::var("NODE_NAME").ok().filter(|v| !v.is_empty()))
                .context("--node-condition needs the node's name: --node-name or NODE_NAME (the downward API)")
                .usage()?;
            Some((client_for_pods.clone(), node, None))
        } else {
            None
        };
        Ok(Cluster {
            via: args.via,
            client: client_for_pods.clone(),
            namespace: args.namespace.clone(),
            node_condition,
            probe_pod,
            discovery,
            executor,
            elector,
            mode,
            policy,
            identity,
            query_name,
            port_override: args.dns_port,
            history: History::default(),
            pod_failures: HashMap::new(),
            pod_answering: HashMap::new(),
            restarts_seen: HashMap::new(),
            api_error: None,
            last_reports: Vec::new(),
            last_plan: Vec::new(),
            last_recheck: None,
        })
    }

    /// What the watches know now.
    pub(crate) fn snapshot(&self) -> Discovered {
        self.discovery.snapshot()
    }

    /// The discovered targets: the Service's ClusterIPs and every CoreDNS endpoint not
    /// terminating (only the pods, over TCP, through a port-forward).
    pub(crate) fn targets(&self, d: &Discovered) -> Vec<(SocketAddr, TransportMode)> {
        let found = if self.via == crate::cli::Via::PortForward {
            d.pod_tcp_targets(self.port_override)
        } else {
            d.targets(self.port_override)
        };
        found
            .into_iter()
            .map(|t| {
                let mode = match t.only {
                    None => TransportMode::Both,
                    Some(Transport::Udp) => TransportMode::Udp,
                    Some(Transport::Tcp) => TransportMode::Tcp,
                };
                (t.addr, mode)
            })
            .collect()
    }

    /// Records this round's probes of the pods, exports the pods' metrics, and (on the Lease
    /// holder) plans and carries out remediation.
    pub(crate) async fn after_round(
        &mut self,
        d: &Discovered,
        reports: &[ProbeReport],
        metrics: Option<&Metrics>,
    ) -> KubernetesStatus {
        if self.api_error.is_some()
            && self
                .last_recheck
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            self.last_recheck = Some(std::time::Instant::now());
            self.discovery.recheck().await;
        }
        let health = self.discovery.health();
        if health.last_error != self.api_error {
            match &health.last_error {
                Some(e) => {
                    warn!(error = %e, "Kubernetes API unreachable: probing goes on with the last known targets; remediation paused")
                }
                None => info!("Kubernetes API reachable again"),
            }
            self.api_error = health.last_error.clone();
        }

        // Per pod: a round fails when any probe of its address failed.
        let mut by_ip: BTreeMap<IpAddr, bool> = BTreeMap::new();
        for r in reports {
            let ok = by_ip.entry(r.target.ip()).or_insert(true);
            *ok &= r.healthy();
        }
        for e in &d.endpoints {
            if let Some(ok) = by_ip.get(&e.ip) {
                let f = self.pod_failures.entry(e.ip).or_insert(0);
                *f = if *ok { 0 } else { f.saturating_add(1) };
                self.pod_answering.insert(e.ip, *ok);
            }
        }
        self.pod_failures
            .retain(|ip, _| d.endpoints.iter().any(|e| e.ip == *ip));

        // Restarts and OOM kills seen while running; the memory limit per Deployment.
        let mut limits: BTreeMap<String, u64> = BTreeMap::new();
        for p in &d.pods {
            if let Some(seen) = self.restarts_seen.insert(p.name.clone(), p.restarts)
                && p.restarts > seen
                && let Some(m) = metrics
            {
                let oom = u64::from(p.last_termination.as_deref() == Some("OOMKilled"));
                m.pod_restarts(u64::from(p.restarts - seen), oom);
            }
            if let (Some(dep), Some(l)) = (&p.deployment, p.memory_limit) {
                let e = limits.entry(dep.clone()).or_insert(0);
                *e = (*e).max(l);
            }
        }
        self.restarts_seen
            .retain(|name, _| d.pods.iter().any(|p| &p.name == name));
        let leader = self.elector.as_ref().is_some_and(Elector::is_leader);
        if let Some(m) = metrics {
            for (dep, l) in &limits {
                m.set_memory_limit(dep, *l);
            }
            m.set_leader(leader);
        }

        let mut status = KubernetesStatus {
            api_reachable: self.api_error.is_none(),
            last_error: self.api_error.clone(),
            leader,
            identity: self.identity.clone(),
            remediation: self.mode.as_str().to_owned(),
            last_plan: Vec::new(),
        };
        if self.mode == Mode::Off || !leader {
            return status;
        }
        if self.api_error.is_some() {
            status.last_plan = vec![PlannedAction {
                action: "report".into(),
                result: "reported".into(),
                description: "api-unreachable: remediation paused until the Kubernetes API answers"
                    .into(),
            }];
            self.last_plan = status.last_plan.clone();
            return status;
        }
        let now = SystemTime::now();
        let pods: Vec<PodObservation> = d
            .pods
            .iter()
            .filter(|p| p.ip.is_some_and(|ip| self.pod_failures.contains_key(&ip)))
            .map(|p| {
                let ip = p.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
                PodObservation {
                    name: p.name.clone(),
                    ip: p.ip,
                    node: p.node.clone(),
                    age: p.started.map(|s| now.duration_since(s).unwrap_or_default()),
                    terminating: p.terminating,
                    ready: p.ready,
                    restarts: p.restarts,
                    last_termination: p.last_termination.clone(),
                    memory_limit: p.memory_limit,
                    deployment: p.deployment.clone(),
                    consecutive_failures: self.pod_failures.get(&ip).copied().unwrap_or(0),
                    answering: self.pod_answering.get(&ip).copied().unwrap_or(false),
                }
            })
            .collect();
        let deployment = match d
            .pods
            .iter()
            .find_map(|p| Some((p.deployment.clone()?, p.container.clone()?)))
        {
            Some((dep, container)) => self.executor.observe_deployment(&dep, &container).await,
            None => None,
        };
        let actions = hc_remedy::plan(
            &Observations { pods, deployment },
            &self.history,
            &self.policy,
            now,
        );

        let codes: Vec<&'static str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Report { code, .. } => Some(*code),
                _ => None,
            })
            .collect();
        let reports_changed = codes != self.last_reports;
        for a in &actions {
            let outcome = self.executor.execute(a).await;
            let kind = a.kind();
            if kind == ActionKind::Report {
                if reports_changed {
                    info!(plan = %a.describe(), remediation = self.mode.as_str(), "remediation report");
                    if let Some(m) = metrics {
                        m.remediation(kind.as_str(), outcome.label());
                    }
                }
            } else {
                match &outcome {
                    Outcome::Success | Outcome::DryRun => {
                        warn!(action = kind.as_str(), result = outcome.label(), plan = %a.describe(), "remediation")
                    }
                    other => {
                        warn!(action = kind.as_str(), result = other.label(), plan = %a.describe(), detail = ?other, "remediation not carried out")
                    }
                }
                if let Some(m) = metrics {
                    m.remediation(kind.as_str(), outcome.label());
                }
                if matches!(outcome, Outcome::Success | Outcome::DryRun) {
                    let pod = match a {
                        Action::Evict { pod, .. } => Some(pod.clone()),
                        _ => None,
                    };
                    self.history.done.push(Done { at: now, kind, pod });
                    if let Action::RaiseMemory { deployment, to, .. } = a {
                        self.history.memory_set = Some((deployment.clone(), *to));
                    }
                }
            }
            status.last_plan.push(PlannedAction {
                action: kind.as_str().to_owned(),
                result: outcome.label().to_owned(),
                description: a.describe(),
            });
        }
        self.last_reports = codes;
        // Keep a day of history at most.
        self.history
            .done
            .retain(|x| now.duration_since(x.at).unwrap_or_default() < Duration::from_secs(86_400));
        self.last_plan = status.last_plan.clone();
        status
    }

    /// With `--node-condition`, sets `ClusterDNSReachable` on this Node when the verdict changes:
    /// False while any target is down (reason `UDPBlocked` when only UDP is), or while pod
    /// namespaces cannot resolve.
    pub(crate) async fn update_node_condition(
        &mut self,
        health: &HealthBook,
        unhealthy_netns: usize,
    ) {
        let Some((client, node, last)) = &mut self.node_condition else {
            return;
        };
        let down: Vec<(SocketAddr, Transport)> = health
            .entries()
            .iter()
            .filter(|e| e.health.state == HealthState::Down)
            .map(|e| (e.target, e.transport))
            .collect();
        let (ok, reason, message) = if !down.is_empty() {
            let udp_only = down
                .iter()
                .all(|(t, _)| health.verdict(*t) == dnsprobe::TransportVerdict::UdpBlocked);
            let list: Vec<String> = down
                .iter()
                .map(|(t, tr)| format!("{t} over {tr}"))
                .collect();
            (
                false,
                if udp_only {
                    "UDPBlocked"
                } else {
                    "DNSUnreachable"
                },
                format!("cluster DNS fails from this node: {}", list.join(", ")),
            )
        } else if unhealthy_netns > 0 {
            (
                false,
                "PodNamespacesCannotResolve",
                format!("{unhealthy_netns} pod network namespaces on this node cannot resolve"),
            )
        } else {
            (
                true,
                "DNSReachable",
                "every cluster DNS target answers over UDP and TCP".to_owned(),
            )
        };
        if last.as_ref().is_some_and(|(o, r)| *o == ok && r == reason) {
            return;
        }
        match hc_remedy::set_node_condition(client.clone(), node, ok, reason, &message).await {
            Ok(()) => {
                info!(node = %node, condition = hc_remedy::NODE_CONDITION, status = ok, reason, "node condition set");
                *last = Some((ok, reason.to_owned()));
            }
            Err(e) => warn!(node = %node, error = %e, "cannot set the node condition"),
        }
    }

    /// True with `--via port-forward` or `--via probe-pod`.
    pub(crate) fn probes_elsewhere(&self) -> bool {
        self.via != crate::cli::Via::Direct
    }

    /// Probes through a port-forward or a probe pod.
    pub(crate) async fn probe_elsewhere(
        &self,
        specs: &[dnsprobe::ProbeSpec],
        d: &Discovered,
    ) -> exit::Result<Vec<ProbeReport>> {
        if self.via == crate::cli::Via::PortForward {
            return Ok(self.probe_via_port_forward(specs, d).await);
        }
        self.probe_via_pod(specs).await.map_err(|e| {
            // RBAC is configuration (2); a pod that cannot start is a run-time failure (3).
            match e.downcast_ref::<hc_remedy::ProbePodError>() {
                Some(hc_remedy::ProbePodError::Forbidden { .. }) => exit::usage(e),
                _ => exit::runtime(e),
            }
        })
    }

    /// Probes each pod target over TCP through a port-forward (targets that are not a known
    /// pod's address are probed directly), all at once.
    async fn probe_via_port_forward(
        &self,
        specs: &[dnsprobe::ProbeSpec],
        d: &Discovered,
    ) -> Vec<ProbeReport> {
        let jobs = specs.iter().map(|spec| async move {
            let pod = d
                .endpoints
                .iter()
                .find(|e| e.ip == spec.target.ip())
                .and_then(|e| e.pod.clone());
            let Some(pod) = pod else {
                return dnsprobe::probe(spec).await;
            };
            match hc_remedy::port_forward(
                self.client.clone(),
                &self.namespace,
                &pod,
                spec.target.port(),
            )
            .await
            {
                Ok(pf) => vec![dnsprobe::probe_over_stream(spec, pf.stream).await],
                Err(e) => vec![ProbeReport::failed(
                    spec,
                    Transport::Tcp,
                    dnsprobe::Failure::Io {
                        detail: format!("port-forward to pod {pod}: {e}"),
                    },
                )],
            }
        });
        futures_util::future::join_all(jobs)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Probes `specs` from a short-lived pod in the cluster: one pod per group of specs with the
    /// same transports, its `hc-cli probe --json` output read back as reports.
    async fn probe_via_pod(
        &self,
        specs: &[dnsprobe::ProbeSpec],
    ) -> anyhow::Result<Vec<ProbeReport>> {
        let Some((client, cfg)) = &self.probe_pod else {
            anyhow::bail!("internal: no probe pod configured")
        };
        let mut out = Vec::new();
        for mode in [TransportMode::Both, TransportMode::Udp, TransportMode::Tcp] {
            let group: Vec<&dnsprobe::ProbeSpec> =
                specs.iter().filter(|s| s.transport == mode).collect();
            let Some(first) = group.first() else { continue };
            let mut args: Vec<String> = vec!["probe".into(), "--json".into()];
            match mode {
                TransportMode::Both => args.push("--both".into()),
                TransportMode::Tcp => args.push("--tcp".into()),
                TransportMode::Udp => {}
            }
            args.extend(["--name".into(), first.name.to_ascii()]);
            args.extend([
                "--timeout".into(),
                humantime::format_duration(first.timeout).to_string(),
            ]);
            args.extend(["--attempts".into(), first.attempts.to_string()]);
            if let dnsprobe::AnswerExpectation::Contains(ips) = &first.expect.answer {
                for ip in ips {
                    args.extend(["--expect".into(), ip.to_string()]);
                }
            }
            for s in &group {
                args.extend(["--ip".into(), s.target.to_string()]);
            }
            let logs = hc_remedy::run_probe_pod(client.clone(), cfg, &args).await?;
            let parsed: Vec<JsonReport> = serde_json::from_str(logs.trim()).with_context(|| {
                format!(
                    "the probe pod's output is not the JSON of `hc-cli probe --json`: {}",
                    logs.chars().take(200).collect::<String>()
                )
            })?;
            for v in parsed {
                let spec = group
                    .iter()
                    .find(|s| s.target == v.target)
                    .copied()
                    .unwrap_or(first);
                out.push(v.into_report(spec)?);
            }
        }
        Ok(out)
    }

    /// Releases the Lease (on shutdown).
    pub(crate) async fn shutdown(&self) {
        if let Some(e) = &self.elector {
            e.release().await;
        }
    }
}
