//! The node x CoreDNS-pod view: what each node's agent last saw of each CoreDNS pod (keyed by
//! pod UID, never by address: a replacement pod with the same IP starts clean) and of the DNS
//! Service, over UDP and TCP, in a sliding window. Pure: fed with agents' `/status` documents.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hc_exporter::{Reach, Role, Status};

/// UDP and TCP, in that order.
const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

/// One node's last result over one transport: answered or not, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    ok: bool,
    at: SystemTime,
}

/// Per transport (UDP, TCP), the last result.
type Pair = [Option<Seen>; 2];

fn merge(slot: &mut Option<Seen>, new: Seen) {
    // The latest wins; for two results of the same moment, a failure.
    if slot.is_none_or(|old| new.at > old.at || (new.at == old.at && !new.ok)) {
        *slot = Some(new);
    }
}

/// What the nodes saw, in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    window: Duration,
    /// pod UID -> node -> results. By pod first: a pod's nodes are one lookup, a node's pods
    /// one lookup per pod (a few hundred at most), where a flat (pod, node) map made each a scan
    /// of every pair (classifying 5,000 nodes took seconds).
    pods: BTreeMap<String, BTreeMap<String, Pair>>,
    /// node -> results for the Service's addresses (a failure of any address counts).
    service: BTreeMap<String, Pair>,
    /// pod UID -> name, from the reports (the watch of pods names them too).
    names: BTreeMap<String, String>,
}

impl View {
    /// An empty view keeping results for `window`.
    pub fn new(window: Duration) -> View {
        View {
            window,
            ..View::default()
        }
    }

    /// Takes in one agent's document. `node` names the agent's node when the document does not.
    /// Results older than the window, or that say the target was not probed, are ignored.
    pub fn observe(&mut self, status: &Status, node: &str, now: SystemTime) {
        let node = status.node.as_deref().unwrap_or(node).to_owned();
        let mut service: Pair = [None; 2];
        for t in &status.targets {
            let (Some(result), Some(ms)) = (&t.last_result, t.checked_unix_ms) else {
                continue;
            };
            if result == "not-probed" {
                continue;
            }
            let at = UNIX_EPOCH + Duration::from_millis(ms);
            if now.duration_since(at).unwrap_or_default() > self.window {
                continue;
            }
            let Some(i) = TRANSPORTS.iter().position(|x| *x == t.transport) else {
                continue;
            };
            let seen = Seen {
                ok: result == "ok",
                at,
            };
            match (t.role, &t.pod) {
                (Some(Role::Pod), Some(pod)) => {
                    let Some(uid) = &pod.uid else { continue };
                    if let Some(name) = &pod.name {
                        self.names.insert(uid.clone(), name.clone());
                    }
                    let by_node = self.pods.entry(uid.clone()).or_default();
                    let pair = by_node.entry(node.clone()).or_default();
                    merge(&mut pair[i], seen);
                }
                (Some(Role::Service), _) => {
                    // Several addresses (dual stack): one failing is the Service failing.
                    let slot = &mut service[i];
                    *slot = Some(match *slot {
                        Some(s) => Seen {
                            ok: s.ok && seen.ok,
                            at: s.at.max(seen.at),
                        },
                        None => seen,
                    });
                }
                _ => {}
            }
        }
        if service.iter().any(Option::is_some) {
            let pair = self.service.entry(node).or_default();
            for (slot, new) in pair.iter_mut().zip(service) {
                if let Some(new) = new {
                    merge(slot, new);
                }
            }
        }
    }

    /// How many nodes reported on pod `uid` since `since`.
    pub fn reporters_since(&self, uid: &str, since: SystemTime) -> usize {
        (self.pods.get(uid).into_iter().flat_map(BTreeMap::values))
            .filter(|p| p.iter().flatten().any(|s| s.at >= since))
            .count()
    }

    /// Drops results older than the window, and pods no longer in `live_uids`.
    pub fn prune(&mut self, now: SystemTime, live_uids: &BTreeSet<String>) {
        let window = self.window;
        let fresh = |s: &mut Option<Seen>| {
            if s.is_some_and(|s| now.duration_since(s.at).unwrap_or_default() > window) {
                *s = None;
            }
        };
        let pairs = self.pods.values_mut().flat_map(BTreeMap::values_mut);
        for pair in pairs.chain(self.service.values_mut()) {
            pair.iter_mut().for_each(fresh);
        }
        self.pods.retain(|uid, by_node| {
            by_node.retain(|_, p| p.iter().any(Option::is_some));
            live_uids.contains(uid) && !by_node.is_empty()
        });
        self.service.retain(|_, p| p.iter().any(Option::is_some));
        self.names.retain(|uid, _| live_uids.contains(uid));
    }

    /// Distinct nodes with any result in the window.
    pub fn nodes(&self) -> BTreeSet<&str> {
        (self.pods.values().flat_map(BTreeMap::keys))
            .chain(self.service.keys())
            .map(String::as_str)
            .collect()
    }

    /// The pods with results, by UID.
    pub fn pods(&self) -> BTreeSet<&str> {
        self.pods.keys().map(String::as_str).collect()
    }

    /// A pod's name as the agents reported it.
    pub fn pod_name(&self, uid: &str) -> Option<&str> {
        self.names.get(uid).map(String::as_str)
    }

    /// Whether `node` reaches pod `uid`: `Some(true)` when every last result in the window
    /// answered, `Some(false)` when one failed, `None` without a result.
    pub fn reaches(&self, uid: &str, node: &str) -> Option<bool> {
        let pair = self.pods.get(uid)?.get(node)?;
        let seen: Vec<&Seen> = pair.iter().flatten().collect();
        (!seen.is_empty()).then(|| seen.iter().all(|s| s.ok))
    }

    /// The nodes that reported on pod `uid`.
    pub fn nodes_of(&self, uid: &str) -> Vec<&str> {
        (self.pods.get(uid).into_iter().flat_map(BTreeMap::keys))
            .map(String::as_str)
            .collect()
    }

    /// The pods `node` reported on.
    pub fn pods_of(&self, node: &str) -> Vec<&str> {
        (self.pods.iter())
            .filter(|(_, by_node)| by_node.contains_key(node))
            .map(|(u, _)| u.as_str())
            .collect()
    }

    /// How many nodes reach pod `uid` over UDP and over TCP.
    pub fn pod_reach(&self, uid: &str) -> (Reach, Reach) {
        reach(self.pods.get(uid).into_iter().flat_map(BTreeMap::values))
    }

    /// How many nodes reach the Service over UDP and over TCP.
    pub fn service_reach(&self) -> (Reach, Reach) {
        reach(self.service.values())
    }

    /// Whether `node` reaches the Service (as [`View::reaches`]).
    pub fn node_reaches_service(&self, node: &str) -> Option<bool> {
        let seen: Vec<&Seen> = self.service.get(node)?.iter().flatten().collect();
        (!seen.is_empty()).then(|| seen.iter().all(|s| s.ok))
    }
}

fn reach<'a>(pairs: impl Iterator<Item = &'a Pair>) -> (Reach, Reach) {
    let mut out = (Reach::default(), Reach::default());
    for p in pairs {
        for (i, r) in [&mut out.0, &mut out.1].into_iter().enumerate() {
            match p[i] {
                Some(Seen { ok: true, .. }) => r.reaching += 1,
                Some(Seen { ok: false, .. }) => r.failing += 1,
                None => {}
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hc_exporter::{PodRef, TargetState, TargetStatus, unix_ms};

    pub(crate) fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    /// One agent's document: `(pod uid or "svc", udp ok, tcp ok)` per target, checked at `at`.
    pub(crate) fn report(node: &str, at: SystemTime, seen: &[(&str, bool, bool)]) -> Status {
        let mut targets = Vec::new();
        for (i, (who, udp, tcp)) in seen.iter().enumerate() {
            for (transport, ok) in [("udp", udp), ("tcp", tcp)] {
                let (role, pod) = if *who == "svc" {
                    (Role::Service, None)
                } else {
                    let pod = PodRef {
                        name: Some(format!("coredns-{who}")),
                        uid: Some((*who).to_owned()),
                        node: None,
                    };
                    (Role::Pod, Some(pod))
                };
                targets.push(TargetStatus {
                    target: format!("10.244.0.{}:53", i + 2),
                    transport: transport.into(),
                    state: TargetState::Unknown,
                    last_error: None,
                    rtt_ms: None,
                    consecutive_failures: 0,
                    consecutive_successes: 0,
                    role: Some(role),
                    pod,
                    last_result: Some(if *ok { "ok" } else { "timeout" }.into()),
                    checked_unix_ms: Some(unix_ms(at)),
                });
            }
        }
        Status {
            node: Some(node.into()),
            targets,
            ..Status::default()
        }
    }

    #[test]
    fn keyed_by_uid_windowed_and_pruned() {
        let mut v = View::new(Duration::from_secs(60));
        v.observe(
            &report("n1", now(), &[("a", false, true), ("svc", true, true)]),
            "x",
            now(),
        );
        v.observe(&report("n2", now(), &[("a", true, true)]), "x", now());
        // Too old: ignored.
        let old = now() - Duration::from_secs(120);
        v.observe(&report("n3", old, &[("a", false, false)]), "x", now());
        assert_eq!(v.reaches("a", "n1"), Some(false));
        assert_eq!(v.reaches("a", "n2"), Some(true));
        assert_eq!(v.reaches("a", "n3"), None);
        let (udp, tcp) = v.pod_reach("a");
        assert_eq!(
            (udp.reaching, udp.failing, tcp.reaching, tcp.failing),
            (1, 1, 2, 0)
        );
        assert_eq!(v.pod_name("a"), Some("coredns-a"));
        assert_eq!(v.nodes(), BTreeSet::from(["n1", "n2"]));
        // A newer success replaces the failure.
        let later = now() + Duration::from_secs(5);
        v.observe(&report("n1", later, &[("a", true, true)]), "x", later);
        assert_eq!(v.reaches("a", "n1"), Some(true));
        // The pod goes away: its results go with it; the Service's age out.
        v.prune(later + Duration::from_secs(61), &BTreeSet::new());
        assert!(v.pods().is_empty());
        assert_eq!(v.service_reach().0.reporting(), 0);
    }

    #[test]
    fn one_failing_service_address_is_the_service_failing() {
        // Dual stack: two ClusterIPs in one document, the second answering, the first not.
        let mut v = View::new(Duration::from_secs(60));
        v.observe(
            &report("n1", now(), &[("svc", false, true), ("svc", true, true)]),
            "n1",
            now(),
        );
        assert_eq!(v.node_reaches_service("n1"), Some(false));
        // In the other order too.
        let mut v = View::new(Duration::from_secs(60));
        v.observe(
            &report("n1", now(), &[("svc", true, true), ("svc", false, true)]),
            "n1",
            now(),
        );
        assert_eq!(v.node_reaches_service("n1"), Some(false));
        let (udp, tcp) = v.service_reach();
        assert_eq!((udp.failing, tcp.reaching), (1, 1));
    }

    #[test]
    fn reporters_since_counts_the_fresh_ones() {
        let mut v = View::new(Duration::from_secs(60));
        let old = now() - Duration::from_secs(30);
        v.observe(&report("n1", old, &[("a", true, true)]), "n1", now());
        v.observe(&report("n2", now(), &[("a", true, true)]), "n2", now());
        assert_eq!(v.reporters_since("a", old), 2);
        assert_eq!(v.reporters_since("a", now() - Duration::from_secs(10)), 1);
        assert_eq!(v.reporters_since("b", old), 0);
    }

    #[test]
    fn not_probed_is_not_a_result() {
        let mut s = report("n1", now(), &[("a", false, false)]);
        for t in &mut s.targets {
            t.last_result = Some("not-probed".into());
        }
        let mut v = View::new(Duration::from_secs(60));
        v.observe(&s, "n1", now());
        assert_eq!(v.reaches("a", "n1"), None);
    }
}
