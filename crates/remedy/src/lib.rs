//! # hc_remedy
//!
//! Discover CoreDNS through the Kubernetes API and repair it safely.
//!
//! - [`cluster_source`] / [`connect`]: in-cluster inside a pod, a kubeconfig outside; Kubernetes
//!   mode only when one of them is explicitly present.
//! - [`Discovery`]: watches (kube's reflector) on the DNS Service, its EndpointSlices, the
//!   CoreDNS pods and `default/kubernetes`; [`Discovery::snapshot`] gives targets, ports, the
//!   expected answer, and each pod's restarts, last termination reason and memory limit.
//! - [`plan`]: a pure function from observations, history and [`Policy`] to [`Action`]s, with
//!   every safety rule (one disruption in flight, grace period, cooldown, hourly budget, never
//!   evict when every pod fails from this agent, memory capped and never lowered).
//! - [`Executor`]: the Eviction API (429 from a PodDisruptionBudget is "retry later"), a
//!   test-and-set JSON patch of the Deployment's memory with our own field manager, a rollout
//!   restart annotation, an Event for every action; [`Mode`] `off`/`dry-run`/`on`.
//! - [`Elector`]: Lease-based leader election (15 s / 10 s / 2 s); only the holder acts.
//! - [`run_probe_pod`]: a short-lived pod that probes from inside the cluster, for machines that
//!   cannot reach the pod network; always deleted.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use hc_remedy::{plan, History, Observations, PodObservation, Policy};
//!
//! let pod = |name: &str, failures| PodObservation {
//!     name: name.into(),
//!     age: Some(Duration::from_secs(600)),
//!     consecutive_failures: failures,
//!     answering: failures == 0,
//!     ..PodObservation::default()
//! };
//! let obs = Observations { pods: vec![pod("coredns-a", 3), pod("coredns-b", 0)], deployment: None };
//! let actions = plan(&obs, &History::default(), &Policy::default(), SystemTime::now());
//! assert_eq!(actions[0].kind().as_str(), "evict");
//! ```

mod client;
mod discovery;
mod error;
mod execute;
mod lease;
mod node_condition;
mod plan;
mod probe_pod;
mod quantity;

pub use client::{ClusterSource, cluster_source, connect};
pub use discovery::{
    ApiHealth, Discovered, DiscoveredTarget, Discovery, DiscoveryConfig, EndpointInfo, PodInfo,
    TargetRole, pod_info,
};
pub use error::RemedyError;
pub use execute::{Executor, FIELD_MANAGER, Mode, Outcome};
pub use lease::{Decision, Elector, LeaseConfig, decide};
pub use node_condition::{NODE_CONDITION, set_node_condition};
pub use plan::{
    Action, ActionKind, DeploymentObservation, Done, History, Observations, PodObservation, Policy,
    next_memory, plan,
};
pub use probe_pod::{PortForward, ProbePodConfig, ProbePodError, port_forward, run_probe_pod};
pub use quantity::{format_quantity, parse_quantity};

/// The Kubernetes client type.
pub use kube::Client;
