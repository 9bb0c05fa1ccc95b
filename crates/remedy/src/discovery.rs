//! Finding CoreDNS and keeping it current with watches (kube's reflector), never periodic
//! LISTs: the DNS Service and its ClusterIPs and ports, its EndpointSlices, the CoreDNS pods,
//! and the ClusterIP of `default/kubernetes` (the answer `kubernetes.default.svc` must give).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

use crate::quantity::parse_quantity;

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Namespace of CoreDNS (`kube-system`).
    pub namespace: String,
    /// Its Service (`kube-dns`).
    pub service: String,
    /// Label selector of its pods (`k8s-app=kube-dns`).
    pub selector: String,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            namespace: "kube-system".into(),
            service: "kube-dns".into(),
            selector: "k8s-app=kube-dns".into(),
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

/// One CoreDNS pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Name.
    pub name: String,
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
    /// The pods' own DNS ports from the EndpointSlices (`dns`, `dns-tcp`): the Service's
    /// target ports, which may differ from its ports.
    pub endpoint_udp_port: Option<u16>,
    /// See `endpoint_udp_port`.
    pub endpoint_tcp_port: Option<u16>,
    /// Endpoints of the DNS Service.
    pub endpoints: Vec<EndpointInfo>,
    /// The CoreDNS pods.
    pub pods: Vec<PodInfo>,
}

impl Discovered {
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

/// The watches' health: the last error, cleared by the next success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiHealth {
    /// The last watch error, while it lasts.
    pub last_error: Option<String>,
}

/// Running watches and their stores.
pub struct Discovery {
    client: Client,
    cfg: DiscoveryConfig,
    service: Store<Service>,
    api_service: Store<Service>,
    slices: Store<EndpointSlice>,
    pods: Store<Pod>,
    health: Arc<Mutex<ApiHealth>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn spawn_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    health: Arc<Mutex<ApiHealth>>,
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
            match ev {
                Ok(_) => h.last_error = None,
                Err(e) => h.last_error = Some(e.to_string()),
            }
        }
    });
    (reader, task)
}

impl Discovery {
    /// Starts the four watches on the caller's runtime.
    pub fn start(client: Client, cfg: &DiscoveryConfig) -> Discovery {
        let health = Arc::new(Mutex::new(ApiHealth::default()));
        let client_for_checks = client.clone();
        let ns = &cfg.namespace;
        let (service, t1) = spawn_reflector(
            Api::<Service>::namespaced(client.clone(), ns),
            watcher::Config::default().fields(&format!("metadata.name={}", cfg.service)),
            health.clone(),
        );
        let (api_service, t2) = spawn_reflector(
            Api::<Service>::namespaced(client.clone(), "default"),
            watcher::Config::default().fields("metadata.name=kubernetes"),
            health.clone(),
        );
        let (slices, t3) = spawn_reflector(
            Api::<EndpointSlice>::namespaced(client.clone(), ns),
            watcher::Config::default()
                .labels(&format!("kubernetes.io/service-name={}", cfg.service)),
            health.clone(),
        );
        let (pods, t4) = spawn_reflector(
            Api::<Pod>::namespaced(client, ns),
            watcher::Config::default().labels(&cfg.selector),
            health.clone(),
        );
        Discovery {
            client: client_for_checks,
            cfg: cfg.clone(),
            service,
            api_service,
            slices,
            pods,
            health,
            tasks: vec![t1, t2, t3, t4],
        }
    }

    /// Waits until every watch has listed once, at most `timeout`; false if it timed out.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let all = async {
            let _ = self.service.wait_until_ready().await;
            let _ = self.api_service.wait_until_ready().await;
            let _ = self.slices.wait_until_ready().await;
            let _ = self.pods.wait_until_ready().await;
        };
        tokio::time::timeout(timeout, all).await.is_ok()
    }

    /// After a watch error, checks whether the API answers again with one GET of the DNS
    /// Service, and clears the error if it does. A watch that resumes from its last
    /// resourceVersion delivers no event until something changes, so its stream alone cannot
    /// tell that the API is back. Call it sparingly (the agent: at most every 10 s, and only
    /// while an error is shown).
    pub async fn recheck(&self) {
        if self.health().last_error.is_none() {
            return;
        }
        let api = Api::<Service>::namespaced(self.client.clone(), &self.cfg.namespace);
        let result = api.get_opt(&self.cfg.service).await;
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => h.last_error = None,
            Err(e) => h.last_error = Some(e.to_string()),
        }
    }

    /// The watches' health.
    pub fn health(&self) -> ApiHealth {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        d.api_ip = self
            .api_service
            .state()
            .first()
            .and_then(|s| s.spec.as_ref()?.cluster_ip.as_ref()?.parse().ok());
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
        d.pods = self.pods.state().iter().map(|p| pod_info(p)).collect();
        d.pods.sort_by(|a, b| a.name.cmp(&b.name));
        d
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
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
    PodInfo {
        name: meta.name.clone().unwrap_or_default(),
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
        last_termination: cs
            .as_ref()
            .and_then(|c| c.last_state.as_ref()?.terminated.as_ref()?.reason.clone()),
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
