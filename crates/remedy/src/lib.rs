//! # hc_remedy
//!
//! Kubernetes for a cluster-DNS checker: find CoreDNS from every node with read-only watches,
//! and decide in one place, by quorum, whether and how to repair it — safely.
//!
//! **On every node** (the agent):
//! - [`cluster_source`] / [`connect`]: in-cluster inside a pod, a kubeconfig outside; Kubernetes
//!   mode only when one of them is explicitly present.
//! - [`Discovery`]: watches on the DNS Service, its EndpointSlices and `default/kubernetes`;
//!   [`Discovered::targets`] gives the addresses and ports to probe and each CoreDNS pod's name,
//!   UID and node. Each watch keeps its own health ([`Watched`]).
//! - [`node_verdict`] and [`set_node_condition`]: the node's own `ClusterDNSReachable` condition.
//!
//! **In one place** (the controller, a Deployment with a Lease):
//! - [`Controller`]: reads a rotating sample of agents' `/status` ([`agents_of`],
//!   [`read_status`]), folds them into a node x CoreDNS-pod [`View`] over a sliding window,
//!   [`classify`]s it by quorum into pod / node / service / all [`Verdict`]s.
//! - [`plan`]: a pure function from verdicts, the pods, their Deployments, the [`History`] and
//!   the [`Policy`] to [`Action`]s, with every safety rule (one disruption in flight, grace
//!   period, cooldown, hourly budget, memory only on a fresh OOM kill, capped, never lowered).
//! - [`Elector`]: Lease election (15 s / 10 s / 2 s) where only a write renews, the [`History`]
//!   kept on the Lease, and a compare-and-swap commit before every action.
//! - [`Executor`]: the Eviction API with the pod's UID as a precondition (a 429 from a
//!   PodDisruptionBudget is "retry later"), a test-and-set JSON patch of the Deployment's memory,
//!   a rollout restart, an Event for every action; [`Mode`] `off`/`dry-run`/`on`.
//!
//! - [`freshness`]: how long a Service change takes to resolve through cluster DNS, and the
//!   names still answering a deleted or replaced Service's address ([`Freshness`], one watch of
//!   every Service, bounded follows); [`HttpChecks`]: CoreDNS's own `/health` and `/ready`
//!   against the verdicts (the pods that say healthy while DNS to them fails).
//!
//! And [`run_probe_pod`] / [`port_forward`]: probing from a machine outside the pod network.
//!
//! Feature `clap`: `cli`, the flags of `hc-cli run` (Kubernetes) and `hc-cli controller` as
//! clap flag groups, with their `HC_*` variables, and the configurations they make.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use hc_remedy::{plan, History, Inputs, PodInfo, Policy, Verdict};
//!
//! let pod = |name: &str| PodInfo {
//!     name: name.into(),
//!     uid: format!("uid-{name}"),
//!     phase: Some("Running".into()),
//!     ip: Some("10.244.0.5".parse().unwrap()),
//!     ready: true,
//!     started: Some(SystemTime::now() - Duration::from_secs(600)),
//!     ..PodInfo::default()
//! };
//! let verdicts = [Verdict::Pod { uid: "uid-a".into(), name: "a".into(), failing: 5, reporting: 6 }];
//! let actions = plan(&Inputs {
//!     verdicts: &verdicts,
//!     pods: &[pod("a"), pod("b")],
//!     deployments: &[],
//!     history: &History::default(),
//!     policy: &Policy::default(),
//!     now: SystemTime::now(),
//! });
//! assert_eq!(actions[0].1.kind().as_str(), "evict");
//! ```

mod agent;
mod agents;
mod classify;
#[cfg(feature = "clap")]
pub mod cli;
mod client;
mod controller;
mod discovery;
mod error;
mod execute;
pub mod freshness;
mod health_http;
mod lease;
mod node_condition;
mod plan;
mod probe_pod;
pub mod probing;
mod quantity;
mod view;
mod watch;

pub use agent::{AgentCluster, AgentClusterConfig, AgentClusterError, Via};
pub use agents::{
    AgentRef, MAX_STATUS_BYTES, ReadError, Sampler, agents_of, http_get, http_get_any, read_all,
    read_status,
};
pub use classify::{Quorum, Verdict, classify};
pub use client::{
    ClusterSource, ControllerAt, EXEC_TIMEOUT, cluster_source, connect, controller_status,
    service_proxy_get,
};
pub use controller::{Controller, ControllerConfig, SERVICES_WATCH, deployment_info};
pub use discovery::{
    Discovered, DiscoveredTarget, Discovery, DiscoveryConfig, EndpointInfo, PodInfo, TargetRole,
    pod_info,
};
pub use error::RemedyError;
pub use execute::{Executor, FIELD_MANAGER, Mode, Outcome};
pub use freshness::{Freshness, FreshnessConfig};
pub use health_http::{HttpChecks, HttpChecksConfig, MAX_HTTP_BODY};
pub use lease::{Decision, Elector, HISTORY_ANNOTATION, LeaseConfig, LeaseError, decide};
pub use node_condition::{NODE_CONDITION, NodeVerdict, node_verdict, set_node_condition};
pub use plan::{
    Action, ActionKind, DeploymentInfo, Done, History, Inputs, Policy, next_memory, plan,
};
pub use probe_pod::{
    PortForward, ProbePodConfig, ProbePodError, port_forward, probe_via_pod,
    probe_via_port_forward, run_probe_pod,
};
pub use probing::{PLAN_CONFIGMAP, ProbingPlan};
pub use quantity::{format_quantity, parse_quantity};
pub use view::View;
pub use watch::{WatchHealth, Watched};

/// The Kubernetes client type.
pub use kube::Client;

/// This machine's hostname (`/proc/sys/kernel/hostname`), the name of a node or replica when
/// none is given.
pub fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(h.trim().to_owned()).filter(|h| !h.is_empty())
}
