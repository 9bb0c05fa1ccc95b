//! The probing plan: which node probes which CoreDNS pod, so that each pod is probed by a few
//! nodes per epoch whatever the size of the cluster, and the controller knows whom to ask.
//!
//! Each node takes, in each epoch, the `pods_per_epoch` pods with the highest rendezvous score
//! for (node name, pod UID, epoch number). The score is a fixed-key hash, so the controller
//! computes the same choice as the agents: to learn about pod X it reads the agents that
//! probed X in the last epoch ([`Observers`]), instead of hoping a random sample did. The
//! epoch is wall-clock time (`unix time / epoch`), so agents started at different moments agree.
//!
//! The controller publishes the plan in the ConfigMap [`PLAN_CONFIGMAP`] (keys `nodes`,
//! `pods-per-epoch`, `epoch-ms`); agents watch it. Without it (no controller yet) an agent takes
//! [`DEFAULT_OBSERVERS`] pods per [`DEFAULT_EPOCH`].

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The ConfigMap in which the controller publishes the probing plan, in the CoreDNS namespace.
pub const PLAN_CONFIGMAP: &str = "coredns-healthcheck-plan";

/// Nodes that should probe each CoreDNS pod in every epoch.
pub const DEFAULT_OBSERVERS: usize = 3;

/// The epoch without a plan: a minute. The controller's plan makes it half its window, so a
/// window always holds one whole epoch.
pub const DEFAULT_EPOCH: Duration = Duration::from_secs(60);

/// What the controller tells the agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbingPlan {
    /// Nodes with an agent.
    pub nodes: usize,
    /// CoreDNS pods each node probes per epoch.
    pub pods_per_epoch: usize,
    /// The epoch.
    pub epoch: Duration,
}

impl ProbingPlan {
    /// The plan for `nodes` nodes and `pods` CoreDNS pods: enough pods per node for
    /// [`DEFAULT_OBSERVERS`] observers per pod and epoch.
    pub fn new(nodes: usize, pods: usize, epoch: Duration) -> ProbingPlan {
        ProbingPlan {
            nodes,
            pods_per_epoch: pods_per_epoch(DEFAULT_OBSERVERS, pods, Some(nodes)),
            epoch: epoch.max(Duration::from_millis(100)),
        }
    }

    /// Reads the ConfigMap's data; `None` when a key is missing or malformed (an agent then
    /// keeps to the defaults, and says nothing more than the watch does).
    pub fn from_data(data: &BTreeMap<String, String>) -> Option<ProbingPlan> {
        let get = |k: &str| data.get(k)?.trim().parse::<u64>().ok();
        Some(ProbingPlan {
            nodes: usize::try_from(get("nodes")?).ok()?,
            pods_per_epoch: usize::try_from(get("pods-per-epoch")?).ok()?,
            epoch: Duration::from_millis(get("epoch-ms")?.max(100)),
        })
    }

    /// The ConfigMap's data.
    pub fn to_data(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("nodes".to_owned(), self.nodes.to_string()),
            ("pods-per-epoch".to_owned(), self.pods_per_epoch.to_string()),
            ("epoch-ms".to_owned(), self.epoch.as_millis().to_string()),
        ])
    }
}

/// Pods per node and epoch so that each of `pods` is probed by `observers` nodes:
/// `ceil(observers x pods / nodes)`, at least one and at most all of them; `observers` when the
/// number of nodes is unknown.
pub fn pods_per_epoch(observers: usize, pods: usize, nodes: Option<usize>) -> usize {
    let want = match nodes {
        Some(n) if n > 0 => (observers * pods).div_ceil(n),
        _ => observers,
    };
    want.clamp(usize::from(pods > 0), pods)
}

/// The number of the epoch `at` falls in.
pub fn epoch_of(at: SystemTime, epoch: Duration) -> u64 {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    (ms / epoch.as_millis().max(1)) as u64
}

/// When epoch `n` starts.
pub fn epoch_start(n: u64, epoch: Duration) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(n.saturating_mul(epoch.as_millis() as u64))
}

/// The rendezvous score of (node, pod, epoch).
pub fn score(node: &str, pod: &str, epoch: u64) -> u64 {
    // SipHash with fixed keys (`DefaultHasher::new`): the same score in every process of a
    // release, the agents' and the controller's.
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write(node.as_bytes());
    h.write_u8(0);
    h.write(pod.as_bytes());
    h.write_u64(epoch);
    h.finish()
}

/// The `k` pods (by UID) `node` probes in epoch `epoch`, highest score first.
pub fn sample<'a>(node: &str, pods: &[&'a str], k: usize, epoch: u64) -> Vec<&'a str> {
    let mut ranked: Vec<(u64, &str)> = pods.iter().map(|p| (score(node, p, epoch), *p)).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.into_iter().take(k).map(|(_, p)| p).collect()
}

/// For one epoch: which nodes probe each pod (the controller's side of [`sample`]), computed
/// once per epoch and set of nodes and pods.
#[derive(Debug, Clone, Default)]
pub struct Observers {
    key: Option<(u64, usize, usize, usize)>,
    by_pod: BTreeMap<String, Vec<usize>>,
}

impl Observers {
    /// The indices into `nodes` of the nodes that probe each pod in `epoch`, `k` pods each.
    pub fn of(
        &mut self,
        nodes: &[&str],
        pods: &[&str],
        k: usize,
        epoch: u64,
    ) -> &BTreeMap<String, Vec<usize>> {
        let key = (epoch, nodes.len(), pods.len(), k);
        if self.key != Some(key) {
            self.by_pod.clear();
            for (i, node) in nodes.iter().enumerate() {
                for p in sample(node, pods, k, epoch) {
                    self.by_pod.entry(p.to_owned()).or_default().push(i);
                }
            }
            self.key = Some(key);
        }
        &self.by_pod
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_per_epoch_covers_every_pod_with_three_observers() {
        assert_eq!(pods_per_epoch(3, 100, Some(5000)), 1);
        assert_eq!(pods_per_epoch(3, 10, Some(100)), 1);
        assert_eq!(pods_per_epoch(3, 10, Some(10)), 3);
        assert_eq!(
            pods_per_epoch(3, 2, Some(2)),
            2,
            "all of them in a small cluster"
        );
        assert_eq!(pods_per_epoch(3, 2, None), 2);
        assert_eq!(pods_per_epoch(3, 100, None), 3);
        assert_eq!(pods_per_epoch(3, 0, Some(3)), 0);
    }

    #[test]
    fn the_sample_spreads_over_nodes_and_rotates() {
        let pods: Vec<String> = (0..10).map(|i| format!("uid-{i}")).collect();
        let refs: Vec<&str> = pods.iter().map(String::as_str).collect();
        let names: Vec<String> = (0..1000).map(|n| format!("node-{n}")).collect();
        let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut obs = Observers::default();
        let by_pod = obs.of(&nodes, &refs, 1, 7);
        assert_eq!(by_pod.values().map(Vec::len).sum::<usize>(), 1000);
        // 1,000 nodes, one pod each: about 100 observers per pod, every pod observed.
        assert_eq!(by_pod.len(), 10);
        assert!(
            by_pod.values().all(|n| (60..=140).contains(&n.len())),
            "{by_pod:?}"
        );
        // The controller's answer is the agents' own choice.
        for (pod, ns) in by_pod {
            for i in ns {
                assert_eq!(sample(nodes[*i], &refs, 1, 7), vec![pod.as_str()]);
            }
        }
        // A node's choice changes with the epoch.
        let picks: std::collections::BTreeSet<&str> = (0..40)
            .flat_map(|e| sample("node-1", &refs, 1, e))
            .collect();
        assert!(picks.len() >= 5, "{picks:?}");
    }

    #[test]
    fn the_plan_round_trips_and_rejects_nonsense() {
        let p = ProbingPlan::new(5000, 100, Duration::from_secs(60));
        assert_eq!(p.pods_per_epoch, 1);
        assert_eq!(ProbingPlan::from_data(&p.to_data()), Some(p));
        let mut bad = p.to_data();
        bad.insert("nodes".into(), "-3".into());
        assert_eq!(ProbingPlan::from_data(&bad), None);
        bad.remove("nodes");
        assert_eq!(ProbingPlan::from_data(&bad), None);
    }

    #[test]
    fn epochs_are_wall_clock() {
        let e = Duration::from_secs(60);
        let at = UNIX_EPOCH + Duration::from_secs(3_600 + 59);
        assert_eq!(epoch_of(at, e), 60);
        assert_eq!(epoch_start(60, e), UNIX_EPOCH + Duration::from_secs(3_600));
    }
}
