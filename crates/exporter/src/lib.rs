//! # hc_exporter
//!
//! Prometheus metrics and the admin HTTP endpoints of a DNS health agent.
//!
//! - [`Metrics`] (the agent's) and [`ControllerMetrics`]: typed metric families (prefix
//!   `coredns_healthcheck_`), created once and [registered](Metrics::register) into a
//!   prometheus-client [`Registry`], which other tools may fill with families of their own.
//! - [`Admin`] and [`AdminServer`]: `GET /metrics` (OpenMetrics text), `/healthz` (200 while the
//!   process runs), `/readyz` (200 after the first published round, 503 before and during
//!   shutdown), `/status` (JSON of the last round, 200 when everything is up, 503 otherwise).
//!   GET and HEAD only; a 2 s header-read timeout.
//! - [`Status`]: the agent's `/status` document; [`ControllerStatus`]: the controller's, the
//!   node x CoreDNS-pod view (its `Display` is `hc-cli status`).
//!
//! ```no_run
//! use hc_exporter::{Admin, Metrics, Registry, DEFAULT_LATENCY_BUCKETS};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::default();
//! let metrics = Metrics::new(DEFAULT_LATENCY_BUCKETS)?.register(&mut registry, "0.1.0");
//! let admin = Admin::new(registry);
//! let server = admin.bind("127.0.0.1:9890".parse()?).await?;
//! tokio::spawn(server.run());
//! metrics.observe_query("10.96.0.10:53", "udp", hc_exporter::Source::Host, "ok", None);
//! admin.publish(hc_exporter::Status::default()); // after each round
//! # Ok(()) }
//! ```

mod metrics;
mod server;
mod status;
mod view;

pub use metrics::{
    ACTIONS, BucketsError, CONTROLLER_FAMILIES, ControllerMetrics, DEFAULT_LATENCY_BUCKETS,
    FAMILIES, Metrics, PREFIX, RESULTS, Source, VERDICT_KINDS, sample_names,
};
pub use server::{
    Admin, AdminServer, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, OPENMETRICS, ServeError,
};
pub use status::{
    ErrorStatus, FindingStatus, KubernetesStatus, NamespaceStatus, OnceReport, PlannedAction,
    PodRef, Role, Status, TargetState, TargetStatus, WatchStatus, unix_ms,
};
pub use view::{AgentsView, ControllerStatus, PodView, Reach, ServiceView, VerdictView};

/// The prometheus-client registry type families are registered into.
pub use prometheus_client::registry::Registry;
