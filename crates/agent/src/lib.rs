//! # hc_agent
//!
//! The node agent of coredns-healthcheck as a library type: [`Agent::round`] probes every
//! target over UDP and TCP from the agent's own network namespace (and, when sweeping, a
//! rotating share of the pod namespaces), moves each target through its thresholds, logs the
//! transitions once, updates the metrics, and [`Agent::status`] gives the `/status` document the
//! controller reads. The loop around it (the interval, signals, the admin server) is the
//! caller's: `hc-cli run` is one such caller, `hc-cli demo` another.
//!
//! Targets come from the configuration, and in Kubernetes from an `hc_remedy::AgentCluster`
//! (read-only discovery). What a round probes stays within a query budget whatever the size of
//! the cluster ([`schedule`]: the Service every round, the rendezvous sample of CoreDNS pods the
//! controller's plan sizes, a share of the pod namespaces); [`model`] is the same arithmetic as
//! a load model (`cargo run -p hc-agent --example load-model`). In Kubernetes, [`api_dns`]
//! checks the API server through cluster DNS now and then, apart from DNS health. Linux only.
//!
//! Feature `clap`: `cli`, the budget's flags of `hc-cli run` as a clap flag group.

#[cfg(target_os = "linux")]
pub mod api_dns;
#[cfg(all(target_os = "linux", feature = "clap"))]
pub mod cli;
#[cfg(target_os = "linux")]
mod round;
#[cfg(target_os = "linux")]
pub mod schedule;

#[cfg(target_os = "linux")]
pub use round::{Agent, AgentConfig, AgentError, Round};
#[cfg(target_os = "linux")]
pub use schedule::{Budget, Load, model};
