//! The agent's side of Kubernetes, composed: read-only discovery of its targets, their roles in
//! `/status`, probing through a probe pod or a port-forward, and the node's own condition. No
//! Lease, no eviction, no patch of CoreDNS: deciding is the [`crate::Controller`]'s.

use std::net::SocketAddr;
use std::time::Duration;

use dnsprobe::hickory_proto::rr::Name;
use dnsprobe::{HealthBook, ProbeReport, ProbeSpec, Transport, TransportMode};
use hc_exporter::{KubernetesStatus, TargetStatus, WatchStatus};
use kube::Client;
use tracing::{info, warn};

use crate::discovery::{Discovered, Discovery, DiscoveryConfig};
use crate::probe_pod::{ProbePodConfig, ProbePodError, probe_via_pod, probe_via_port_forward};

/// How the agent reaches its targets (`--via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Via {
    /// Probe the targets as addressed from this machine.
    Direct,
    /// A short-lived pod in the cluster probes them and reports back through its logs.
    ProbePod,
    /// Each CoreDNS pod over DNS-over-TCP through the API server's port-forward (TCP only).
    PortForward,
}

impl Via {
    /// `direct`, `probe-pod`, `port-forward`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::ProbePod => "probe-pod",
            Via::PortForward => "port-forward",
        }
    }

    /// What the results of this way cannot say: through a port-forward, UDP was not checked.
    pub fn caveat(self) -> Option<&'static str> {
        (self == Via::PortForward).then_some(
            "through a port-forward only TCP can be checked: UDP, what pods use, was not probed",
        )
    }
}

/// The agent's Kubernetes settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentClusterConfig {
    /// What to watch.
    pub discovery: DiscoveryConfig,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// A DNS port replacing the discovered ones.
    pub dns_port: Option<u16>,
    /// How to reach the targets.
    pub via: Via,
    /// The probe pod, for [`Via::ProbePod`].
    pub probe_pod: ProbePodConfig,
    /// This node's name.
    pub node: Option<String>,
    /// Set the node's `ClusterDNSReachable` condition.
    pub node_condition: bool,
}

impl AgentClusterConfig {
    /// Direct probing of `discovery`'s targets in `cluster.local`, no node condition.
    pub fn new(discovery: DiscoveryConfig) -> Self {
        AgentClusterConfig {
            probe_pod: ProbePodConfig {
                namespace: discovery.namespace.clone(),
                image: "ghcr.io/coredns-healthcheck/hc-cli:0.1.0".into(),
                timeout: Duration::from_secs(60),
            },
            discovery,
            cluster_domain: "cluster.local".into(),
            dns_port: None,
            via: Via::Direct,
            node: None,
            node_condition: false,
        }
    }
}

/// Why the agent's Kubernetes side cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentClusterError {
    /// The cluster domain does not make a valid name.
    #[error("--cluster-domain {domain:?} does not make a valid name: {reason}")]
    Domain {
        /// What was given.
        domain: String,
        /// Why it is not valid.
        reason: String,
    },
    /// The node condition needs the node's name.
    #[error("--node-condition needs the node's name: --node-name or NODE_NAME (the downward API)")]
    NoNodeName,
}

/// The agent's Kubernetes side, running.
pub struct AgentCluster {
    cfg: AgentClusterConfig,
    client: Client,
    discovery: Discovery,
    query_name: Name,
    last_condition: Option<(bool, &'static str)>,
    api_error: Option<String>,
}

impl std::fmt::Debug for AgentCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCluster")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl AgentCluster {
    /// Starts the watches on the caller's runtime and waits up to 10 s for their first lists.
    pub async fn start(client: Client, cfg: AgentClusterConfig) -> Result<Self, AgentClusterError> {
        let domain = &cfg.cluster_domain;
        let query_name = dnsprobe::parse_name(&format!("kubernetes.default.svc.{domain}"))
            .map_err(|e| AgentClusterError::Domain {
                domain: domain.clone(),
                reason: e.to_string(),
            })?;
        if cfg.node_condition && cfg.node.is_none() {
            return Err(AgentClusterError::NoNodeName);
        }
        let discovery = Discovery::start(client.clone(), &cfg.discovery);
        if !discovery.wait_ready(Duration::from_secs(10)).await {
            warn!(watches = ?discovery.health(), "Kubernetes watches not synced after 10s: starting with the static targets");
        }
        info!(namespace = %cfg.discovery.namespace, service = %cfg.discovery.service, node = ?cfg.node, "Kubernetes mode (read-only)");
        Ok(AgentCluster {
            cfg,
            client,
            discovery,
            query_name,
            last_condition: None,
            api_error: None,
        })
    }

    /// `kubernetes.default.svc.<cluster-domain>.`: the name to query.
    pub fn query_name(&self) -> &Name {
        &self.query_name
    }

    /// This node's name, if known.
    pub fn node(&self) -> Option<&str> {
        self.cfg.node.as_deref()
    }

    /// What the watches know now.
    pub fn snapshot(&self) -> Discovered {
        self.discovery.snapshot()
    }

    /// The targets to probe, and over what (only the pods, over TCP, through a port-forward).
    pub fn targets(&self, d: &Discovered) -> Vec<(SocketAddr, TransportMode)> {
        let found = match self.cfg.via {
            Via::PortForward => d.pod_tcp_targets(self.cfg.dns_port),
            _ => d.targets(self.cfg.dns_port),
        };
        let mode = |only| match only {
            None => TransportMode::Both,
            Some(Transport::Udp) => TransportMode::Udp,
            Some(Transport::Tcp) => TransportMode::Tcp,
        };
        found.into_iter().map(|t| (t.addr, mode(t.only))).collect()
    }

    /// Says what each target in `/status` is (see [`Discovered::annotate`]).
    pub fn annotate(&self, d: &Discovered, targets: &mut [TargetStatus]) {
        d.annotate(self.cfg.dns_port, targets);
    }

    /// After a round: rechecks stale watches, logs the API's transitions once, and says how the
    /// watches are.
    pub async fn status(&mut self) -> KubernetesStatus {
        self.discovery.recheck().await;
        let watches: Vec<WatchStatus> = (self.discovery.health().into_iter())
            .map(|(name, h)| WatchStatus {
                name: name.into(),
                healthy: h.healthy(),
                last_error: h.last_error.clone(),
            })
            .collect();
        let error = (watches.iter())
            .find_map(|w| w.last_error.as_ref().map(|e| format!("{}: {e}", w.name)));
        if error.is_some() != self.api_error.is_some() {
            match &error {
                Some(e) => {
                    warn!(error = %e, "Kubernetes API unreachable: probing goes on with the last known targets")
                }
                None => info!("Kubernetes API reachable again"),
            }
        }
        self.api_error = error.clone();
        KubernetesStatus {
            api_reachable: error.is_none(),
            last_error: error,
            watches,
        }
    }

    /// With the node condition on, sets `ClusterDNSReachable` on this Node when the verdict
    /// changes.
    pub async fn update_node_condition(&mut self, health: &HealthBook, unhealthy_netns: usize) {
        let (true, Some(node)) = (self.cfg.node_condition, &self.cfg.node) else {
            return;
        };
        let v = crate::node_condition::node_verdict(health, unhealthy_netns);
        if self.last_condition == Some((v.reachable, v.reason)) {
            return;
        }
        let client = self.client.clone();
        match crate::node_condition::set_node_condition(
            client,
            node,
            v.reachable,
            v.reason,
            &v.message,
        )
        .await
        {
            Ok(()) => {
                info!(node = %node, condition = crate::NODE_CONDITION, status = v.reachable, reason = v.reason, "node condition set");
                self.last_condition = Some((v.reachable, v.reason));
            }
            Err(e) => warn!(node = %node, error = %e, "cannot set the node condition"),
        }
    }

    /// True with [`Via::PortForward`] or [`Via::ProbePod`]: [`AgentCluster::probe`] probes.
    pub fn probes_elsewhere(&self) -> bool {
        self.cfg.via != Via::Direct
    }

    /// Probes through a port-forward or a probe pod.
    pub async fn probe(
        &self,
        specs: &[ProbeSpec],
        d: &Discovered,
    ) -> Result<Vec<ProbeReport>, ProbePodError> {
        let client = self.client.clone();
        match self.cfg.via {
            Via::PortForward => {
                Ok(probe_via_port_forward(client, &self.cfg.probe_pod.namespace, specs, d).await)
            }
            _ => probe_via_pod(client, &self.cfg.probe_pod, specs).await,
        }
    }
}
