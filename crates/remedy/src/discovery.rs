//! Finding CoreDNS's addresses and keeping them current with watches (kube's reflector), never
//! periodic LISTs: the DNS Service and its ClusterIPs and ports, its EndpointSlices (each
//! CoreDNS pod's address, name, UID and node), and the ClusterIP of `default/kubernetes` (the
//! answer `kubernetes.default.svc` must give). Read-only: what an agent on every node needs.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::probing::{PLAN_CONFIGMAP, ProbingPlan};
use crate::quantity::parse_quantity;
use crate::watch::{RECHECK, WatchHealth, Watched};

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Namespace of CoreDNS (`kube-system`).
    pub namespace: String,
    /// Its Service (`kube-dns`).
    pub service: String,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            namespace: "kube-system".into(),
            service: "kube-dns".into(),
        }
    }
}

/// One endpoint of the DNS Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Address.
    pub ip: IpAddr,
    /// Ready condition (absent means ready).
    pub ready: bool,
    /// Serving condition.
    pub serving: bool,
    /// Terminating condition.
    pub terminating: bool,
    /// Node.
    pub node: Option<String>,
    /// The pod behind it.
    pub pod: Option<String>,
    /// That pod's UID.
    pub pod_uid: Option<String>,
}

/// What a DNS target is to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRole {
    /// A ClusterIP of the DNS Service.
    Service,
    /// A CoreDNS pod's own address.
    Pod {
        /// Pod name (from the EndpointSlice's `targetRef`).
        name: Option<String>,
        /// Pod UID.
        uid: Option<String>,
        /// The node it runs on.
        node: Option<String>,
    },
}

/// One DNS target found by discovery, and which transports to probe it over (both when the
/// UDP and TCP ports are the same, each on its own port otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredTarget {
    /// Address and port.
    pub addr: SocketAddr,
    /// `None`: UDP and TCP; `Some(t)`: only `t` on this port.
    pub only: Option<dnsprobe::Transport>,
    /// What it is.
    pub role: TargetRole,
}

/// One CoreDNS pod, as the controller needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// Name.
    pub name: String,
    /// UID: what the controller keys its view and history by.
    pub uid: String,
    /// `Pending`, `Running`, ...
    pub phase: Option<String>,
    /// Pod IP.
    pub ip: Option<IpAddr>,
    /// Node.
    pub node: Option<String>,
    /// Start time.
    pub started: Option<SystemTime>,
    /// Has a deletion timestamp.
    pub terminating: bool,
    /// Ready condition.
    pub ready: bool,
    /// Restarts of its DNS container.
    pub restarts: u32,
    /// Reason of the DNS container's last termination.
    pub last_termination: Option<String>,
    /// When that termination finished.
    pub last_termination_at: Option<SystemTime>,
    /// The DNS container's name (the first container).
    pub container: Option<String>,
    /// Its memory limit, bytes.
    pub memory_limit: Option<u64>,
    /// Owning Deployment: the ReplicaSet owner's name less the `pod-template-hash` suffix (no
    /// ReplicaSet read needed).
    pub deployment: Option<String>,
}

/// A snapshot of what the watches know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// ClusterIPs of the DNS Service (dual-stack: both).
    pub service_ips: Vec<IpAddr>,
    /// Its `dns` (UDP) port, else the first UDP port, else 53.
    pub udp_port: u16,
    /// Its `dns-tcp` port, else the first TCP port, else the UDP port.
    pub tcp_port: u16,
    /// ClusterIP of `default/kubernetes`.
    pub api_ip: Option<IpAddr>,
    /// Its `https` port (else its first port): where the API server answers at that address.
    pub api_port: Option<u16>,
    /// The pods' own DNS ports from the EndpointSlices (`dns`, `dns-tcp`): the Service's
    /// target ports, which may differ from its ports.
    pub endpoint_udp_port: Option<u16>,
    /// See `endpoint_udp_port`.
    pub endpoint_tcp_port: Option<u16>,
    /// Endpoints of the DNS Service.
    pub endpoints: Vec<EndpointInfo>,
    /// The controller's probing plan (`None` until it published one).
    pub plan: Option<ProbingPlan>,
}

impl Discovered {
    /// What discovery found, for a person (the agent's first log line): `10.96.0.10:53
    /// (service), 10.244.0.5:53 (pod coredns-a on node-1), expect 10.96.0.1`, or `nothing yet`.
    pub fn describe(&self, port: Option<u16>) -> String {
        let mut found: Vec<String> = (self.targets(port).into_iter())
            .map(|t| match t.role {
                TargetRole::Service => format!("{} (service)", t.addr),
                TargetRole::Pod { name, node, .. } => format!(
                    "{} (pod {} on {})",
                    t.addr,
                    name.as_deref().unwrap_or("?"),
                    node.as_deref().unwrap_or("?")
                ),
            })
            .collect();
        if found.is_empty() {
            found.push("nothing yet (the watches keep trying; see /status)".into());
        }
        if let Some(api) = self.api_ip {
            found.push(format!("expect {api}"));
        }
        found.join(", ")
    }

    /// The targets to probe: the Service's ClusterIPs on its ports, and every CoreDNS endpoint
    /// not terminating on the pods' own ports; `port` (`--dns-port`) replaces every port.
    pub fn targets(&self, port: Option<u16>) -> Vec<DiscoveredTarget> {
        let mut out = Vec::new();
        let mut add = |ip: IpAddr, udp: u16, tcp: u16, role: TargetRole| {
            let (udp, tcp) = port.map_or((udp, tcp), |p| (p, p));
            if udp == tcp {
                out.push(DiscoveredTarget {
                    addr: SocketAddr::new(ip, udp),
                    only: None,
                    role,
                });
                return;
            }
            for (p, t) in [
                (udp, dnsprobe::Transport::Udp),
                (tcp, dnsprobe::Transport::Tcp),
            ] {
                let role = role.clone();
                out.push(DiscoveredTarget {
                    addr: SocketAddr::new(ip, p),
                    only: Some(t),
                    role,
                });
            }
        };
        for ip in &self.service_ips {
            add(*ip, self.udp_port, self.tcp_port, TargetRole::Service);
        }
        let (udp, tcp) = self.endpoint_ports();
        for e in self.endpoints.iter().filter(|e| !e.terminating) {
            add(e.ip, udp, tcp, e.role());
        }
        out
    }

    /// The CoreDNS pods that can be reached through a port-forward (those with a pod name), each
    /// on the pods' DNS port over TCP (the only transport a port-forward carries).
    pub fn pod_tcp_targets(&self, port: Option<u16>) -> Vec<DiscoveredTarget> {
        let p = port.unwrap_or(self.endpoint_ports().1);
        self.endpoints
            .iter()
            .filter(|e| !e.terminating && e.pod.is_some())
            .map(|e| DiscoveredTarget {
                addr: SocketAddr::new(e.ip, p),
                only: Some(dnsprobe::Transport::Tcp),
                role: e.role(),
            })
            .collect()
    }

    /// The pods' own (UDP, TCP) DNS ports: the EndpointSlices', else the Service's.
    fn endpoint_ports(&self) -> (u16, u16) {
        let udp = self.endpoint_udp_port.unwrap_or(self.udp_port);
        let tcp = self
            .endpoint_tcp_port
            .or(self.endpoint_udp_port)
            .unwrap_or(self.tcp_port);
        (udp, tcp)
    }

    /// Says in an agent's `/status` what each target is: the Service, or which CoreDNS pod
    /// (name, UID, node: what the controller keys its view by); `Static` for any other.
    pub fn annotate(&self, port: Option<u16>, targets: &mut [hc_exporter::TargetStatus]) {
        use hc_exporter::{PodRef, Role};
        let found = self.targets(port);
        for t in targets.iter_mut() {
            let role = found
                .iter()
                .find(|f| f.addr.to_string() == t.target)
                .map(|f| &f.role);
            t.role = Some(match role {
                None => Role::Static,
                Some(TargetRole::Service) => Role::Service,
                Some(TargetRole::Pod { name, uid, node }) => {
                    t.pod = Some(PodRef {
                        name: name.clone(),
                        uid: uid.clone(),
                        node: node.clone(),
                    });
                    Role::Pod
                }
            });
        }
    }

    /// The endpoint at `ip`, if it is a CoreDNS pod's.
    pub fn endpoint(&self, ip: IpAddr) -> Option<&EndpointInfo> {
        self.endpoints.iter().find(|e| e.ip == ip)
    }
}

impl EndpointInfo {
    fn role(&self) -> TargetRole {
        TargetRole::Pod {
            name: self.pod.clone(),
            uid: self.pod_uid.clone(),
            node: self.node.clone(),
        }
    }
}

/// Running watches: the DNS Service, `default/kubernetes`, the Service's EndpointSlices, and
/// the probing plan.
pub struct Discovery {
    service: Watched<Service>,
    api_service: Watched<Service>,
    slices: Watched<EndpointSlice>,
    plan: Watched<ConfigMap>,
}

impl Discovery {
    /// Starts the three watches on the caller's runtime.
    pub fn start(client: Client, cfg: &DiscoveryConfig) -> Discovery {
        let ns = &cfg.namespace;
        Discovery {
            service: Watched::spawn(
                "dns-service",
                Api::namespaced(client.clone(), ns),
                watcher::Config::default().fields(&format!("metadata.name={}", cfg.service)),
            ),
            api_service: Watched::spawn(
                "kubernetes-service",
                Api::namespaced(client.clone(), "default"),
                watcher::Config::default().fields("metadata.name=kubernetes"),
            ),
            slices: Watched::spawn(
                "dns-endpointslices",
                Api::namespaced(client.clone(), ns),
                watcher::Config::default()
                    .labels(&format!("kubernetes.io/service-name={}", cfg.service)),
            ),
            plan: Watched::spawn(
                "probing-plan",
                Api::namespaced(client, ns),
                watcher::Config::default().fields(&format!("metadata.name={PLAN_CONFIGMAP}")),
            ),
        }
    }

    /// Waits until every watch has listed once, at most `timeout`; false if it timed out.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let all = async {
            self.service.wait_synced(timeout).await
                & self.api_service.wait_synced(timeout).await
                & self.slices.wait_synced(timeout).await
                & self.plan.wait_synced(timeout).await
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }

    /// Each watch's name and health.
    pub fn health(&self) -> Vec<(&'static str, WatchHealth)> {
        vec![
            (self.service.name(), self.service.health()),
            (self.api_service.name(), self.api_service.health()),
            (self.slices.name(), self.slices.health()),
            (self.plan.name(), self.plan.health()),
        ]
    }

    /// Rechecks the watches that show an error (at most every 10 s each): see
    /// [`Watched::recheck`].
    pub async fn recheck(&self) {
        self.service.recheck(RECHECK).await;
        self.api_service.recheck(RECHECK).await;
        self.slices.recheck(RECHECK).await;
        self.plan.recheck(RECHECK).await;
    }

    /// What is known now.
    pub fn snapshot(&self) -> Discovered {
        let mut d = Discovered {
            udp_port: 53,
            tcp_port: 53,
            ..Discovered::default()
        };
        if let Some(svc) = self.service.state().first() {
            let spec = svc.spec.clone().unwrap_or_default();
            let mut ips: Vec<String> = spec.cluster_ips.unwrap_or_default();
            if ips.is_empty() {
                ips.extend(spec.cluster_ip);
            }
            d.service_ips = ips.iter().filter_map(|s| s.parse().ok()).collect();
            let ports = spec.ports.unwrap_or_default();
            let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
                p.protocol.clone().unwrap_or_else(|| "TCP".into())
            };
            let udp = ports
                .iter()
                .find(|p| p.name.as_deref() == Some("dns"))
                .or_else(|| ports.iter().find(|p| proto(p) == "UDP"));
            let tcp = ports
                .iter()
                .find(|p| p.name.as_deref() == Some("dns-tcp"))
                .or_else(|| ports.iter().find(|p| proto(p) == "TCP"));
            if let Some(p) = udp {
                d.udp_port = u16::try_from(p.port).unwrap_or(53);
            }
            d.tcp_port = tcp
                .and_then(|p| u16::try_from(p.port).ok())
                .unwrap_or(d.udp_port);
        }
        let api = self
            .api_service
            .state()
            .first()
            .and_then(|s| s.spec.clone());
        d.api_ip = (api.as_ref()).and_then(|s| s.cluster_ip.as_ref()?.parse().ok());
        d.api_port = api.and_then(|s| {
            let ports = s.ports?;
            let p = (ports.iter().find(|p| p.name.as_deref() == Some("https")))
                .or_else(|| ports.first())?;
            u16::try_from(p.port).ok()
        });
        for slice in self.slices.state() {
            for p in slice.ports.iter().flatten() {
                let port = p.port.and_then(|x| u16::try_from(x).ok());
                match (p.name.as_deref(), p.protocol.as_deref()) {
                    (Some("dns"), _) | (None, Some("UDP")) => {
                        d.endpoint_udp_port = d.endpoint_udp_port.or(port)
                    }
                    (Some("dns-tcp"), _) | (None, Some("TCP")) => {
                        d.endpoint_tcp_port = d.endpoint_tcp_port.or(port)
                    }
                    _ => {}
                }
            }
            for ep in &slice.endpoints {
                let c = ep.conditions.clone().unwrap_or_default();
                for a in &ep.addresses {
                    if let Ok(ip) = a.parse() {
                        d.endpoints.push(EndpointInfo {
                            ip,
                            ready: c.ready.unwrap_or(true),
                            serving: c.serving.unwrap_or(true),
                            terminating: c.terminating.unwrap_or(false),
                            node: ep.node_name.clone(),
                            pod: ep.target_ref.as_ref().and_then(|r| r.name.clone()),
                            pod_uid: ep.target_ref.as_ref().and_then(|r| r.uid.clone()),
                        });
                    }
                }
            }
        }
        d.endpoints.sort_by_key(|e| e.ip);
        d.endpoints.dedup_by_key(|e| e.ip);
        d.plan = (self.plan.state().first()).and_then(|c| ProbingPlan::from_data(c.data.as_ref()?));
        d
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

/// The parts of a Pod the planner needs.
pub fn pod_info(p: &Pod) -> PodInfo {
    let meta = &p.metadata;
    let status = p.status.clone().unwrap_or_default();
    let spec = p.spec.clone().unwrap_or_default();
    let container = spec.containers.first();
    let cs = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|c| Some(&c.name) == container.map(|c| &c.name));
    let hash = meta
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned();
    let deployment = meta
        .owner_references
        .as_ref()
        .and_then(|o| o.iter().find(|r| r.kind == "ReplicaSet"))
        .map(|r| match &hash {
            Some(h) => r
                .name
                .strip_suffix(&format!("-{h}"))
                .unwrap_or(&r.name)
                .to_owned(),
            None => r
                .name
                .rsplit_once('-')
                .map_or(r.name.clone(), |(d, _)| d.to_owned()),
        });
    let terminated = cs
        .as_ref()
        .and_then(|c| c.last_state.as_ref()?.terminated.clone());
    PodInfo {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        phase: status.phase.clone(),
        ip: status.pod_ip.as_ref().and_then(|i| i.parse().ok()),
        node: spec.node_name.clone(),
        started: status.start_time.map(|t| SystemTime::from(t.0)),
        terminating: meta.deletion_timestamp.is_some(),
        ready: status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        restarts: cs.as_ref().map_or(0, |c| c.restart_count.max(0) as u32),
        last_termination: terminated.as_ref().and_then(|t| t.reason.clone()),
        last_termination_at: terminated
            .and_then(|t| t.finished_at)
            .map(|t| SystemTime::from(t.0)),
        container: container.map(|c| c.name.clone()),
        memory_limit: container
            .and_then(|c| {
                c.resources
                    .as_ref()?
                    .limits
                    .as_ref()?
                    .get("memory")
                    .cloned()
            })
            .and_then(|q| parse_quantity(&q.0)),
        deployment,
    }
}
