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
/// resolver timeout: in `client_lookup_duration_seconds` (what a glibc client waits for a short
/// name, walked through a pod's resolv.conf) a lookup that only succeeded after a lost UDP packet
/// and the resolver's retry (the conntrack race) lands in a bucket of its own. A probe's own
/// round-trip time (`dns_query_duration_seconds`) never exceeds `--timeout`.
pub const DEFAULT_LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.5, 5.5, 10.0,
];

/// Every family the agent ([`Metrics`]) registers: (name without the prefix, OpenMetrics
/// type). A test scrapes a registry with every family set and checks it against this list, so it
/// cannot drift.
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
    ("query_budget", "gauge"),
    ("netns_oldest_check_seconds", "gauge"),
    ("budget_limited", "gauge"),
    ("client_lookups", "counter"),
    ("client_lookup_queries", "counter"),
    ("client_lookup_duration_seconds", "histogram"),
    ("conntrack_stat", "counter"),
    ("parallel_queries", "counter"),
    ("conntrack_stale_entries", "gauge"),
    ("probes_not_started", "counter"),
    ("api_dns_checks", "counter"),
    ("api_dns_up", "gauge"),
];

/// Every family the controller ([`ControllerMetrics`]) registers, as [`FAMILIES`].
pub const CONTROLLER_FAMILIES: &[(&str, &str)] = &[
    ("rounds", "counter"),
    ("round_duration_seconds", "histogram"),
    ("build_info", "gauge"),
    ("remediations", "counter"),
    ("decisions", "counter"),
    ("pod_restarts", "counter"),
    ("oom_kills", "counter"),
    ("memory_limit_bytes", "gauge"),
    ("leader", "gauge"),
    ("pod_reachable_ratio", "gauge"),
    ("pod_nodes_reporting", "gauge"),
    ("service_reachable_ratio", "gauge"),
    ("nodes_reporting", "gauge"),
    ("verdicts", "gauge"),
    ("agent_reads", "counter"),
    ("watch_up", "gauge"),
    ("service_propagation_seconds", "histogram"),
    ("freshness_checks", "counter"),
    ("freshness_followed", "gauge"),
    ("stale_records", "gauge"),
    ("coredns_http_up", "gauge"),
    ("health_gap", "gauge"),
];

/// The sample names the agent's and the controller's families expose (`_total` for counters,
/// `_bucket`, `_sum`, `_count` for histograms), with the prefix: what PromQL can reference.
pub fn sample_names() -> Vec<String> {
    FAMILIES
        .iter()
        .chain(CONTROLLER_FAMILIES)
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
struct ConntrackLabels {
    stat: String,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ParallelLabels {
    target: String,
    lost: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LookupLabels {
    result: String,
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
    not_started: Family<LatencyLabels, Counter>,
    rounds: Counter,
    round_duration: Histogram,
    netns_checked: Gauge,
    netns_unhealthy: Gauge,
    netns_findings: Family<CodeLabels, Gauge>,
    build_info: Family<VersionLabels, Gauge>,
    query_budget: Ratio,
    netns_oldest: Ratio,
    budget_limited: Gauge,
    client_lookups: Family<LookupLabels, Counter>,
    client_queries: Counter,
    client_wait: Histogram,
    conntrack: Family<ConntrackLabels, Counter>,
    parallel: Family<ParallelLabels, Counter>,
    conntrack_stale: Gauge,
    finding_codes: Mutex<BTreeSet<String>>,
    api_dns_checks: Family<ResultLabels, Counter>,
    api_dns_up: Gauge,
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
            not_started: Family::default(),
            rounds: Counter::default(),
            round_duration: Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
            ]),
            netns_checked: Gauge::default(),
            netns_unhealthy: Gauge::default(),
            netns_findings: Family::default(),
            build_info: Family::default(),
            query_budget: Ratio::default(),
            netns_oldest: Ratio::default(),
            budget_limited: Gauge::default(),
            client_lookups: Family::default(),
            client_queries: Counter::default(),
            client_wait: Histogram::new(latency_buckets.iter().copied()),
            conntrack: Family::default(),
            parallel: Family::default(),
            conntrack_stale: Gauge::default(),
            finding_codes: Mutex::new(BTreeSet::new()),
            api_dns_checks: Family::default(),
            api_dns_up: Gauge::default(),
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
        r.register(
            "probes_not_started",
            "Probes that could not start (no socket: out of descriptors or buffers): not queries, not failures of the target",
            self.not_started.clone(),
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
            "query_budget",
            "DNS queries per second the agent may send on average (--query-budget)",
            self.query_budget.clone(),
        );
        r.register(
            "netns_oldest_check_seconds",
            "Age of the least recently checked pod namespace's last check",
            self.netns_oldest.clone(),
        );
        r.register(
            "budget_limited",
            "1 when the last round checked fewer pod namespaces than needed, for the query budget",
            self.budget_limited.clone(),
        );
        r.register(
            "api_dns_checks",
            "Checks of the API server through cluster DNS (resolve kubernetes.default.svc, TLS handshake), by result (ok, dns, wrong-address, connect, tls)",
            self.api_dns_checks.clone(),
        );
        r.register(
            "api_dns_up",
            "1 when the last check of the API server through cluster DNS passed",
            self.api_dns_up.clone(),
        );
        r.register(
            "client_lookups",
            "Short names resolved through a pod's own resolv.conf as glibc would, by result (answered, not-found, failed, incomplete)",
            self.client_lookups.clone(),
        );
        r.register(
            "client_lookup_queries",
            "Queries a glibc client sends for those lookups (per lookup: the search amplification)",
            self.client_queries.clone(),
        );
        r.register(
            "client_lookup_duration_seconds",
            "How long a glibc client waits for those lookups, its retry timeouts included",
            self.client_wait.clone(),
        );
        r.register(
            "conntrack_stat",
            "Growth of the kernel's conntrack counters (insert_failed, drop, early_drop, clash_resolve, invalid) seen by the agent, in the node's namespace (source host, between rounds) and in pod namespaces (source pod, during their checks)",
            self.conntrack.clone(),
        );
        r.register(
            "parallel_queries",
            "A and AAAA questions sent back to back from one socket (the conntrack race check), by target and which answer was lost (none, a, aaaa, both)",
            self.parallel.clone(),
        );
        r.register(
            "conntrack_stale_entries",
            "UDP conntrack entries of the node to a DNS Service address that lead to an address no longer a DNS endpoint, at the last check",
            self.conntrack_stale.clone(),
        );
        for stat in hc_netns::WATCHED {
            for source in [Source::Host, Source::Pod] {
                let _ = self.conntrack.get_or_create(&ConntrackLabels {
                    stat: stat.to_owned(),
                    source: source.as_str().to_owned(),
                });
            }
        }
        self.build_info
            .get_or_create(&VersionLabels {
                version: version.to_owned(),
            })
            .set(1);
        for result in ["answered", "not-found", "failed", "incomplete"] {
            let _ = self.client_lookups.get_or_create(&LookupLabels {
                result: result.into(),
            });
        }
        self
    }

    /// Creates the `api_dns_checks_total` series at 0 (in Kubernetes mode, where the check
    /// runs), so that `increase()` sees the first failure.
    pub fn api_dns_enabled(&self) {
        for result in crate::ApiDnsStatus::RESULTS {
            let _ = self.api_dns_checks.get_or_create(&ResultLabels {
                result: result.into(),
            });
        }
    }

    /// Counts one check of the API server through cluster DNS and sets `api_dns_up`.
    pub fn api_dns(&self, s: &crate::ApiDnsStatus) {
        self.api_dns_checks
            .get_or_create(&ResultLabels {
                result: s.result.clone(),
            })
            .inc();
        self.api_dns_up.set(i64::from(s.ok()));
    }

    /// Counts one client lookup walked through a pod's resolv.conf: its result, the queries a
    /// glibc client sends, and (unless the walk stopped early) how long that client waits.
    pub fn observe_client_lookup(&self, c: &hc_netns::ClientLookup) {
        self.client_lookups
            .get_or_create(&LookupLabels {
                result: c.result.as_str().to_owned(),
            })
            .inc();
        if c.result != hc_netns::LookupResult::Incomplete {
            self.client_queries.inc_by(u64::from(c.queries));
            self.client_wait.observe(c.wait.as_secs_f64());
        }
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
        if result == dnsprobe::FailureKind::NotProbed.as_str() {
            // Nothing was sent: not a query, not the target's failure.
            self.not_started
                .get_or_create(&LatencyLabels {
                    target: target.to_owned(),
                    transport: transport.to_owned(),
                    source: source.as_str().to_owned(),
                })
                .inc();
            return;
        }
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

    /// Creates at 0 the node's (`source="host"`) `dns_queries_total` series of a target and
    /// transport for `ok` and every failure kind, and its `failures_total` series for every
    /// failure kind that counts against a target (not `not-probed`), so that `increase()` sees
    /// the first failure of a target once it is known.
    /// Idempotent: counts already made stay.
    pub fn target_known(&self, target: &str, transport: &str) {
        let kinds = dnsprobe::FailureKind::ALL.map(dnsprobe::FailureKind::as_str);
        for result in std::iter::once("ok").chain(kinds) {
            let _ = self.queries.get_or_create(&QueryLabels {
                target: target.to_owned(),
                transport: transport.to_owned(),
                source: Source::Host.as_str().to_owned(),
                result: result.to_owned(),
            });
        }
        // A probe that could not start is no failure of the target: it has no failure series.
        let failures = dnsprobe::FailureKind::ALL
            .into_iter()
            .filter(|k| k.counts_against_target());
        for reason in failures.map(dnsprobe::FailureKind::as_str) {
            let _ = self.failures.get_or_create(&FailureLabels {
                target: target.to_owned(),
                transport: transport.to_owned(),
                reason: reason.to_owned(),
            });
        }
    }

    /// Counts one report of `source` (see [`Metrics::observe_query`]), and its parallel
    /// questions' outcome when it had them.
    pub fn observe_report(&self, r: &dnsprobe::ProbeReport, source: Source) {
        self.observe_query(
            &r.target.to_string(),
            r.transport.as_str(),
            source,
            r.result_label(),
            r.rtt,
        );
        if let Some(p) = r.parallel {
            self.parallel
                .get_or_create(&ParallelLabels {
                    target: r.target.to_string(),
                    lost: p.lost_label().to_owned(),
                })
                .inc();
        }
    }

    /// Adds the growth of the conntrack counters seen in `source`'s namespace.
    pub fn observe_conntrack(&self, source: Source, growth: &hc_netns::ConntrackGrowth) {
        for (stat, n) in growth.iter() {
            self.conntrack
                .get_or_create(&ConntrackLabels {
                    stat: stat.to_owned(),
                    source: source.as_str().to_owned(),
                })
                .inc_by(n);
        }
    }

    /// Sets how many stale UDP conntrack entries to the DNS Service the last check found.
    pub fn set_conntrack_stale(&self, entries: usize) {
        self.conntrack_stale.set(entries as i64);
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

    /// Counts a completed round.
    pub fn round_done(&self, duration: Duration) {
        self.rounds.inc();
        self.round_duration.observe(duration.as_secs_f64());
    }

    /// Sets the namespace gauges from a [`hc_netns::NamespaceBook`]'s summary.
    pub fn set_netns_summary(&self, s: &hc_netns::NamespaceSummary) {
        self.set_netns(s.checked, s.unhealthy, &s.codes);
        self.netns_oldest
            .set(s.oldest_check.map_or(0.0, |d| d.as_secs_f64()));
    }

    /// Sets the query budget (queries per second) and whether it limited the last round.
    pub fn set_budget(&self, qps: f64, limited: bool) {
        self.query_budget.set(qps);
        self.budget_limited.set(i64::from(limited));
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

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    verdict: String,
    action: String,
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PodTransportLabels {
    pod: String,
    transport: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PodLabels {
    pod: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransportLabels {
    transport: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WatchLabels {
    watch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FreshnessLabels {
    event: String,
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    pod: String,
    endpoint: String,
}

type Ratio = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The changes the freshness check follows: a Service `added`, `changed` (recreated with
/// another address) or `deleted`.
pub const FRESHNESS_EVENTS: [&str; 3] = ["added", "changed", "deleted"];
/// How a followed change ends, or `skipped` when the cap of followed Services was reached.
pub const FRESHNESS_RESULTS: [&str; 4] = ["propagated", "stale", "not-propagated", "skipped"];
/// Buckets of `service_propagation_seconds`: 50 ms to 2 minutes.
pub const PROPAGATION_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// The verdict kinds, created at 0 so that `increase()` and alerts see the first one.
pub const VERDICT_KINDS: [&str; 4] = ["pod", "node", "service", "all"];
/// Actions and results created at 0 for `remediations_total`.
pub const ACTIONS: [&str; 4] = ["evict", "raise-memory", "rollout-restart", "node-event"];
/// Results of an action.
pub const RESULTS: [&str; 5] = ["success", "dry-run", "retry-later", "refused", "error"];
/// The (verdict, action) pairs the controller decides, created at 0 in `decisions_total`: with
/// every result of [`RESULTS`] for an action, with `reported` for a `report`.
pub const DECISIONS: [(&str, &str); 9] = [
    ("pod", "evict"),
    ("pod", "report"),
    ("oom", "raise-memory"),
    ("oom", "report"),
    ("node", "node-event"),
    ("service", "report"),
    ("all", "report"),
    ("all", "rollout-restart"),
    ("api", "report"),
];

/// The controller's families: the view (per CoreDNS pod, the share of nodes reaching it; nodes
/// reporting), the verdicts and decisions, the remediation outcomes, the CoreDNS restarts and
/// memory limits it watches, leadership, its reads of the agents and its watches.
#[derive(Debug)]
pub struct ControllerMetrics {
    rounds: Counter,
    round_duration: Histogram,
    build_info: Family<VersionLabels, Gauge>,
    remediations: Family<RemediationLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    pod_restarts: Counter,
    oom_kills: Counter,
    memory_limit: Family<DeploymentLabels, Gauge>,
    leader: Gauge,
    pod_reachable: Family<PodTransportLabels, Ratio>,
    pod_nodes: Family<PodLabels, Gauge>,
    service_reachable: Family<TransportLabels, Ratio>,
    nodes_reporting: Gauge,
    verdicts: Family<KindLabels, Gauge>,
    agent_reads: Family<ResultLabels, Counter>,
    watch_up: Family<WatchLabels, Gauge>,
    pods_shown: Mutex<BTreeSet<String>>,
    propagation: HistogramFamily<EventLabels>,
    freshness_checks: Family<FreshnessLabels, Counter>,
    freshness_followed: Gauge,
    stale_records: Gauge,
    coredns_http_up: Family<EndpointLabels, Gauge>,
    health_gap: Family<PodLabels, Gauge>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics {
            rounds: Counter::default(),
            round_duration: Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
            ]),
            build_info: Family::default(),
            remediations: Family::default(),
            decisions: Family::default(),
            pod_restarts: Counter::default(),
            oom_kills: Counter::default(),
            memory_limit: Family::default(),
            leader: Gauge::default(),
            pod_reachable: Family::default(),
            pod_nodes: Family::default(),
            service_reachable: Family::default(),
            nodes_reporting: Gauge::default(),
            verdicts: Family::default(),
            agent_reads: Family::default(),
            watch_up: Family::default(),
            pods_shown: Mutex::new(BTreeSet::new()),
            propagation: Family::new_with_constructor(Buckets(PROPAGATION_BUCKETS.into())),
            freshness_checks: Family::default(),
            freshness_followed: Gauge::default(),
            stale_records: Gauge::default(),
            coredns_http_up: Family::default(),
            health_gap: Family::default(),
        }
    }
}

impl ControllerMetrics {
    /// Registers every family under [`PREFIX`], sets `build_info{version}`, and creates at 0
    /// the label sets known up front (verdict kinds, actions and results, [`DECISIONS`]), so
    /// that `increase()` sees the first event.
    pub fn register(self, registry: &mut Registry, version: &str) -> Self {
        let r = registry.sub_registry_with_prefix(PREFIX);
        r.register("rounds", "Completed controller rounds", self.rounds.clone());
        r.register(
            "round_duration_seconds",
            "Duration of a controller round",
            self.round_duration.clone(),
        );
        r.register(
            "build_info",
            "Build information; always 1",
            self.build_info.clone(),
        );
        r.register(
            "remediations",
            "Remediation actions by action (evict, raise-memory, rollout-restart, node-event) and result (success, dry-run, retry-later, refused, error)",
            self.remediations.clone(),
        );
        r.register(
            "decisions",
            "Decisions by verdict (pod, node, service, all, oom; api for a round paused by a stale watch), action (the action, or report) and result",
            self.decisions.clone(),
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
            "1 on the controller replica that holds the Lease",
            self.leader.clone(),
        );
        r.register(
            "pod_reachable_ratio",
            "Per CoreDNS pod and transport, the share of nodes reporting in the window whose last probe answered",
            self.pod_reachable.clone(),
        );
        r.register(
            "pod_nodes_reporting",
            "Per CoreDNS pod, the nodes that reported on it in the window",
            self.pod_nodes.clone(),
        );
        r.register(
            "service_reachable_ratio",
            "Per transport, the share of nodes reporting in the window whose last probe of the DNS Service answered",
            self.service_reachable.clone(),
        );
        r.register(
            "nodes_reporting",
            "Nodes with an agent report in the window",
            self.nodes_reporting.clone(),
        );
        r.register(
            "verdicts",
            "Current verdicts by kind (pod, node, service, all)",
            self.verdicts.clone(),
        );
        r.register(
            "agent_reads",
            "Reads of agents' /status by result (ok, error)",
            self.agent_reads.clone(),
        );
        r.register(
            "watch_up",
            "1 while a watch of the Kubernetes API is synced and healthy",
            self.watch_up.clone(),
        );
        self.build_info
            .get_or_create(&VersionLabels {
                version: version.to_owned(),
            })
            .set(1);
        for kind in VERDICT_KINDS {
            let _ = self
                .verdicts
                .get_or_create(&KindLabels { kind: kind.into() });
        }
        for action in ACTIONS {
            for result in RESULTS {
                let _ = self.remediations.get_or_create(&RemediationLabels {
                    action: action.into(),
                    result: result.into(),
                });
            }
        }
        for (verdict, action) in DECISIONS {
            let results: &[&str] = if action == "report" {
                &["reported"]
            } else {
                &RESULTS
            };
            for result in results {
                let _ = self.decisions.get_or_create(&DecisionLabels {
                    verdict: verdict.into(),
                    action: action.into(),
                    result: (*result).into(),
                });
            }
        }
        for result in ["ok", "error"] {
            let _ = self.agent_reads.get_or_create(&ResultLabels {
                result: result.into(),
            });
        }
        self.register_checks(r);
        self
    }

    /// The families of the freshness check and of CoreDNS's HTTP endpoints.
    fn register_checks(&self, r: &mut Registry) {
        r.register(
            "service_propagation_seconds",
            "Time from a Service change (added, changed, deleted) seen by the controller's watch to cluster DNS answering it right, by event",
            self.propagation.clone(),
        );
        r.register(
            "freshness_checks",
            "Service changes followed by the freshness check, by event (added, changed, deleted) and result (propagated, stale, not-propagated, skipped)",
            self.freshness_checks.clone(),
        );
        r.register(
            "freshness_followed",
            "Service changes followed now by the freshness check",
            self.freshness_followed.clone(),
        );
        r.register(
            "stale_records",
            "Names that still resolve to the address of a deleted or replaced Service",
            self.stale_records.clone(),
        );
        r.register(
            "coredns_http_up",
            "Per CoreDNS pod and endpoint (health, ready), 1 when its last HTTP check answered 200",
            self.coredns_http_up.clone(),
        );
        r.register(
            "health_gap",
            "Per CoreDNS pod, 1 while its HTTP health and ready endpoints say healthy and DNS fails from the nodes",
            self.health_gap.clone(),
        );
        for event in FRESHNESS_EVENTS {
            for result in FRESHNESS_RESULTS {
                let _ = self.freshness_checks.get_or_create(&FreshnessLabels {
                    event: event.into(),
                    result: result.into(),
                });
            }
        }
    }

    /// Counts how a followed Service change ended (`skipped`: not followed).
    pub fn freshness(&self, event: &str, result: &str) {
        self.freshness_checks
            .get_or_create(&FreshnessLabels {
                event: event.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Observes how long a Service change took to resolve through cluster DNS.
    pub fn propagation(&self, event: &str, seconds: f64) {
        self.propagation
            .get_or_create(&EventLabels {
                event: event.into(),
            })
            .observe(seconds);
    }

    /// Counts a completed round.
    pub fn round_done(&self, duration: Duration) {
        self.rounds.inc();
        self.round_duration.observe(duration.as_secs_f64());
    }

    /// Counts an action's outcome under its verdict (`remediations_total` for real actions,
    /// `decisions_total` for every decision, reports included).
    pub fn decision(&self, verdict: &str, action: &str, result: &str) {
        if action != "report" {
            self.remediations
                .get_or_create(&RemediationLabels {
                    action: action.into(),
                    result: result.into(),
                })
                .inc();
        }
        self.decisions
            .get_or_create(&DecisionLabels {
                verdict: verdict.into(),
                action: action.into(),
                result: result.into(),
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

    /// Counts one read of an agent's `/status`.
    pub fn agent_read(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.agent_reads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// Sets `watch_up` for a watch.
    pub fn set_watch(&self, watch: &str, up: bool) {
        self.watch_up
            .get_or_create(&WatchLabels {
                watch: watch.into(),
            })
            .set(i64::from(up));
    }

    /// The gauges of the HTTP endpoints, the health gaps and the freshness check.
    fn set_checks(&self, v: &crate::view::ControllerStatus) {
        for p in &v.pods {
            let gap = v.health_gaps.iter().any(|g| g.pod == p.name);
            self.health_gap
                .get_or_create(&PodLabels {
                    pod: p.name.clone(),
                })
                .set(i64::from(gap));
            for (e, r) in (p.http.iter()).flat_map(|h| [("health", &h.health), ("ready", &h.ready)])
            {
                let l = EndpointLabels {
                    pod: p.name.clone(),
                    endpoint: e.into(),
                };
                if r == "off" {
                    self.coredns_http_up.remove(&l);
                } else {
                    self.coredns_http_up
                        .get_or_create(&l)
                        .set(i64::from(r == "ok"));
                }
            }
        }
        let f = v.freshness.clone().unwrap_or_default();
        self.freshness_followed.set(f.followed as i64);
        self.stale_records.set(f.stale.len() as i64);
    }

    /// Sets the view's gauges from the controller's status document; pods that went away lose
    /// their series.
    pub fn set_view(&self, v: &crate::view::ControllerStatus) {
        self.nodes_reporting.set(v.agents.reporting as i64);
        let ratio = |r: &crate::view::Reach| match r.reporting() {
            0 => f64::NAN,
            n => r.reaching as f64 / n as f64,
        };
        for (t, r) in [("udp", &v.service.udp), ("tcp", &v.service.tcp)] {
            self.service_reachable
                .get_or_create(&TransportLabels {
                    transport: t.into(),
                })
                .set(ratio(r));
        }
        let mut shown = self.pods_shown.lock().unwrap_or_else(|p| p.into_inner());
        let now: BTreeSet<String> = v.pods.iter().map(|p| p.name.clone()).collect();
        for gone in shown.difference(&now) {
            self.pod_nodes.remove(&PodLabels { pod: gone.clone() });
            self.health_gap.remove(&PodLabels { pod: gone.clone() });
            for e in ["health", "ready"] {
                self.coredns_http_up.remove(&EndpointLabels {
                    pod: gone.clone(),
                    endpoint: e.into(),
                });
            }
            for t in ["udp", "tcp"] {
                self.pod_reachable.remove(&PodTransportLabels {
                    pod: gone.clone(),
                    transport: t.into(),
                });
            }
        }
        for p in &v.pods {
            self.pod_nodes
                .get_or_create(&PodLabels {
                    pod: p.name.clone(),
                })
                .set(p.nodes_reporting as i64);
            for (t, r) in [("udp", &p.udp), ("tcp", &p.tcp)] {
                self.pod_reachable
                    .get_or_create(&PodTransportLabels {
                        pod: p.name.clone(),
                        transport: t.into(),
                    })
                    .set(ratio(r));
            }
        }
        *shown = now;
        self.set_checks(v);
        for kind in VERDICT_KINDS {
            let n = v.verdicts.iter().filter(|x| x.kind == kind).count();
            self.verdicts
                .get_or_create(&KindLabels { kind: kind.into() })
                .set(n as i64);
        }
    }
}
