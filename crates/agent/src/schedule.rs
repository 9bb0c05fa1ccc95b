//! What one agent probes in a round, so that its cost does not grow with the cluster: a budget of
//! queries per second, shared by the node's own view (the Service every round; the sample of
//! CoreDNS pods the controller's plan gives it, `hc_remedy::probing`) and the pod namespaces
//! (each checked at least every `netns_every`). Pure: tested on tables, and the load model
//! ([`model`]) is the same arithmetic.
//!
//! Per node, at the defaults (1 query/s, rounds of 15 s, the Service over TCP every 4th round in
//! place of UDP, 3 observers per pod per epoch of a minute, the API server through cluster DNS
//! every 5 minutes, one pod's client path every 5 minutes, every namespace every 2 minutes):
//!
//! q/s = min(1, S / I + 1 / (8 I) + min(ceil(3 P / N), P) / 60 + 1 / 300 + 4 / 300 + M / 120)
//!
//! with S Service addresses, I the interval, P CoreDNS pods, N nodes, M pod namespaces on the
//! node; 1 / (8 I) is the AAAA companion of the first Service address's UDP probe every 8th
//! round (the conntrack race check, [`Budget::parallel_every`]). For one Service address and
//! 3 P <= N that is 0.0667 + 0.0083 + 0.0167 + 0.0033 + 0.0133 + M/120 = 0.1083 + M/120: 1
//! query/s at most for M <= 107. The kubelet's default maximum of 110 pods per node counts the
//! hostNetwork pods too (kube-proxy, the CNI's agent, this agent), which have no namespace of
//! their own: a full node has about 107 pod namespaces, each checked every 2 minutes.
//!
//! The client path ([`CLIENT_WALK_QUERIES`] a walk, `hc_netns`'s client walk) is the only
//! measure of what a glibc client waits, so it is taken regularly, but for one pod at a time:
//! walking every namespace would multiply its queries by 4. Its queries come out of the
//! namespaces' share, never on top of the budget. When the sum exceeds the
//! budget, the namespaces wait (their cycle stretches: [`Load::netns_cycle`]) and the agent says
//! so (`coredns_healthcheck_budget_limited`); when the pods alone exceed it (3 nodes, 100
//! CoreDNS pods), each node probes fewer pods than the plan asks.

use std::hash::BuildHasher;
use std::time::Duration;

use hc_remedy::probing::{DEFAULT_EPOCH, DEFAULT_OBSERVERS, pods_per_epoch};

/// The budget and its shares.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Budget {
    /// Queries per second, on average, for the whole agent.
    pub qps: f64,
    /// Time between rounds.
    pub interval: Duration,
    /// The Service is probed over TCP instead of UDP every this many rounds (0: never).
    pub tcp_every: u32,
    /// Nodes that should see each CoreDNS pod every epoch, while the controller has published
    /// no plan (the plan says how many pods each node probes).
    pub observers: usize,
    /// Each pod namespace is checked at least this often.
    pub netns_every: Duration,
    /// Namespaces checked per round at most.
    pub netns_max_per_round: usize,
    /// The API server through cluster DNS (`crate::api_dns`) this often, one DNS query each;
    /// zero: never.
    pub api_dns_every: Duration,
    /// One pod namespace's client path is walked this often (its queries paid from the
    /// namespaces' share).
    pub client_every: Duration,
    /// The first Service address's UDP probe is sent with its AAAA companion from the same
    /// socket, as glibc asks (the conntrack race check, one query more), every this many rounds
    /// (0: never); never in a round whose Service probe goes over TCP.
    pub parallel_every: u32,
}

/// Queries one client walk costs through a `ClusterFirst` pod's resolv.conf (A and AAAA of two
/// names; `hc_netns::CLUSTER_FIRST_QUERIES`): what a round charges when a walk is due.
pub const CLIENT_WALK_QUERIES: u32 = 4;

impl Default for Budget {
    fn default() -> Self {
        Budget {
            qps: 1.0,
            interval: Duration::from_secs(15),
            tcp_every: 4,
            observers: 3,
            netns_every: Duration::from_secs(120),
            netns_max_per_round: 64,
            api_dns_every: Duration::from_secs(300),
            client_every: Duration::from_secs(300),
            parallel_every: 8,
        }
    }
}

impl Budget {
    /// Queries allowed per round.
    pub fn per_round(&self) -> f64 {
        self.qps * self.interval.as_secs_f64()
    }

    /// Queries a minute for the node's fixed probes: `fixed_per_round` queries every round
    /// (a Service address is one, a target given on the command line two: UDP and TCP).
    pub fn fixed_per_minute(&self, fixed_per_round: usize) -> f64 {
        60.0 / self.interval.as_secs_f64().max(0.001) * fixed_per_round as f64
    }

    /// CoreDNS pods the budget pays for in an epoch of `epoch`, after `fixed_per_round` queries
    /// a round, the check of the API server through cluster DNS and the client walks: in an
    /// absurd cluster (3 nodes, 100 CoreDNS pods) the pods are observed less often than the plan
    /// asks, and the budget holds.
    pub fn pods_cap(&self, epoch: Duration, fixed_per_round: usize) -> usize {
        let minutes = epoch.as_secs_f64() / 60.0;
        let fixed = self.fixed_per_minute(fixed_per_round)
            + self.parallel_per_minute()
            + (self.api_dns_qps() + self.client_walk_qps()) * 60.0;
        let left = (self.qps * 60.0 - fixed) * minutes;
        left.max(0.0).floor() as usize
    }

    /// DNS queries per second of the check of the API server through cluster DNS.
    pub fn api_dns_qps(&self) -> f64 {
        if self.api_dns_every.is_zero() {
            0.0
        } else {
            1.0 / self.api_dns_every.as_secs_f64()
        }
    }

    /// Queries per second the client walks cost on average.
    pub fn client_walk_qps(&self) -> f64 {
        f64::from(CLIENT_WALK_QUERIES) / self.client_every.as_secs_f64().max(0.001)
    }

    /// Whether the first Service address's UDP probe carries its AAAA companion in round
    /// `round` (1-based): every `parallel_every`-th round from the second (rounds 2, 10, 18, ...
    /// at the defaults, between the TCP rounds 8 and 12), never in a TCP round.
    pub fn parallel_this_round(&self, round: u64) -> bool {
        let every = u64::from(self.parallel_every);
        every > 0 && round % every == 2 % every && !self.service_over_tcp(round)
    }

    /// Queries a minute the AAAA companions cost (at most one a round, by the schedule above).
    pub fn parallel_per_minute(&self) -> f64 {
        if self.parallel_every == 0 {
            return 0.0;
        }
        let period = u64::from(self.parallel_every);
        let rounds = (1..=period * u64::from(self.tcp_every.max(1)))
            .filter(|r| self.parallel_this_round(*r))
            .count() as f64
            / (period * u64::from(self.tcp_every.max(1))) as f64;
        rounds * 60.0 / self.interval.as_secs_f64().max(0.001)
    }

    /// Whether the Service is probed over TCP (instead of UDP) in round `round` (1-based).
    pub fn service_over_tcp(&self, round: u64) -> bool {
        self.tcp_every > 0 && round.is_multiple_of(u64::from(self.tcp_every))
    }
}

/// Keeps the namespace share across rounds: the fractional part carries over, so the average
/// is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NamespaceShare {
    carry: f64,
}

impl NamespaceShare {
    /// How many of `present` namespaces to check this round, given `left` queries of the round's
    /// budget after the node's own view (one query per namespace). Returns the count and whether
    /// the budget, not the need, limited it.
    pub fn take(&mut self, b: &Budget, present: usize, left: f64) -> (usize, bool) {
        if present == 0 {
            self.carry = 0.0;
            return (0, false);
        }
        let need =
            present as f64 * b.interval.as_secs_f64() / b.netns_every.as_secs_f64().max(0.001);
        let want = need + self.carry;
        let allowed = want
            .min(left.max(0.0))
            .min(b.netns_max_per_round as f64)
            .min(present as f64);
        let n = allowed.floor() as usize;
        // Carry only what the need left over (a short budget does not pile up a backlog).
        self.carry = (want - n as f64).clamp(0.0, 1.0);
        (n, allowed + 1e-9 < want.min(present as f64))
    }
}

/// One row of the load model: what the cluster of `nodes` nodes, `pods` CoreDNS pods and
/// `namespaces` pod namespaces per node costs at budget `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Load {
    /// DNS queries per second one node sends.
    pub per_node: f64,
    /// On the whole of CoreDNS.
    pub total: f64,
    /// On one CoreDNS pod (the Service's share spread evenly).
    pub per_pod: f64,
    /// Seconds until a failed CoreDNS pod has been probed by 3 nodes (on average).
    pub to_three_observers: f64,
    /// Seconds until every pod namespace of a node was checked.
    pub netns_cycle: f64,
    /// Kubernetes API requests per second from all the agents: after start, only their
    /// [`AGENT_WATCHES`] watches, each renewed every [`WATCH_RENEWAL`].
    pub api_agents: f64,
    /// TLS handshakes per second with the API server from all the agents (the check through
    /// cluster DNS; no request is sent on them).
    pub api_dns_handshakes: f64,
}

/// Watches an agent holds: the DNS Service, the `kubernetes` Service, the CoreDNS
/// EndpointSlices, the probing plan.
pub const AGENT_WATCHES: usize = 4;

/// How often a watch is renewed (the client's watch timeout): one WATCH request each time,
/// and no LIST while the watch can resume from where it was.
pub const WATCH_RENEWAL: Duration = Duration::from_secs(290);

/// Watches a controller replica holds: CoreDNS pods, their Deployments, the agent pods, and
/// every Service (the freshness check).
pub const CONTROLLER_WATCHES: usize = 4;

/// Kubernetes API requests per second of the controller, two replicas: the Lease every 2 s (the
/// holder a read and a renewing write, the other a read) and [`CONTROLLER_WATCHES`] watches
/// each; the plan's writes are rare (when the number of pods per node changes). The events of
/// the watch of Services come with the cluster's Service changes (as to every kube-proxy), not
/// as requests. Its reads of the agents' `/status` (`--sample` per round at most) and of
/// CoreDNS's HTTP endpoints go to those pods, not to the API server.
pub fn controller_api() -> f64 {
    (2.0 + 1.0) / 2.0 + 2.0 * CONTROLLER_WATCHES as f64 / WATCH_RENEWAL.as_secs_f64()
}

/// The load model of [`Budget`] (the formula in the module docs), with one Service address.
pub fn model(b: &Budget, nodes: usize, pods: usize, namespaces: usize) -> Load {
    let service = (b.fixed_per_minute(1) + b.parallel_per_minute()) / 60.0;
    let plan = pods_per_epoch(DEFAULT_OBSERVERS, pods, Some(nodes));
    let k = plan.min(b.pods_cap(DEFAULT_EPOCH, 1)) as f64;
    let sample = k / 60.0;
    let api_dns = b.api_dns_qps();
    let walks = b.client_walk_qps();
    let left = (b.qps - service - sample - api_dns - walks).max(0.0);
    let ns_need = namespaces as f64 / b.netns_every.as_secs_f64();
    let ns_rate = ns_need
        .min(left)
        .min(b.netns_max_per_round as f64 / b.interval.as_secs_f64());
    let per_node = service + sample + api_dns + walks.min(b.qps) + ns_rate;
    let total = per_node * nodes as f64;
    // Observations of one pod per minute across the cluster: each node samples k of P.
    let observers_per_minute = nodes as f64 * k / pods.max(1) as f64;
    Load {
        api_agents: nodes as f64 * AGENT_WATCHES as f64 / WATCH_RENEWAL.as_secs_f64(),
        api_dns_handshakes: nodes as f64 * api_dns,
        per_node,
        total,
        per_pod: total / pods.max(1) as f64,
        to_three_observers: if observers_per_minute > 0.0 {
            60.0 * 3.0 / observers_per_minute
        } else {
            f64::INFINITY
        },
        netns_cycle: if namespaces == 0 {
            0.0
        } else if ns_rate > 0.0 {
            namespaces as f64 / ns_rate
        } else {
            f64::INFINITY
        },
    }
}

/// A random delay in `[0, up_to)` before the first round, so that a DaemonSet rollout does not
/// make every node probe in step.
pub fn jitter(up_to: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().hash_one(0u8);
    let ms = up_to.as_millis() as u64;
    Duration::from_millis(if ms == 0 { 0 } else { r % ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_caps_the_pod_sample() {
        let b = Budget::default();
        let minute = Duration::from_secs(60);
        // 60 a minute, 4 of them for the Service, 0.5 for its AAAA companion, 0.2 for the API
        // server through cluster DNS, 0.8 for the client walks.
        assert_eq!(b.parallel_per_minute(), 0.5);
        assert_eq!(b.pods_cap(minute, 1), 54);
        assert_eq!(b.pods_cap(minute / 2, 1), 27);
        assert_eq!(b.pods_cap(minute, 20), 0, "the fixed probes take it all");
        let never = Budget {
            parallel_every: 0,
            ..b
        };
        assert_eq!(never.pods_cap(minute, 1), 55);
        // Rounds 2, 10, 18, ...: never a TCP round (4, 8, ...).
        let rounds: Vec<u64> = (1..=24).filter(|r| b.parallel_this_round(*r)).collect();
        assert_eq!(rounds, [2, 10, 18]);
        let odd = Budget {
            parallel_every: 4,
            tcp_every: 2,
            ..b
        };
        assert!(
            (1..=20).all(|r| !odd.parallel_this_round(r)),
            "always a TCP round"
        );
        assert_eq!(odd.parallel_per_minute(), 0.0);
    }

    #[test]
    fn namespaces_fit_the_budget_and_carry_their_fraction() {
        let b = Budget::default();
        // 110 namespaces, every 2 minutes, 15 s rounds: 13.75 per round on average.
        let mut share = NamespaceShare::default();
        let per_round: Vec<usize> = (0..8).map(|_| share.take(&b, 110, 15.0 - 1.0).0).collect();
        assert_eq!(
            per_round.iter().sum::<usize>(),
            110,
            "every namespace in 2 minutes: {per_round:?}"
        );
        // A short budget stretches the cycle and says so.
        let mut share = NamespaceShare::default();
        assert_eq!(share.take(&b, 110, 5.0), (5, true));
        assert!(!share.take(&b, 3, 14.0).1);
    }

    #[test]
    fn the_model_stays_within_one_query_a_second() {
        let b = Budget::default();
        for nodes in [3, 10, 100, 1000, 5000] {
            for pods in [2, 10, 100] {
                for namespaces in [0, 30, 110, 250] {
                    let l = model(&b, nodes, pods, namespaces);
                    assert!(
                        l.per_node <= 1.0 + 1e-9,
                        "{nodes}/{pods}/{namespaces}: {l:?}"
                    );
                    // Every pod observed by 3 nodes within the minute, unless the budget cannot
                    // pay for it (3 nodes, 100 CoreDNS pods: 100 queries a minute each).
                    if 3 * pods <= 54 * nodes {
                        assert!(l.to_three_observers <= 60.0 + 1e-9, "{nodes}/{pods}: {l:?}");
                    }
                    // The 2-minute cycle holds for a full node (107 pod namespaces) while
                    // CoreDNS has at most one replica per 3 nodes, and for 100 while at most 2
                    // per node.
                    let fits = (namespaces <= 107 && 3 * pods <= nodes)
                        || (namespaces <= 100 && pods <= 2 * nodes);
                    if fits {
                        let bound = if namespaces <= 108 { 120.0 } else { 122.3 };
                        assert!(l.netns_cycle <= bound + 1e-6, "{nodes}/{pods}: {l:?}");
                    }
                }
            }
        }
        let l = model(&b, 5000, 100, 107);
        assert!(l.per_node <= 1.0 && l.netns_cycle <= 120.0 + 1e-6, "{l:?}");
        // The API server through cluster DNS: one query and one TLS handshake per node every
        // 5 minutes, 16.7 a second at 5,000 nodes.
        assert!(
            (l.api_dns_handshakes - 5000.0 / 300.0).abs() < 1e-9,
            "{l:?}"
        );
        // 110 pod namespaces: the API check and the client walks stretch the cycle by 3.4 s.
        let l = model(&b, 5000, 100, 110);
        assert!(l.per_node <= 1.0 + 1e-9 && l.netns_cycle <= 124.0, "{l:?}");
        // An absurd cluster (10 nodes, 100 CoreDNS pods): the budget holds, the namespaces wait.
        let l = model(&b, 10, 100, 110);
        assert!(l.per_node <= 1.0 + 1e-9 && l.netns_cycle > 120.0, "{l:?}");
    }

    #[test]
    fn the_client_walk_is_paid_from_the_budget() {
        let b = Budget::default();
        let without = Budget {
            client_every: Duration::from_secs(86_400 * 365),
            ..b
        };
        let (l, w) = (model(&b, 100, 2, 30), model(&without, 100, 2, 30));
        assert!(
            (l.per_node - w.per_node - 4.0 / 300.0).abs() < 1e-4,
            "{l:?} {w:?}"
        );
        // A full budget: the walk takes from the namespaces, not on top.
        let (l, w) = (model(&b, 100, 2, 250), model(&without, 100, 2, 250));
        assert!(l.per_node <= 1.0 + 1e-9 && w.per_node <= 1.0 + 1e-9);
        assert!(l.netns_cycle > w.netns_cycle);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_charge_is_what_a_cluster_first_walk_costs() {
        assert_eq!(CLIENT_WALK_QUERIES, hc_netns::CLUSTER_FIRST_QUERIES);
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        let d = Duration::from_secs(15);
        assert!((0..100).all(|_| jitter(d) < d));
    }
}
