//! The agent's Kubernetes side: read-only discovery of its targets (`hc_remedy::Discovery`), the
//! roles of those targets in `/status`, probing through a probe pod or a port-forward, and the
//! node's own condition. No Lease, no eviction, no patch of CoreDNS: deciding is the controller's.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use dnsprobe::hickory_proto::rr::Name;
use dnsprobe::{HealthBook, JsonReport, ProbeReport, ProbeSpec, Transport, TransportMode};
use hc_exporter::{KubernetesStatus, PodRef, Role, TargetStatus, WatchStatus};
use hc_remedy::{ClusterSource, Discovered, Discovery, DiscoveryConfig, TargetRole};
use tracing::{info, warn};

use crate::cli::{KubeArgs, Via};
use crate::exit::{self, Context};

pub(crate) struct Kube {
    via: Via,
    client: hc_remedy::Client,
    namespace: String,
    discovery: Discovery,
    /// `kubernetes.default.svc.<cluster-domain>.`
    pub(crate) query_name: Name,
    port: Option<u16>,
    /// This node (`--node-name`, `NODE_NAME`).
    pub(crate) node: Option<String>,
    /// `--node-condition`: the condition last set.
    node_condition: Option<Option<(bool, &'static str)>>,
    probe_pod: Option<hc_remedy::ProbePodConfig>,
    api_error: Option<String>,
}

impl Kube {
    /// Connects and starts the watches, waiting up to 10 s for their first lists.
    pub(crate) async fn start(args: &KubeArgs, source: &ClusterSource) -> exit::Result<Kube> {
        let moved = args.moved.given();
        if !moved.is_empty() {
            warn!(flags = %moved.join(", "), "these flags have no effect on the agent: remediation is `hc-cli controller`'s");
        }
        let query_name =
            dnsprobe::parse_name(&format!("kubernetes.default.svc.{}", args.cluster_domain))
                .usage()?;
        let node = args
            .node_name
            .clone()
            .or_else(|| std::env::var("NODE_NAME").ok().filter(|v| !v.is_empty()));
        if args.node_condition && node.is_none() {
            return Err(exit::usage(anyhow::anyhow!(
                "--node-condition needs the node's name: --node-name or NODE_NAME (the downward API)"
            )));
        }
        let client = hc_remedy::connect(source).await.usage()?;
        let cfg = DiscoveryConfig {
            namespace: args.api.namespace.clone(),
            service: args.service.clone(),
        };
        let discovery = Discovery::start(client.clone(), &cfg);
        if !discovery.wait_ready(Duration::from_secs(10)).await {
            warn!(watches = ?discovery.health(), "Kubernetes watches not synced after 10s: starting with the static targets");
        }
        info!(source = ?source, namespace = %cfg.namespace, service = %cfg.service, node = ?node, "Kubernetes mode (read-only)");
        Ok(Kube {
            via: args.via,
            client,
            namespace: cfg.namespace,
            discovery,
            query_name,
            port: args.dns_port,
            node,
            node_condition: args.node_condition.then_some(None),
            probe_pod: (args.via == Via::ProbePod).then(|| hc_remedy::ProbePodConfig {
                namespace: args.api.namespace.clone(),
                image: args.probe_image.clone(),
                timeout: args.probe_pod_timeout,
            }),
            api_error: None,
        })
    }

    /// What the watches know now.
    pub(crate) fn snapshot(&self) -> Discovered {
        self.discovery.snapshot()
    }

    /// The discovered targets (only the pods, over TCP, through a port-forward).
    pub(crate) fn targets(&self, d: &Discovered) -> Vec<(SocketAddr, TransportMode)> {
        let found = match self.via {
            Via::PortForward => d.pod_tcp_targets(self.port),
            _ => d.targets(self.port),
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

    /// Says in `/status` what each target is: the Service, or which CoreDNS pod (name, UID,
    /// node: what the controller keys its view by).
    pub(crate) fn annotate(&self, d: &Discovered, targets: &mut [TargetStatus]) {
        let found = d.targets(self.port);
        for t in targets.iter_mut() {
            let Some(f) = found.iter().find(|f| f.addr.to_string() == t.target) else {
                t.role = Some(Role::Static);
                continue;
            };
            match &f.role {
                TargetRole::Service => t.role = Some(Role::Service),
                TargetRole::Pod { name, uid, node } => {
                    t.role = Some(Role::Pod);
                    t.pod = Some(PodRef {
                        name: name.clone(),
                        uid: uid.clone(),
                        node: node.clone(),
                    });
                }
            }
        }
    }

    /// After a round: rechecks stale watches, logs the API's transitions once, and says how
    /// the watches are.
    pub(crate) async fn status(&mut self) -> KubernetesStatus {
        self.discovery.recheck().await;
        let watches: Vec<WatchStatus> = self
            .discovery
            .health()
            .into_iter()
            .map(|(name, h)| WatchStatus {
                name: name.into(),
                healthy: h.healthy(),
                last_error: h.last_error.clone(),
            })
            .collect();
        let error = watches
            .iter()
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

    /// With `--node-condition`, sets `ClusterDNSReachable` on this Node when the verdict changes.
    pub(crate) async fn update_node_condition(
        &mut self,
        health: &HealthBook,
        unhealthy_netns: usize,
    ) {
        let (Some(last), Some(node)) = (&mut self.node_condition, &self.node) else {
            return;
        };
        let v = hc_remedy::node_verdict(health, unhealthy_netns);
        if *last == Some((v.reachable, v.reason)) {
            return;
        }
        match hc_remedy::set_node_condition(
            self.client.clone(),
            node,
            v.reachable,
            v.reason,
            &v.message,
        )
        .await
        {
            Ok(()) => {
                info!(node = %node, condition = hc_remedy::NODE_CONDITION, status = v.reachable, reason = v.reason, "node condition set");
                *last = Some((v.reachable, v.reason));
            }
            Err(e) => warn!(node = %node, error = %e, "cannot set the node condition"),
        }
    }

    /// True with `--via port-forward` or `--via probe-pod`.
    pub(crate) fn probes_elsewhere(&self) -> bool {
        self.via != Via::Direct
    }

    /// Probes through a port-forward or a probe pod.
    pub(crate) async fn probe_elsewhere(
        &self,
        specs: &[ProbeSpec],
        d: &Discovered,
    ) -> exit::Result<Vec<ProbeReport>> {
        if self.via == Via::PortForward {
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

    /// Each pod target over TCP through a port-forward (others directly), all at once. A tunnel
    /// that cannot be opened is an I/O failure of the tunnel, reported as such.
    async fn probe_via_port_forward(
        &self,
        specs: &[ProbeSpec],
        d: &Discovered,
    ) -> Vec<ProbeReport> {
        let jobs = specs.iter().map(|spec| async move {
            let Some(pod) = d.endpoint(spec.target.ip()).and_then(|e| e.pod.clone()) else {
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

    /// `specs` from a short-lived pod: one pod per group of specs with the same transports, its
    /// `hc-cli probe --json` output read back as reports.
    async fn probe_via_pod(&self, specs: &[ProbeSpec]) -> anyhow::Result<Vec<ProbeReport>> {
        let Some(cfg) = &self.probe_pod else {
            anyhow::bail!("internal: no probe pod configured")
        };
        let mut out = Vec::new();
        for (mode, flag) in [
            (TransportMode::Both, Some("--both")),
            (TransportMode::Udp, None),
            (TransportMode::Tcp, Some("--tcp")),
        ] {
            let group: Vec<&ProbeSpec> = specs.iter().filter(|s| s.transport == mode).collect();
            let Some(first) = group.first() else { continue };
            let mut args: Vec<String> = vec!["probe".into(), "--json".into()];
            args.extend(flag.map(String::from));
            args.extend(["--name".into(), first.name.to_ascii()]);
            args.extend([
                "--timeout".into(),
                humantime::format_duration(first.timeout).to_string(),
            ]);
            args.extend(["--attempts".into(), first.attempts.to_string()]);
            if let dnsprobe::AnswerExpectation::Contains(ips) = &first.expect.answer {
                ips.iter()
                    .for_each(|ip| args.extend(["--expect".into(), ip.to_string()]));
            }
            group
                .iter()
                .for_each(|s| args.extend(["--ip".into(), s.target.to_string()]));
            let logs = hc_remedy::run_probe_pod(self.client.clone(), cfg, &args).await?;
            let parsed: Vec<JsonReport> = serde_json::from_str(logs.trim()).with_context(|| {
                let head: String = logs.chars().take(200).collect();
                format!("the probe pod's output is not the JSON of `hc-cli probe --json`: {head}")
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
}
