//! The agent's `/status` document: the last round, per target and transport, and per pod
//! namespace. Built from the books a checker keeps ([`dnsprobe::HealthBook`],
//! [`hc_netns::NamespaceBook`]); serializable both ways, so its readers (the controller,
//! `hc-cli status`) use the same types. Field names are a contract (docs/metrics.md): added to,
//! never renamed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dnsprobe::{HealthBook, HealthState, TargetHealth};
use hc_netns::{KnownNamespace, NamespaceBook};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The last completed round of an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Rounds completed so far (this one included).
    pub round: u64,
    /// When the round ended, milliseconds since the Unix epoch.
    pub finished_unix_ms: u64,
    /// How long it took.
    pub duration_ms: f64,
    /// The node the agent runs on (`--node-name`, `NODE_NAME`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Every target over every transport.
    pub targets: Vec<TargetStatus>,
    /// Every pod namespace with a known state.
    pub namespaces: Vec<NamespaceStatus>,
    /// Kubernetes mode only: the API connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesStatus>,
    /// Why the round checked nothing (no target known, no probe could start), when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nothing_checked: Option<String>,
}

/// The agent's connection to Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesStatus {
    /// Every watch is healthy.
    pub api_reachable: bool,
    /// The last API error, while it lasts.
    pub last_error: Option<String>,
    /// Each watch's own health.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watches: Vec<WatchStatus>,
}

/// One watch of the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStatus {
    /// What it watches (`dns-service`, `coredns-pods`, ...).
    pub name: String,
    /// It has listed once and its last event was not an error.
    pub healthy: bool,
    /// Its last error, while it lasts.
    pub last_error: Option<String>,
}

/// One action of the controller and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// `evict`, `raise-memory`, `rollout-restart`, `node-event`, `report`.
    pub action: String,
    /// `success`, `dry-run`, `retry-later`, `refused`, `error`, `reported`.
    pub result: String,
    /// In plain words.
    pub description: String,
}

impl Status {
    /// The document of round `round`, which took `duration`, from what the books hold now.
    pub fn new(
        round: u64,
        duration: Duration,
        targets: &HealthBook,
        namespaces: &NamespaceBook,
    ) -> Status {
        Status {
            round,
            finished_unix_ms: unix_ms(SystemTime::now()),
            duration_ms: duration.as_micros() as f64 / 1000.0,
            node: None,
            targets: targets.entries().iter().map(TargetStatus::from).collect(),
            namespaces: namespaces.known().map(NamespaceStatus::from).collect(),
            kubernetes: None,
            nothing_checked: None,
        }
    }

    /// Some target has a state or a result (`not-probed` is none), or some pod namespace was
    /// checked.
    pub fn checked_anything(&self) -> bool {
        (self.targets.iter()).any(|t| {
            t.state != TargetState::Unknown
                || t.last_result.as_deref().is_some_and(|r| r != "not-probed")
        }) || !self.namespaces.is_empty()
    }

    /// Something was checked and found up, nothing is down, every namespace is healthy. A
    /// target not known yet (never probed, or probed fewer times than the thresholds ask)
    /// neither makes nor breaks it; a document with nothing up is not healthy.
    pub fn healthy(&self) -> bool {
        self.nothing_checked.is_none()
            && self.targets.iter().any(|t| t.state == TargetState::Up)
            && self.targets.iter().all(|t| t.state != TargetState::Down)
            && self.namespaces.iter().all(|n| n.healthy)
    }
}

/// Up or down after thresholds, or not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Not enough results yet.
    Unknown,
    /// Answering correctly.
    Up,
    /// Failing.
    Down,
}

impl From<HealthState> for TargetState {
    fn from(s: HealthState) -> Self {
        match s {
            HealthState::Unknown => TargetState::Unknown,
            HealthState::Up => TargetState::Up,
            HealthState::Down => TargetState::Down,
        }
    }
}

/// What a target is to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A ClusterIP of the DNS Service.
    Service,
    /// A CoreDNS pod's own address.
    Pod,
    /// Given on the command line.
    Static,
}

/// The CoreDNS pod behind a target (from the EndpointSlice's `targetRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRef {
    /// Pod name.
    pub name: Option<String>,
    /// Pod UID: the controller keys its view by it.
    pub uid: Option<String>,
    /// The node the pod runs on.
    pub node: Option<String>,
}

/// One target over one transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// `ip:port`, `[v6]:port`.
    pub target: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// State after thresholds.
    pub state: TargetState,
    /// The last failure, if the last probe failed.
    pub last_error: Option<ErrorStatus>,
    /// Round-trip time of the last probe, if answered.
    pub rtt_ms: Option<f64>,
    /// Consecutive failed rounds.
    pub consecutive_failures: u32,
    /// Consecutive successful rounds.
    pub consecutive_successes: u32,
    /// What the target is (Kubernetes mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The CoreDNS pod behind it (role `pod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// The last probe's result: `ok`, or its failure kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// When it was last probed, milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_unix_ms: Option<u64>,
}

impl From<&TargetHealth> for TargetStatus {
    fn from(t: &TargetHealth) -> Self {
        let last = t.last.as_ref();
        TargetStatus {
            target: t.target.to_string(),
            transport: t.transport.as_str().to_owned(),
            state: t.health.state.into(),
            last_error: last.and_then(|r| r.failure.as_ref()).map(|f| ErrorStatus {
                kind: f.kind().as_str().to_owned(),
                message: f.to_string(),
            }),
            rtt_ms: last
                .and_then(|r| r.rtt)
                .map(|d| d.as_micros() as f64 / 1000.0),
            consecutive_failures: t.health.consecutive_failures,
            consecutive_successes: t.health.consecutive_successes,
            role: None,
            pod: None,
            last_result: last.map(|r| r.result_label().to_owned()),
            checked_unix_ms: t.checked.map(unix_ms),
        }
    }
}

/// A failure: kind and plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorStatus {
    /// Stable kind (`timeout`, `refused`, ...).
    pub kind: String,
    /// In plain words.
    pub message: String,
}

/// One pod network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceStatus {
    /// Namespace inode.
    pub inode: u64,
    /// Name under /run/netns.
    pub name: Option<String>,
    /// A process in it.
    pub pid: Option<u32>,
    /// Pod UID.
    pub pod_uid: Option<String>,
    /// All its probes pass and it has no finding.
    pub healthy: bool,
    /// Its findings.
    pub findings: Vec<FindingStatus>,
    /// The round that last checked it.
    pub checked_round: u64,
}

impl From<&KnownNamespace> for NamespaceStatus {
    fn from(k: &KnownNamespace) -> Self {
        let r = &k.report;
        NamespaceStatus {
            inode: r.ns.inode,
            name: r.ns.name.clone(),
            pid: r.ns.pid,
            pod_uid: r.ns.pod_uid.clone(),
            healthy: r.healthy(),
            findings: r
                .findings
                .iter()
                .map(|f| FindingStatus {
                    code: f.code.as_str().to_owned(),
                    message: f.message.clone(),
                    target: f.target.map(|t| t.to_string()),
                })
                .collect(),
            checked_round: k.round,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingStatus {
    /// Stable code.
    pub code: String,
    /// In plain words.
    pub message: String,
    /// The target concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_status_reads_back_and_old_documents_still_parse() {
        let s = Status {
            round: 3,
            node: Some("node-1".into()),
            targets: vec![TargetStatus {
                target: "10.244.0.5:53".into(),
                transport: "udp".into(),
                state: TargetState::Down,
                last_error: None,
                rtt_ms: None,
                consecutive_failures: 3,
                consecutive_successes: 0,
                role: Some(Role::Pod),
                pod: Some(PodRef {
                    name: Some("coredns-a".into()),
                    uid: Some("u-1".into()),
                    node: Some("node-2".into()),
                }),
                last_result: Some("timeout".into()),
                checked_unix_ms: Some(1_795_000_000_000),
            }],
            ..Status::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Status>(&text).unwrap(), s);
        // A document without the fields added later.
        let old = r#"{"round":1,"finished_unix_ms":1,"duration_ms":0.5,"targets":[{"target":"10.96.0.10:53","transport":"udp","state":"up","last_error":null,"rtt_ms":0.4,"consecutive_failures":0,"consecutive_successes":1}],"namespaces":[]}"#;
        let s: Status = serde_json::from_str(old).unwrap();
        assert_eq!(s.targets[0].role, None);
        assert!(s.healthy());
    }

    #[test]
    fn healthy_needs_something_up_and_nothing_down() {
        let t = |state| TargetStatus {
            target: "10.96.0.10:53".into(),
            transport: "udp".into(),
            state,
            last_error: None,
            rtt_ms: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            role: None,
            pod: None,
            last_result: None,
            checked_unix_ms: None,
        };
        let doc = |states: &[TargetState]| Status {
            targets: states.iter().map(|s| t(*s)).collect(),
            ..Status::default()
        };
        use TargetState::{Down, Unknown, Up};
        // A pod outside this node's sample is not known: it neither makes nor breaks health.
        assert!(doc(&[Up, Unknown]).healthy());
        assert!(!doc(&[Up, Down]).healthy());
        assert!(!doc(&[Unknown]).healthy(), "nothing checked is not healthy");
        assert!(!doc(&[]).healthy(), "nothing checked is not healthy");
    }
}

/// The document of `hc-cli run --once --json`: one round, every target's report and every
/// namespace's. Field names are a contract (docs/cli.md).
#[derive(Debug, Clone, Serialize)]
pub struct OnceReport<'a> {
    /// Every probe passed and every namespace is healthy.
    pub healthy: bool,
    /// How the targets were reached: `direct`, `probe-pod`, `port-forward`.
    pub via: &'static str,
    /// A caveat on the results, e.g. that UDP was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// The reports, as `hc-cli probe --json` prints them.
    pub targets: Vec<dnsprobe::JsonReport>,
    /// The namespaces, as `hc-cli sweep --json` prints them.
    pub namespaces: &'a [hc_netns::NsReport],
}
