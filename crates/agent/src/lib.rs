//! # hc_agent
//!
//! The node agent of coredns-healthcheck as a library type: [`Agent::round`] probes every
//! target over UDP and TCP from the agent's own network namespace (and, when sweeping, a
//! rotating share of the pod namespaces), moves each target through its thresholds, logs the
//! transitions once, updates the metrics, and [`Agent::status`] gives the `/status` document the
//! controller reads. The loop around it (the interval, signals, the admin server) is the
//! caller's: `hc-cli run` is one such caller, `hc-cli demo` another.
//!
//! Targets come from the configuration, and in Kubernetes from an
//! [`hc_remedy::AgentCluster`] (read-only discovery). Linux only.

#[cfg(target_os = "linux")]
mod round;

#[cfg(target_os = "linux")]
pub use round::{Agent, AgentConfig, AgentError, Round};
