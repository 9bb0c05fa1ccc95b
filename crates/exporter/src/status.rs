//! The `/status` document: the last round, per target and transport, and per pod namespace.
//! Built from the books a checker keeps ([`dnsprobe::HealthBook`], [`hc_netns::NamespaceBook`]);
//! serializable both ways, so a reader (the controller, `hc-cli status`) uses the same types.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dnsprobe::{HealthBook, HealthState, TargetHealth};
use hc_netns::{KnownNamespace, NamespaceBook};
use serde::{Deserialize, Serialize};

/// The last completed round. Field names are a contract (docs/metrics.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Rounds completed so far (this one included).
    pub round: u64,
    /// When the round ended, milliseconds since the Unix epoch.
    pub finished_unix_ms: u64,
    /// How long it took.
    pub duration_ms: f64,
    /// Every target over every transport.
    pub targets: Vec<TargetStatus>,
    /// Every pod namespace with a known state.
    pub namespaces: Vec<NamespaceStatus>,
    /// Kubernetes mode only: the API connection, leadership and remediation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesStatus>,
}

/// The Kubernetes side of the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesStatus {
    /// The watches are healthy.
    pub api_reachable: bool,
    /// The last API error, while it lasts.
    pub last_error: Option<String>,
    /// This replica holds the Lease.
    pub leader: bool,
    /// This replica's identity.
    pub identity: String,
    /// `off`, `dry-run` or `on`.
    pub remediation: String,
    /// The last round's plan: one line per action, with its result.
    pub last_plan: Vec<PlannedAction>,
}

/// One planned action and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// `evict`, `raise-memory`, `rollout-restart`, `report`.
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
            finished_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            duration_ms: duration.as_micros() as f64 / 1000.0,
            targets: targets.entries().iter().map(TargetStatus::from).collect(),
            namespaces: namespaces.known().map(NamespaceStatus::from).collect(),
            kubernetes: None,
        }
    }

    /// Everything up and every namespace healthy.
    pub fn healthy(&self) -> bool {
        self.targets.iter().all(|t| t.state == TargetState::Up)
            && self.namespaces.iter().all(|n| n.healthy)
    }
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
        }
    }
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

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingStatus {
    /// Stable code.
    pub code: String,
    /// In plain words.
    pub message: String,
    /// The target concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}
