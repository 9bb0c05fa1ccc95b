//! Where cluster DNS breaks, by quorum over the nodes' view. Pure.
//!
//! - **node**: a node fails to every CoreDNS pod it probed (at least two, when there are two)
//!   while other nodes reach those pods: the node's path (veth, conntrack, a filter) is at
//!   fault. Its results are then left out of every other verdict.
//! - **pod**: a pod fails from at least `share` of the nodes reporting on it (at least
//!   `min_nodes` of them, or every node when the cluster has fewer), while those nodes reach
//!   another pod or the Service: the pod is at fault.
//! - **all**: every pod fails from most nodes: nothing to compare with, so nothing to blame.
//! - **service**: the Service's address fails from most nodes while they reach the pods
//!   directly: kube-proxy or its NAT rules are at fault, not CoreDNS.

use std::fmt;

use crate::view::View;

/// How much agreement a verdict needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quorum {
    /// The share of reporting nodes that must fail (`--quorum`, 0.6).
    pub share: f64,
    /// The nodes that must report, at least (3) ...
    pub min_nodes: usize,
    /// ... unless the cluster has fewer agents than that: then all of them.
    pub agents: usize,
}

impl Quorum {
    fn needed(&self) -> usize {
        self.min_nodes.min(self.agents).max(1)
    }

    fn met(&self, failing: usize, reporting: usize) -> bool {
        reporting >= self.needed() && failing as f64 >= self.share * reporting as f64 && failing > 0
    }
}

/// A verdict: what is at fault, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// A CoreDNS pod fails while its peers answer.
    Pod {
        /// Its UID.
        uid: String,
        /// Its name.
        name: String,
        /// Nodes it fails from.
        failing: usize,
        /// Nodes reporting on it.
        reporting: usize,
    },
    /// A node reaches no CoreDNS pod while other nodes do.
    Node {
        /// The node.
        node: String,
        /// The pods it failed to reach.
        pods: usize,
    },
    /// The Service's address fails while the pods answer directly.
    Service {
        /// Nodes it fails from.
        failing: usize,
        /// Nodes reporting on it.
        reporting: usize,
    },
    /// Every pod fails from most nodes.
    All {
        /// The pods.
        pods: usize,
    },
}

impl Verdict {
    /// `pod`, `node`, `service` or `all`: a stable label.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Pod { .. } => "pod",
            Verdict::Node { .. } => "node",
            Verdict::Service { .. } => "service",
            Verdict::All { .. } => "all",
        }
    }

    /// The pod's or node's name; `service` or `all` otherwise.
    pub fn subject(&self) -> &str {
        match self {
            Verdict::Pod { name, .. } => name,
            Verdict::Node { node, .. } => node,
            Verdict::Service { .. } => "service",
            Verdict::All { .. } => "all",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pod {
                name,
                failing,
                reporting,
                ..
            } => write!(
                f,
                "CoreDNS pod {name} fails from {failing} of {reporting} nodes reporting on it, while they reach other CoreDNS pods"
            ),
            Verdict::Node { node, pods } => write!(
                f,
                "node {node} reaches none of the {pods} CoreDNS pods it probed while other nodes reach them: its own path is at fault, not CoreDNS"
            ),
            Verdict::Service { failing, reporting } => write!(
                f,
                "the DNS Service's address fails from {failing} of {reporting} nodes while they reach the CoreDNS pods directly: kube-proxy or its NAT rules, not CoreDNS"
            ),
            Verdict::All { pods } => write!(
                f,
                "all {pods} CoreDNS pods fail from most nodes: nothing answers to compare with; no pod is blamed"
            ),
        }
    }
}

/// Classifies the view.
pub fn classify(view: &View, q: &Quorum) -> Vec<Verdict> {
    let mut out = Vec::new();
    let all_pods: Vec<&str> = view.pods().into_iter().collect();
    let bad_nodes = bad_nodes(view, &all_pods);
    for (node, pods) in &bad_nodes {
        out.push(Verdict::Node {
            node: (*node).to_owned(),
            pods: *pods,
        });
    }
    let bad: std::collections::BTreeSet<&str> = bad_nodes.iter().map(|(n, _)| *n).collect();
    let is_bad = |n: &str| bad.contains(n);
    // Per pod: (uid, failing nodes, reporting nodes), good vantage points only.
    let per_pod: Vec<(&str, Vec<&str>, usize)> = all_pods
        .iter()
        .map(|uid| {
            let nodes: Vec<&str> = view
                .nodes_of(uid)
                .into_iter()
                .filter(|n| !is_bad(n))
                .collect();
            let failing = nodes
                .iter()
                .copied()
                .filter(|n| view.reaches(uid, n) == Some(false))
                .collect();
            (*uid, failing, nodes.len())
        })
        .collect();
    let failing_pods: Vec<&(&str, Vec<&str>, usize)> = per_pod
        .iter()
        .filter(|(_, f, r)| q.met(f.len(), *r))
        .collect();
    if !per_pod.is_empty() && failing_pods.len() == per_pod.len() {
        out.push(Verdict::All {
            pods: per_pod.len(),
        });
        return out;
    }
    for (uid, failing, reporting) in failing_pods {
        // The failing nodes must reach something else: another pod, or the Service.
        let elsewhere = failing
            .iter()
            .filter(|n| {
                view.node_reaches_service(n) == Some(true)
                    || view
                        .pods_of(n)
                        .iter()
                        .any(|p| p != uid && view.reaches(p, n) == Some(true))
            })
            .count();
        if q.met(elsewhere, failing.len()) {
            out.push(Verdict::Pod {
                uid: (*uid).to_owned(),
                name: view.pod_name(uid).unwrap_or(uid).to_owned(),
                failing: failing.len(),
                reporting: *reporting,
            });
        }
    }
    if let Some(v) = service_verdict(view, q, &is_bad) {
        out.push(v);
    }
    out
}

/// Nodes that fail to every pod they probed (at least two when there are two) while another
/// node reaches one of them; with how many pods they probed.
fn bad_nodes<'a>(view: &'a View, all_pods: &[&str]) -> Vec<(&'a str, usize)> {
    let needed = all_pods.len().min(2);
    view.nodes()
        .into_iter()
        .filter_map(|n| {
            let pods = view.pods_of(n);
            let all_fail = pods.len() >= needed.max(1)
                && pods.iter().all(|p| view.reaches(p, n) == Some(false));
            // Only for a node that fails everything: looking at the others costs a pass over
            // each of its pods' nodes.
            let others_reach = || {
                pods.iter().any(|p| {
                    view.nodes_of(p)
                        .iter()
                        .any(|m| *m != n && view.reaches(p, m) == Some(true))
                })
            };
            (all_fail && others_reach()).then_some((n, pods.len()))
        })
        .collect()
}

fn service_verdict(view: &View, q: &Quorum, is_bad: &dyn Fn(&str) -> bool) -> Option<Verdict> {
    let nodes: Vec<&str> = view
        .nodes()
        .into_iter()
        .filter(|n| !is_bad(n) && view.node_reaches_service(n).is_some())
        .collect();
    let failing: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|n| view.node_reaches_service(n) == Some(false))
        .collect();
    if !q.met(failing.len(), nodes.len()) {
        return None;
    }
    let direct = failing
        .iter()
        .filter(|n| {
            view.pods_of(n)
                .iter()
                .any(|p| view.reaches(p, n) == Some(true))
        })
        .count();
    q.met(direct, failing.len()).then_some(Verdict::Service {
        failing: failing.len(),
        reporting: nodes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::{now, report};
    use std::time::Duration;

    fn q(agents: usize) -> Quorum {
        Quorum {
            share: 0.6,
            min_nodes: 3,
            agents,
        }
    }

    /// A view of `nodes` nodes; `seen(node index)` gives what that node saw.
    fn view(nodes: usize, seen: impl Fn(usize) -> Vec<(&'static str, bool, bool)>) -> View {
        let mut v = View::new(Duration::from_secs(60));
        for i in 0..nodes {
            v.observe(&report(&format!("node-{i}"), now(), &seen(i)), "?", now());
        }
        v
    }

    fn kinds(v: &[Verdict]) -> Vec<String> {
        v.iter()
            .map(|x| format!("{}:{}", x.kind(), x.subject()))
            .collect()
    }

    #[test]
    fn healthy_cluster_no_verdict() {
        let v = view(4, |_| {
            vec![("a", true, true), ("b", true, true), ("svc", true, true)]
        });
        assert!(classify(&v, &q(4)).is_empty());
    }

    #[test]
    fn a_pod_that_drops_udp_everywhere_is_the_pods_fault() {
        let v = view(4, |_| {
            vec![("a", false, true), ("b", true, true), ("svc", true, true)]
        });
        assert_eq!(kinds(&classify(&v, &q(4))), ["pod:coredns-a"]);
    }

    #[test]
    fn one_node_cut_off_is_the_nodes_fault_and_blames_no_pod() {
        let v = view(4, |i| {
            if i == 2 {
                vec![
                    ("a", false, false),
                    ("b", false, false),
                    ("svc", false, false),
                ]
            } else {
                vec![("a", true, true), ("b", true, true), ("svc", true, true)]
            }
        });
        assert_eq!(kinds(&classify(&v, &q(4))), ["node:node-2"]);
    }

    #[test]
    fn the_service_nat_broken_is_not_coredns() {
        let v = view(4, |i| {
            vec![
                ("a", true, true),
                ("b", true, true),
                ("svc", i == 0, i == 0),
            ]
        });
        assert_eq!(kinds(&classify(&v, &q(4))), ["service:service"]);
    }

    #[test]
    fn everything_failing_blames_no_single_pod() {
        let v = view(4, |_| {
            vec![
                ("a", false, false),
                ("b", false, false),
                ("svc", false, false),
            ]
        });
        assert_eq!(kinds(&classify(&v, &q(4))), ["all:all"]);
    }

    #[test]
    fn a_minority_or_too_few_nodes_is_no_quorum() {
        // One node of four fails to one pod (and reaches the other): not enough.
        let v = view(4, |i| {
            vec![("a", i != 0, true), ("b", true, true), ("svc", true, true)]
        });
        assert!(classify(&v, &q(4)).is_empty());
        // Two nodes report, the cluster has ten agents: three are needed.
        let v = view(2, |_| vec![("a", false, true), ("b", true, true)]);
        assert!(classify(&v, &q(10)).is_empty());
        // A two-node cluster: both must agree, and then they suffice.
        assert_eq!(kinds(&classify(&v, &q(2))), ["pod:coredns-a"]);
    }

    #[test]
    fn a_node_that_saw_only_one_failing_pod_is_not_blamed() {
        // Sampling: node-0 probed only pod a, which fails from everywhere.
        let v = view(4, |i| {
            if i == 0 {
                vec![("a", false, false), ("svc", true, true)]
            } else {
                vec![("a", false, true), ("b", true, true), ("svc", true, true)]
            }
        });
        assert_eq!(kinds(&classify(&v, &q(4))), ["pod:coredns-a"]);
    }

    /// 5,000 nodes, each with its last results for 6 of 100 CoreDNS pods: every 50th node fails
    /// UDP to all of its pods while the others reach them. Those nodes, and nothing else, are
    /// named. With `--nocapture` it prints the time to classify against the time to build the
    /// view (docs/performance.md: the view was a flat (pod, node) map, and this took 199 times
    /// the build).
    #[test]
    fn five_thousand_nodes_are_classified_by_lookups_not_scans() {
        let mut v = View::new(Duration::from_secs(120));
        let pods: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        let started = std::time::Instant::now();
        for n in 0..5000 {
            let node = format!("node-{n}");
            let seen: Vec<(&str, bool, bool)> = (0..6)
                .map(|k| (pods[(n * 7 + k * 13) % 100].as_str(), n % 50 != 0, true))
                .chain(std::iter::once(("svc", true, true)))
                .collect();
            v.observe(&report(&node, now(), &seen), &node, now());
        }
        let built = started.elapsed();
        let started = std::time::Instant::now();
        let verdicts = classify(&v, &q(5000));
        let took = started.elapsed();
        let ratio = took.as_secs_f64() / built.as_secs_f64();
        eprintln!("view of 5,000 nodes built in {built:?}, classified in {took:?} ({ratio:.2} x)");
        let named: Vec<String> = (verdicts.iter())
            .map(|v| match v {
                Verdict::Node { node, pods } if *pods == 6 => node.clone(),
                other => panic!("only the failing nodes: {other:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..5000).step_by(50).map(|n| format!("node-{n}")).collect();
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(sorted(named), sorted(expected));
    }
}
