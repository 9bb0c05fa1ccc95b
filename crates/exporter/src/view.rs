//! The controller's `/status` document: the node x CoreDNS-pod view it built from the agents'
//! reports, its verdicts and its last actions. `Display` renders it for a person in about twenty
//! lines, whatever the size of the cluster (`hc-cli status`). Field names are a contract.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checks::{FreshnessView, HealthGap, PodHttp};
use crate::status::{PlannedAction, WatchStatus};

/// How many nodes reach a target over one transport, in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// Nodes whose last probe in the window answered.
    pub reaching: usize,
    /// Nodes whose last probe in the window failed on the path or with a wrong answer.
    pub failing: usize,
}

impl Reach {
    /// Nodes reporting.
    pub fn reporting(&self) -> usize {
        self.reaching + self.failing
    }

    /// The share of reporting nodes that fail; 0 when none reports.
    pub fn failing_share(&self) -> f64 {
        match self.reporting() {
            0 => 0.0,
            n => self.failing as f64 / n as f64,
        }
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.reaching, self.reporting())
    }
}

/// One CoreDNS pod as the nodes see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// Its address.
    pub ip: Option<String>,
    /// Its node.
    pub node: Option<String>,
    /// Over UDP.
    pub udp: Reach,
    /// Over TCP.
    pub tcp: Reach,
    /// Distinct nodes that reported on it in the window.
    pub nodes_reporting: usize,
    /// Its own HTTP endpoints (`/health`, `/ready`), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<PodHttp>,
}

/// The DNS Service's address as the nodes see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Over UDP.
    pub udp: Reach,
    /// Over TCP.
    pub tcp: Reach,
}

/// One verdict of the classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictView {
    /// `pod`, `node`, `service` or `all`.
    pub kind: String,
    /// The pod or node concerned; the Service's name for `service` and `all`.
    pub subject: String,
    /// In plain words, with the evidence.
    pub message: String,
}

/// The agents the controller reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsView {
    /// Agent pods known (one per node).
    pub known: usize,
    /// Read in the last round.
    pub sampled: usize,
    /// Of those, how many could not be read (timeout, refused, not JSON).
    pub failed: usize,
    /// Distinct nodes with a report in the window.
    pub reporting: usize,
}

/// The controller's last round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    /// Rounds completed.
    pub round: u64,
    /// When the last round ended, milliseconds since the Unix epoch.
    pub finished_unix_ms: u64,
    /// This replica.
    pub identity: String,
    /// This replica holds the Lease and may act.
    pub leader: bool,
    /// `off`, `dry-run` or `on`.
    pub remediation: String,
    /// The sliding window observations are kept for, in seconds.
    pub window_seconds: u64,
    /// Each watch of the API.
    pub watches: Vec<WatchStatus>,
    /// The agents.
    pub agents: AgentsView,
    /// The DNS Service's address.
    pub service: ServiceView,
    /// Every CoreDNS pod.
    pub pods: Vec<PodView>,
    /// Nodes that reach no CoreDNS pod while others do.
    pub nodes_failing: Vec<String>,
    /// This round's verdicts.
    pub verdicts: Vec<VerdictView>,
    /// The last actions and their results, newest last.
    pub last_actions: Vec<PlannedAction>,
    /// CoreDNS pods whose HTTP endpoints say healthy while DNS fails from the nodes.
    #[serde(default)]
    pub health_gaps: Vec<HealthGap>,
    /// The freshness check (on the Lease holder; absent when off or not the holder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessView>,
}

impl ControllerStatus {
    /// Every watch healthy, at least one node reporting, no verdict, and no name resolving to
    /// an old Service's address.
    pub fn healthy(&self) -> bool {
        self.watches.iter().all(|w| w.healthy)
            && self.agents.reporting > 0
            && self.verdicts.is_empty()
            && self.freshness.as_ref().is_none_or(|f| f.stale.is_empty())
    }
}

/// Pods listed by name at most; the rest are summed up (a cluster may run 100 CoreDNS pods).
const MAX_PODS_SHOWN: usize = 8;
/// Nodes listed by name at most.
const MAX_NODES_SHOWN: usize = 5;

impl fmt::Display for ControllerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.agents;
        writeln!(
            f,
            "cluster DNS: {} ({} nodes reporting in the last {}s, of {} agents; remediation {}{})",
            if self.healthy() {
                "healthy"
            } else {
                "NOT healthy"
            },
            a.reporting,
            self.window_seconds,
            a.known,
            self.remediation,
            if self.leader { "" } else { ", not the leader" },
        )?;
        if let Some(w) = self.watches.iter().find(|w| !w.healthy) {
            writeln!(
                f,
                "API: watch {} is stale: {}",
                w.name,
                w.last_error.as_deref().unwrap_or("not synced")
            )?;
        }
        writeln!(
            f,
            "service: reached by {} nodes over UDP, {} over TCP",
            self.service.udp, self.service.tcp
        )?;
        let mut pods: Vec<&PodView> = self.pods.iter().collect();
        // The worst first.
        pods.sort_by(|x, y| {
            let share = |p: &PodView| p.udp.failing_share().max(p.tcp.failing_share());
            share(y).total_cmp(&share(x)).then(x.name.cmp(&y.name))
        });
        writeln!(
            f,
            "{} CoreDNS pods (nodes reaching / reporting):",
            pods.len()
        )?;
        for p in pods.iter().take(MAX_PODS_SHOWN) {
            writeln!(
                f,
                "  {:<40} udp {:>9}  tcp {:>9}  on {}",
                p.name,
                p.udp.to_string(),
                p.tcp.to_string(),
                p.node.as_deref().unwrap_or("?")
            )?;
        }
        if pods.len() > MAX_PODS_SHOWN {
            let rest = &pods[MAX_PODS_SHOWN..];
            let ok = rest
                .iter()
                .filter(|p| p.udp.failing + p.tcp.failing == 0)
                .count();
            writeln!(
                f,
                "  ... {} more, {} of them reached by every reporting node",
                rest.len(),
                ok
            )?;
        }
        if !self.nodes_failing.is_empty() {
            let shown: Vec<&str> = self
                .nodes_failing
                .iter()
                .take(MAX_NODES_SHOWN)
                .map(String::as_str)
                .collect();
            let more = self.nodes_failing.len().saturating_sub(MAX_NODES_SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            writeln!(
                f,
                "nodes reaching no CoreDNS pod: {}{more}",
                shown.join(", ")
            )?;
        }
        for v in &self.verdicts {
            writeln!(f, "verdict {}: {}", v.kind, v.message)?;
        }
        for g in self.health_gaps.iter().take(MAX_NODES_SHOWN) {
            writeln!(f, "HTTP healthy, DNS failing: {}", g.message)?;
        }
        if let Some(fr) = &self.freshness {
            fmt_freshness(f, fr)?;
        }
        match self.last_actions.last() {
            Some(x) => write!(
                f,
                "last action: {} {} ({})",
                x.action, x.result, x.description
            ),
            None => write!(f, "last action: none"),
        }
    }
}

/// The freshness lines of `hc-cli status`: the last propagation, and the stale names.
fn fmt_freshness(f: &mut fmt::Formatter<'_>, fr: &FreshnessView) -> fmt::Result {
    let last = fr.last.iter().rev().find(|r| r.seconds.is_some());
    write!(f, "freshness: {} Services followed", fr.followed)?;
    if let Some(r) = last {
        write!(
            f,
            "; last {} {} in {:.2}s",
            r.name,
            r.event,
            r.seconds.unwrap_or_default()
        )?;
    }
    writeln!(f)?;
    for s in fr.stale.iter().take(MAX_NODES_SHOWN) {
        writeln!(f, "stale record: {s}")?;
    }
    if fr.stale.len() > MAX_NODES_SHOWN {
        writeln!(
            f,
            "stale record: ... {} more",
            fr.stale.len() - MAX_NODES_SHOWN
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(i: usize, failing: usize) -> PodView {
        PodView {
            name: format!("coredns-{i:03}"),
            uid: format!("u{i}"),
            ip: None,
            node: Some(format!("node-{i}")),
            udp: Reach {
                reaching: 50 - failing,
                failing,
            },
            tcp: Reach {
                reaching: 50,
                failing: 0,
            },
            nodes_reporting: 50,
            http: None,
        }
    }

    #[test]
    fn a_large_cluster_fits_in_about_twenty_lines_worst_first() {
        let s = ControllerStatus {
            agents: AgentsView {
                known: 5000,
                sampled: 16,
                failed: 0,
                reporting: 320,
            },
            window_seconds: 120,
            remediation: "dry-run".into(),
            leader: true,
            pods: (0..100)
                .map(|i| pod(i, if i == 42 { 40 } else { 0 }))
                .collect(),
            nodes_failing: (0..9).map(|i| format!("node-{i}")).collect(),
            verdicts: vec![VerdictView {
                kind: "pod".into(),
                subject: "coredns-042".into(),
                message: "coredns-042 fails from 40 of 50 nodes".into(),
            }],
            ..ControllerStatus::default()
        };
        let text = s.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() <= 20, "{text}");
        assert!(
            lines[0].starts_with("cluster DNS: NOT healthy (320 nodes reporting"),
            "{text}"
        );
        assert!(
            lines[3].contains("coredns-042") && lines[3].contains("udp     10/50"),
            "{text}"
        );
        assert!(
            text.contains("... 92 more, 92 of them reached by every reporting node"),
            "{text}"
        );
        assert!(text.contains("node-4 and 4 more"), "{text}");
        let back: ControllerStatus =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
