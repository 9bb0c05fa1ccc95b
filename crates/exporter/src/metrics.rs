//! The metric families, as a struct of handles registered once.
//!
//! Every name has the prefix `coredns_healthcheck_` and is a contract (docs/metrics.md). Labels
//! stay low-cardinality: targets and transports, never a namespace or a per-query value.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The registry prefix.
pub const PREFIX: &str = "coredns_healthcheck";

/// Default latency buckets, in seconds: 0.5 ms to 10 s. 4.5 s and 5.5 s bracket the 5 s glibc
/// resolver timeout, so queries that only succeeded on a retry after a lost UDP packet (the
/// conntrack race) land in a bucket of their own.
pub const DEFAULT_LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.5, 5.5, 10.0,
];

/// Every family this crate registers: (name without the prefix, OpenMetrics type). A test
/// scrapes a registry with every family set and checks it against this list, so it cannot drift.
pub const FAMILIES: &[(&str, &str)] = &[
    ("dns_queries", "counter"),
    ("dns_query_duration_seconds", "histogram"),
    ("target_up", "gauge"),
    ("failures", "counter"),
    ("rounds", "counter"),
    ("round_duration_seconds", "histogram"),
    ("netns_checked", "gauge"),
    ("netns_unhealthy", "gauge"),
    ("netns_findings", "gauge"),
    ("build_info", "gauge"),
    ("remediations", "counter"),
    ("pod_restarts", "counter"),
    ("oom_kills", "counter"),
    ("memory_limit_bytes", "gauge"),
    ("leader", "gauge"),
];

/// The sample names a family of this type exposes (`_total` for counters, `_bucket`, `_sum`,
/// `_count` for histograms), with the prefix: what PromQL can reference.
pub fn sample_names() -> Vec<String> {
    FAMILIES
        .iter()
        .flat_map(|(name, ty)| {
            let base = format!("{PREFIX}_{name}");
            match *ty {
                "counter" => vec![format!("{base}_total")],
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{base}{s}"))
                    .collect(),
                _ => vec![base],
            }
        })
        .collect()
}

/// Where a query was sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The agent's own (node) network namespace.
    Host,
    /// A pod's network namespace.
    Pod,
}

impl Source {
    /// `host` or `pod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Host => "host",
            Source::Pod => "pod",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryLabels {
    target: String,
    transport: String,
    source: String,
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LatencyLabels {
    target: String,
    transport: String,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TargetLabels {
    target: String,
    transport: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    target: String,
    transport: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RemediationLabels {
    action: String,
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// Makes histograms with the configured buckets (a closure cannot be cloned with its family).
#[derive(Debug, Clone)]
struct Buckets(Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

type HistogramFamily<L> = Family<L, Histogram, Buckets>;

/// Handles to every family. Create with [`Metrics::new`], then [`Metrics::register`] into a
/// registry (which may also hold a caller's own families).
#[derive(Debug)]
pub struct Metrics {
    queries: Family<QueryLabels, Counter>,
    latency: HistogramFamily<LatencyLabels>,
    target_up: Family<TargetLabels, Gauge>,
    failures: Family<FailureLabels, Counter>,
    rounds: Counter,
    round_duration: Histogram,
    netns_checked: Gauge,
    netns_unhealthy: Gauge,
    netns_findings: Family<CodeLabels, Gauge>,
    build_info: Family<VersionLabels, Gauge>,
    remediations: Family<RemediationLabels, Counter>,
    pod_restarts: Counter,
    oom_kills: Counter,
    memory_limit: Family<DeploymentLabels, Gauge>,
    leader: Gauge,
    finding_codes: Mutex<BTreeSet<String>>,
}

/// A metric name or bucket list that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BucketsError {
    /// Buckets must be positive, finite and strictly increasing.
    #[error("latency buckets must be positive, finite and strictly increasing, got {0:?}")]
    Invalid(Vec<f64>),
}

impl Metrics {
    /// Families with these latency buckets (seconds; see [`DEFAULT_LATENCY_BUCKETS`]).
    pub fn new(latency_buckets: &[f64]) -> Result<Self, BucketsError> {
        let ok = !latency_buckets.is_empty()
            && latency_buckets.iter().all(|b| b.is_finite() && *b > 0.0)
            && latency_buckets.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            return Err(BucketsError::Invalid(latency_buckets.to_vec()));
        }
        Ok(Metrics {
            queries: Family::default(),
            latency: Family::new_with_constructor(Buckets(latency_buckets.into())),
            target_up: Family::default(),
            failures: Family::default(),
            rounds: Counter::default(),
            round_duration: Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
            ]),
            netns_checked: Gauge::default(),
            netns_unhealthy: Gauge::default(),
            netns_findings: Family::default(),
            build_info: Family::default(),
            remediations: Family::default(),
            pod_restarts: Counter::default(),
            oom_kills: Counter::default(),
            memory_limit: Family::default(),
            leader: Gauge::default(),
            finding_codes: Mutex::new(BTreeSet::new()),
        })
    }

    /// Registers every family under [`PREFIX`] in `registry`, and sets `build_info{version}`.
    pub fn register(self, registry: &mut Registry, version: &str) -> Self {
        let r = registry.sub_registry_with_prefix(PREFIX);
        r.register(
            "dns_queries",
            "DNS queries sent, by target, transport, source (host|pod) and result (ok or the failure kind)",
            self.queries.clone(),
        );
        r.register(
            "dns_query_duration_seconds",
            "Round-trip time of answered DNS queries",
            self.latency.clone(),
        );
        r.register(
            "target_up",
            "1 when the target answers correctly over the transport, after the failure/success thresholds",
            self.target_up.clone(),
        );
        r.register(
            "failures",
            "Failed DNS queries by reason (the failure kind)",
            self.failures.clone(),
        );
        r.register("rounds", "Completed checking rounds", self.rounds.clone());
        r.register(
            "round_duration_seconds",
            "Duration of a checking round",
            self.round_duration.clone(),
        );
        r.register(
            "netns_checked",
            "Pod network namespaces with a known state (checked in the current rotation)",
            self.netns_checked.clone(),
        );
        r.register(
            "netns_unhealthy",
            "Pod network namespaces that cannot resolve correctly",
            self.netns_unhealthy.clone(),
        );
        r.register(
            "netns_findings",
            "Pod network namespaces currently showing each finding code",
            self.netns_findings.clone(),
        );
        r.register(
            "build_info",
            "Build information; always 1",
            self.build_info.clone(),
        );
        r.register(
            "remediations",
            "Remediation actions by action (evict, raise-memory, rollout-restart, report) and result",
            self.remediations.clone(),
        );
        r.register(
            "pod_restarts",
            "CoreDNS container restarts observed while running",
            self.pod_restarts.clone(),
        );
        r.register(
            "oom_kills",
            "CoreDNS container restarts observed whose last termination was OOMKilled",
            self.oom_kills.clone(),
        );
        r.register(
            "memory_limit_bytes",
            "Memory limit of the CoreDNS container, by Deployment",
            self.memory_limit.clone(),
        );
        r.register(
            "leader",
            "1 on the replica that holds the remediation Lease",
            self.leader.clone(),
        );
        self.build_info
            .get_or_create(&VersionLabels {
                version: version.to_owned(),
            })
            .set(1);
        self
    }

    /// Counts one query and, when it was answered, observes its round-trip time.
    pub fn observe_query(
        &self,
        target: &str,
        transport: &str,
        source: Source,
        result: &str,
        rtt: Option<Duration>,
    ) {
        self.queries
            .get_or_create(&QueryLabels {
                target: target.to_owned(),
                transport: transport.to_owned(),
                source: source.as_str().to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if result != "ok" {
            self.failures
                .get_or_create(&FailureLabels {
                    target: target.to_owned(),
                    transport: transport.to_owned(),
                    reason: result.to_owned(),
                })
                .inc();
        }
        if let Some(rtt) = rtt {
            self.latency
                .get_or_create(&LatencyLabels {
                    target: target.to_owned(),
                    transport: transport.to_owned(),
                    source: source.as_str().to_owned(),
                })
                .observe(rtt.as_secs_f64());
        }
    }

    /// Counts one report of `source` (see [`Metrics::observe_query`]).
    pub fn observe_report(&self, r: &dnsprobe::ProbeReport, source: Source) {
        self.observe_query(
            &r.target.to_string(),
            r.transport.as_str(),
            source,
            r.result_label(),
            r.rtt,
        );
    }

    /// Sets `target_up` from a pair's state after thresholds; nothing while it is unknown.
    pub fn set_target_state(&self, t: &dnsprobe::TargetHealth) {
        match t.health.state {
            dnsprobe::HealthState::Unknown => {}
            s => self.set_target_up(
                &t.target.to_string(),
                t.transport.as_str(),
                s == dnsprobe::HealthState::Up,
            ),
        }
    }

    /// Sets `target_up` for a target and transport.
    pub fn set_target_up(&self, target: &str, transport: &str, up: bool) {
        self.target_up
            .get_or_create(&TargetLabels {
                target: target.to_owned(),
                transport: transport.to_owned(),
            })
            .set(i64::from(up));
    }

    /// Forgets a target that is no longer probed (its `target_up` series goes away).
    pub fn forget_target(&self, target: &str, transport: &str) {
        self.target_up.remove(&TargetLabels {
            target: target.to_owned(),
            transport: transport.to_owned(),
        });
    }

    /// Counts a remediation action and its result.
    pub fn remediation(&self, action: &str, result: &str) {
        self.remediations
            .get_or_create(&RemediationLabels {
                action: action.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Adds observed CoreDNS restarts, and how many of them were OOM kills.
    pub fn pod_restarts(&self, restarts: u64, oom_kills: u64) {
        self.pod_restarts.inc_by(restarts);
        self.oom_kills.inc_by(oom_kills);
    }

    /// Sets the memory limit of a Deployment's CoreDNS container.
    pub fn set_memory_limit(&self, deployment: &str, bytes: u64) {
        self.memory_limit
            .get_or_create(&DeploymentLabels {
                deployment: deployment.to_owned(),
            })
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets `leader`.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Counts a completed round.
    pub fn round_done(&self, duration: Duration) {
        self.rounds.inc();
        self.round_duration.observe(duration.as_secs_f64());
    }

    /// Sets the namespace gauges from a [`hc_netns::NamespaceBook`]'s summary.
    pub fn set_netns_summary(&self, s: &hc_netns::NamespaceSummary) {
        self.set_netns(s.checked, s.unhealthy, &s.codes);
    }

    /// Sets the namespace gauges: how many have a known state, how many are unhealthy, and per
    /// finding code how many show it. Codes seen before and absent now go to 0.
    pub fn set_netns(&self, checked: usize, unhealthy: usize, findings: &[(String, usize)]) {
        self.netns_checked.set(checked as i64);
        self.netns_unhealthy.set(unhealthy as i64);
        let mut known = self.finding_codes.lock().unwrap_or_else(|p| p.into_inner());
        for code in known.iter() {
            if !findings.iter().any(|(c, _)| c == code) {
                self.netns_findings
                    .get_or_create(&CodeLabels { code: code.clone() })
                    .set(0);
            }
        }
        for (code, n) in findings {
            known.insert(code.clone());
            self.netns_findings
                .get_or_create(&CodeLabels { code: code.clone() })
                .set(*n as i64);
        }
    }
}
