//! The planner: from verdicts, the cluster's state and the history of what was done, to what to
//! do. Pure, so every safety rule is a table test; the history is the controller's, kept on
//! its Lease so a restart or a new leader continues it.
//!
//! The ladder:
//! 1. **memory**: a CoreDNS container `OOMKilled` that finished within the last 10 minutes, once
//!    per kill: raise the limit of the Deployment that owns that pod to max(old x factor,
//!    old + step), capped, never lowered. Never without OOM evidence; refused when the pods
//!    span several Deployments, when an addon manager reconciles it, or when our last raise was
//!    reverted.
//! 2. **all** pods failing from most nodes: a report; a rollout restart only when opted in, at
//!    most once per interval.
//! 3. **pod**: evict the pod most nodes fail to reach (the Eviction API with its UID as a
//!    precondition, so a replacement is never hit).
//!
//! Node and service verdicts are reported, never "fixed" by touching CoreDNS.
//!
//! Gates on every disruptive action: one disruption in flight (a pod terminating, pending,
//! unready, without an IP or younger than the grace period; a Deployment with fewer available
//! replicas than desired), a cooldown since the last action, a maximum per rolling hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::classify::Verdict;
use crate::discovery::PodInfo;
use crate::quantity::format_quantity;

/// The rules' parameters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// Memory growth factor.
    pub memory_factor: f64,
    /// Minimum memory step, bytes.
    pub memory_step: u64,
    /// Memory limit cap, bytes.
    pub memory_cap: u64,
    /// An OOM kill older than this is not evidence any more.
    pub oom_window: Duration,
    /// Allow a rollout restart when every pod fails.
    pub rollout_restart: bool,
    /// At most one rollout restart per this interval.
    pub rollout_restart_interval: Duration,
    /// Never act on a pod younger than this; a younger pod means a disruption is in flight.
    pub grace_period: Duration,
    /// Time between two actions.
    pub cooldown: Duration,
    /// Actions per rolling hour.
    pub max_actions_per_hour: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            memory_factor: 2.0,
            memory_step: 100 << 20,
            memory_cap: 1 << 30,
            oom_window: Duration::from_secs(600),
            rollout_restart: false,
            rollout_restart_interval: Duration::from_secs(3600),
            grace_period: Duration::from_secs(60),
            cooldown: Duration::from_secs(60),
            max_actions_per_hour: 6,
        }
    }
}

/// A Deployment of CoreDNS pods, as the planner needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentInfo {
    /// Name.
    pub name: String,
    /// The DNS container's name (the first container).
    pub container: String,
    /// `spec.replicas`.
    pub desired: u32,
    /// `status.availableReplicas`.
    pub available: u32,
    /// The container's memory limit, bytes.
    pub memory_limit: Option<u64>,
    /// The container's memory request, bytes.
    pub memory_request: Option<u64>,
    /// Labelled `addonmanager.kubernetes.io/mode: Reconcile`.
    pub addon_managed: bool,
}

/// The kind of an action: a stable label (`remediations_total{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Evict a pod.
    Evict,
    /// Raise a memory limit.
    RaiseMemory,
    /// Restart the Deployment's pods.
    RolloutRestart,
    /// Record an Event on a Node.
    NodeEvent,
    /// Say something; change nothing.
    Report,
}

impl ActionKind {
    /// `evict`, `raise-memory`, `rollout-restart`, `node-event`, `report`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Evict => "evict",
            ActionKind::RaiseMemory => "raise-memory",
            ActionKind::RolloutRestart => "rollout-restart",
            ActionKind::NodeEvent => "node-event",
            ActionKind::Report => "report",
        }
    }

    /// Evictions, raises and restarts: what the gates and the budget apply to.
    pub fn disruptive(self) -> bool {
        matches!(
            self,
            ActionKind::Evict | ActionKind::RaiseMemory | ActionKind::RolloutRestart
        )
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Evict `pod` through the Eviction API, only if its UID is still `uid`.
    Evict {
        /// Pod name.
        pod: String,
        /// Its UID (the eviction's precondition).
        uid: String,
        /// Why, with the evidence.
        reason: String,
    },
    /// Patch the Deployment's container memory.
    RaiseMemory {
        /// Deployment.
        deployment: String,
        /// Container.
        container: String,
        /// Current limit, bytes.
        from: u64,
        /// New limit, bytes.
        to: u64,
        /// New request, when the current one would exceed the new limit.
        request_to: Option<u64>,
        /// The OOM kill this answers (`<pod uid>/<finished at, ms>`), remembered so a kill is
        /// answered once.
        oom: String,
        /// Why, with the evidence.
        reason: String,
    },
    /// Annotate the pod template with `kubectl.kubernetes.io/restartedAt`.
    RolloutRestart {
        /// Deployment.
        deployment: String,
        /// Why.
        reason: String,
    },
    /// Record a Warning Event on a Node that reaches no CoreDNS pod.
    NodeEvent {
        /// The node.
        node: String,
        /// Why, with the evidence.
        reason: String,
    },
    /// A finding that changes nothing.
    Report {
        /// Stable code: `all-pods-failing`, `service-path`, `pod-too-young`, `cooldown`,
        /// `disruption-in-flight`, `action-budget-exhausted`, `memory-cap-reached`,
        /// `addon-managed`, `patch-reverted`, `no-memory-limit`, `no-deployment`,
        /// `several-deployments`.
        code: &'static str,
        /// In plain words.
        message: String,
    },
}

impl Action {
    /// The kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Evict { .. } => ActionKind::Evict,
            Action::RaiseMemory { .. } => ActionKind::RaiseMemory,
            Action::RolloutRestart { .. } => ActionKind::RolloutRestart,
            Action::NodeEvent { .. } => ActionKind::NodeEvent,
            Action::Report { .. } => ActionKind::Report,
        }
    }

    /// What it acts on: the pod's UID, the Deployment, the node; the code of a report.
    pub fn subject(&self) -> &str {
        match self {
            Action::Evict { uid, .. } => uid,
            Action::RaiseMemory { deployment, .. } | Action::RolloutRestart { deployment, .. } => {
                deployment
            }
            Action::NodeEvent { node, .. } => node,
            Action::Report { code, .. } => code,
        }
    }

    /// One line for logs, Events and `/status`.
    pub fn describe(&self) -> String {
        match self {
            Action::Evict { pod, reason, .. } => format!("evict pod {pod}: {reason}"),
            Action::RaiseMemory {
                deployment,
                container,
                from,
                to,
                request_to,
                reason,
                ..
            } => {
                format!(
                    "raise memory of {deployment}/{container} from {} to {}{}: {reason}",
                    format_quantity(*from),
                    format_quantity(*to),
                    request_to
                        .map(|r| format!(" (request to {})", format_quantity(r)))
                        .unwrap_or_default()
                )
            }
            Action::RolloutRestart { deployment, reason } => {
                format!("rollout restart of {deployment}: {reason}")
            }
            Action::NodeEvent { node, reason } => format!("event on node {node}: {reason}"),
            Action::Report { code, message } => format!("{code}: {message}"),
        }
    }
}

/// An action carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// When, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// What kind.
    pub kind: ActionKind,
    /// On what: the pod's UID, the Deployment.
    pub subject: String,
}

/// What the controller did: kept on its Lease (an annotation), so a restarted controller or a
/// new leader continues the cooldown, the hourly budget, what it set, and the OOM kills it
/// already answered. Dry-run records nothing here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Disruptive actions carried out, oldest first (a day at most).
    #[serde(default)]
    pub done: Vec<Done>,
    /// The last memory limit we set, and on which Deployment.
    #[serde(default)]
    pub memory_set: Option<(String, u64)>,
    /// OOM kills answered (`<pod uid>/<finished at, ms>`), the last 50.
    #[serde(default)]
    pub oom_answered: Vec<String>,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ago(now: SystemTime, at_ms: u64) -> Duration {
    Duration::from_millis(ms(now).saturating_sub(at_ms))
}

impl History {
    /// Records `action`, carried out at `now`; forgets what is more than a day old.
    pub fn record(&mut self, action: &Action, now: SystemTime) {
        if !action.kind().disruptive() {
            return;
        }
        self.done.push(Done {
            at_unix_ms: ms(now),
            kind: action.kind(),
            subject: action.subject().to_owned(),
        });
        if let Action::RaiseMemory {
            deployment,
            to,
            oom,
            ..
        } = action
        {
            self.memory_set = Some((deployment.clone(), *to));
            self.oom_answered.push(oom.clone());
            let extra = self.oom_answered.len().saturating_sub(50);
            self.oom_answered.drain(..extra);
        }
        self.done
            .retain(|d| ago(now, d.at_unix_ms) < Duration::from_secs(86_400));
    }

    /// Forgets `action` again (it could not be carried out after all).
    pub fn forget(&mut self, action: &Action) {
        if let Some(i) = self
            .done
            .iter()
            .rposition(|d| d.kind == action.kind() && d.subject == action.subject())
        {
            self.done.remove(i);
        }
        if let Action::RaiseMemory {
            deployment,
            to,
            oom,
            ..
        } = action
        {
            self.oom_answered.retain(|k| k != oom);
            // The limit was never set: remembering it would read the unchanged limit as our
            // patch reverted, and no raise would come again.
            if self.memory_set.as_ref() == Some(&(deployment.clone(), *to)) {
                self.memory_set = None;
            }
        }
    }

    fn since(&self, now: SystemTime, within: Duration) -> impl Iterator<Item = &Done> {
        self.done
            .iter()
            .filter(move |d| ago(now, d.at_unix_ms) < within)
    }
}

/// What the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// This round's verdicts (pod verdicts only once confirmed).
    pub verdicts: &'a [Verdict],
    /// The CoreDNS pods.
    pub pods: &'a [PodInfo],
    /// The Deployments owning them.
    pub deployments: &'a [DeploymentInfo],
    /// What was done before.
    pub history: &'a History,
    /// The rules.
    pub policy: &'a Policy,
    /// Now.
    pub now: SystemTime,
}

/// The next memory limit: max(old x factor, old + step), capped; `None` at or above the cap.
pub fn next_memory(old: u64, p: &Policy) -> Option<u64> {
    if old >= p.memory_cap {
        return None;
    }
    let grown = ((old as f64) * p.memory_factor) as u64;
    Some(
        grown
            .max(old.saturating_add(p.memory_step))
            .min(p.memory_cap),
    )
}

fn report(code: &'static str, message: impl Into<String>) -> Action {
    Action::Report {
        code,
        message: message.into(),
    }
}

/// Why a disruption must wait, if it must.
fn gate(i: &Inputs<'_>) -> Option<Action> {
    let p = i.policy;
    let age = |x: &PodInfo| {
        x.started
            .map(|s| i.now.duration_since(s).unwrap_or_default())
    };
    let unsettled = i.pods.iter().find_map(|x| {
        let why = if x.terminating {
            "is terminating"
        } else if x.phase.as_deref() != Some("Running") {
            "is not running yet"
        } else if x.ip.is_none() {
            "has no IP yet"
        } else if !x.ready {
            "is not ready"
        } else if age(x).is_none_or(|a| a < p.grace_period) {
            "is younger than the grace period"
        } else {
            return None;
        };
        Some(format!("pod {} {why}", x.name))
    });
    let short = i
        .deployments
        .iter()
        .find(|d| d.available < d.desired)
        .map(|d| {
            format!(
                "Deployment {} has {} of {} replicas available",
                d.name, d.available, d.desired
            )
        });
    if let Some(why) = unsettled.or(short) {
        return Some(report(
            "disruption-in-flight",
            format!("{why}: one disruption at a time"),
        ));
    }
    if let Some(last) = i.history.done.last()
        && ago(i.now, last.at_unix_ms) < p.cooldown
    {
        let since = ago(i.now, last.at_unix_ms).as_secs();
        return Some(report(
            "cooldown",
            format!(
                "last action {since}s ago; cooldown {}s",
                p.cooldown.as_secs()
            ),
        ));
    }
    let hour = i.history.since(i.now, Duration::from_secs(3600)).count();
    (hour >= p.max_actions_per_hour).then(|| {
        report(
            "action-budget-exhausted",
            format!(
                "{hour} actions in the last hour (maximum {})",
                p.max_actions_per_hour
            ),
        )
    })
}

/// Plans this round: at most one disruptive action, and reports that say why nothing (else)
/// was done. Each action comes with the verdict it answers (`oom` for a memory raise).
pub fn plan(i: &Inputs<'_>) -> Vec<(&'static str, Action)> {
    let mut out = Vec::new();
    if let Some(a) = memory(i) {
        let disruptive = a.kind().disruptive();
        out.push(("oom", a));
        if disruptive {
            return out;
        }
    }
    for v in i.verdicts {
        match v {
            Verdict::Node { node, .. } => out.push((
                "node",
                Action::NodeEvent {
                    node: node.clone(),
                    reason: v.to_string(),
                },
            )),
            Verdict::Service { .. } => out.push(("service", report("service-path", v.to_string()))),
            Verdict::All { .. } => {
                out.push(("all", report("all-pods-failing", v.to_string())));
                if let Some(a) = restart(i) {
                    out.push(("all", a));
                }
            }
            Verdict::Pod { .. } => {}
        }
    }
    if let Some(a) = evict(i) {
        out.push(("pod", a));
    }
    out
}

fn restart(i: &Inputs<'_>) -> Option<Action> {
    let p = i.policy;
    if !p.rollout_restart {
        return None;
    }
    let [d] = i.deployments else {
        return Some(report(
            "several-deployments",
            "rollout restart skipped: the CoreDNS pods are not owned by exactly one Deployment",
        ));
    };
    if i.history
        .since(i.now, p.rollout_restart_interval)
        .any(|x| x.kind == ActionKind::RolloutRestart)
    {
        return Some(report(
            "cooldown",
            format!(
                "a rollout restart happened less than {}s ago",
                p.rollout_restart_interval.as_secs()
            ),
        ));
    }
    Some(gate(i).unwrap_or_else(|| Action::RolloutRestart {
        deployment: d.name.clone(),
        reason: "every CoreDNS pod fails from most nodes and rollout restarts are enabled".into(),
    }))
}

fn evict(i: &Inputs<'_>) -> Option<Action> {
    let worst = i
        .verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Pod {
                uid,
                failing,
                reporting,
                ..
            } => Some((uid, *failing as f64 / (*reporting).max(1) as f64, v)),
            _ => None,
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let (uid, _, verdict) = worst;
    let Some(pod) = i.pods.iter().find(|p| &p.uid == uid) else {
        return Some(report(
            "disruption-in-flight",
            format!("pod {uid} is gone already"),
        ));
    };
    if pod
        .started
        .is_none_or(|s| i.now.duration_since(s).unwrap_or_default() < i.policy.grace_period)
    {
        return Some(report(
            "pod-too-young",
            format!(
                "pod {} fails but is younger than the grace period",
                pod.name
            ),
        ));
    }
    Some(gate(i).unwrap_or_else(|| Action::Evict {
        pod: pod.name.clone(),
        uid: pod.uid.clone(),
        reason: verdict.to_string(),
    }))
}

/// The memory step: a fresh OOM kill not answered yet.
fn memory(i: &Inputs<'_>) -> Option<Action> {
    let p = i.policy;
    let (pod, at) = i.pods.iter().find_map(|x| {
        let at = x.last_termination_at?;
        let fresh = x.last_termination.as_deref() == Some("OOMKilled")
            && i.now.duration_since(at).unwrap_or_default() <= p.oom_window;
        let key = format!("{}/{}", x.uid, ms(at));
        (fresh && !i.history.oom_answered.contains(&key)).then_some((x, key))
    })?;
    let why = format!(
        "pod {} was OOMKilled {}s ago (restarts: {})",
        pod.name,
        pod.last_termination_at.map_or(0, |t| i
            .now
            .duration_since(t)
            .unwrap_or_default()
            .as_secs()),
        pod.restarts
    );
    let owners: std::collections::BTreeSet<&str> = i
        .pods
        .iter()
        .filter_map(|x| x.deployment.as_deref())
        .collect();
    if owners.len() > 1 {
        return Some(report(
            "several-deployments",
            format!(
                "{why}, but the CoreDNS pods belong to {} Deployments ({}): refusing to guess which to raise",
                owners.len(),
                owners.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let Some(d) = i
        .deployments
        .iter()
        .find(|d| Some(d.name.as_str()) == pod.deployment.as_deref())
    else {
        return Some(report(
            "no-deployment",
            format!("{why}, but no owning Deployment is known"),
        ));
    };
    if d.addon_managed {
        return Some(report(
            "addon-managed",
            format!(
                "{why}, but {} is reconciled by the addon manager (addonmanager.kubernetes.io/mode: Reconcile): raise its memory there",
                d.name
            ),
        ));
    }
    let Some(old) = d.memory_limit else {
        return Some(report(
            "no-memory-limit",
            format!("{why}, but {} sets no memory limit", d.name),
        ));
    };
    if let Some((name, set)) = &i.history.memory_set
        && *name == d.name
        && old < *set
    {
        return Some(report(
            "patch-reverted",
            format!(
                "{why}, but the memory limit we set on {} ({}) was changed back to {}: not fighting whoever manages it",
                d.name,
                format_quantity(*set),
                format_quantity(old)
            ),
        ));
    }
    let Some(to) = next_memory(old, p) else {
        return Some(report(
            "memory-cap-reached",
            format!(
                "{why}, but the limit {} is at the cap {}",
                format_quantity(old),
                format_quantity(p.memory_cap)
            ),
        ));
    };
    Some(gate(i).unwrap_or_else(|| Action::RaiseMemory {
        deployment: d.name.clone(),
        container: d.container.clone(),
        from: old,
        to,
        request_to: d.memory_request.filter(|r| *r > to).map(|_| to),
        oom: at,
        reason: why,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn pod(name: &str) -> PodInfo {
        PodInfo {
            name: name.into(),
            uid: format!("uid-{name}"),
            phase: Some("Running".into()),
            ip: Some("10.244.0.2".parse().unwrap()),
            started: Some(now() - Duration::from_secs(3600)),
            ready: true,
            memory_limit: Some(170 * MI),
            deployment: Some("coredns".into()),
            container: Some("coredns".into()),
            ..PodInfo::default()
        }
    }

    fn deployment() -> DeploymentInfo {
        DeploymentInfo {
            name: "coredns".into(),
            container: "coredns".into(),
            desired: 2,
            available: 2,
            memory_limit: Some(170 * MI),
            memory_request: Some(70 * MI),
            addon_managed: false,
        }
    }

    fn failing(name: &str) -> Verdict {
        Verdict::Pod {
            uid: format!("uid-{name}"),
            name: name.into(),
            failing: 4,
            reporting: 4,
        }
    }

    fn oom(mut p: PodInfo, secs_ago: u64) -> PodInfo {
        p.last_termination = Some("OOMKilled".into());
        p.last_termination_at = Some(now() - Duration::from_secs(secs_ago));
        p.restarts = 3;
        p
    }

    fn done(secs_ago: u64, kind: ActionKind) -> Done {
        Done {
            at_unix_ms: ms(now()) - secs_ago * 1000,
            kind,
            subject: "x".into(),
        }
    }

    fn kinds(a: &[(&str, Action)]) -> Vec<String> {
        a.iter()
            .map(|(_, a)| match a {
                Action::Report { code, .. } => format!("report:{code}"),
                other => other.kind().as_str().to_owned(),
            })
            .collect()
    }

    fn run(
        verdicts: &[Verdict],
        pods: &[PodInfo],
        deployments: &[DeploymentInfo],
        history: &History,
        policy: &Policy,
    ) -> Vec<String> {
        kinds(&plan(&Inputs {
            verdicts,
            pods,
            deployments,
            history,
            policy,
            now: now(),
        }))
    }

    /// The label sets the exporter creates at 0 are the labels the controller uses: a new
    /// verdict, action or result would otherwise be missing from them.
    #[test]
    fn the_exporters_label_sets_are_the_controllers() {
        use crate::classify::Verdict;
        use crate::execute::Outcome;
        let verdicts = [
            Verdict::Pod {
                uid: String::new(),
                name: String::new(),
                failing: 0,
                reporting: 0,
            },
            Verdict::Node {
                node: String::new(),
                pods: 0,
            },
            Verdict::Service {
                failing: 0,
                reporting: 0,
            },
            Verdict::All { pods: 0 },
        ];
        let kinds: Vec<&str> = verdicts.iter().map(Verdict::kind).collect();
        assert_eq!(kinds, hc_exporter::VERDICT_KINDS);
        let actions = [
            ActionKind::Evict,
            ActionKind::RaiseMemory,
            ActionKind::RolloutRestart,
            ActionKind::NodeEvent,
        ];
        assert_eq!(actions.map(ActionKind::as_str), hc_exporter::ACTIONS);
        let outcomes = [
            Outcome::Success,
            Outcome::DryRun,
            Outcome::RetryLater(String::new()),
            Outcome::Refused(String::new()),
            Outcome::Error(String::new()),
        ];
        let labels: Vec<&str> = outcomes.iter().map(Outcome::label).collect();
        assert_eq!(labels, hc_exporter::RESULTS);
    }

    #[test]
    fn scenarios() {
        let p = Policy::default();
        let h = History::default();
        let d = [deployment()];
        let two = [pod("a"), pod("b")];
        let hist = |done: Vec<Done>| History {
            done,
            ..History::default()
        };
        let mut young = pod("c");
        young.started = Some(now() - Duration::from_secs(10));
        let mut pending = pod("c");
        pending.phase = Some("Pending".into());
        pending.ip = None;
        let mut short = deployment();
        short.available = 1;
        let mut other = pod("b");
        other.deployment = Some("coredns-custom".into());
        let node = Verdict::Node {
            node: "n2".into(),
            pods: 2,
        };
        let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
            ("healthy", run(&[], &two, &d, &h, &p), vec![]),
            (
                "one pod failing",
                run(&[failing("a")], &two, &d, &h, &p),
                vec!["evict"],
            ),
            (
                "a node cut off",
                run(&[node], &two, &d, &h, &p),
                vec!["node-event"],
            ),
            (
                "service path",
                run(
                    &[Verdict::Service {
                        failing: 3,
                        reporting: 4,
                    }],
                    &two,
                    &d,
                    &h,
                    &p,
                ),
                vec!["report:service-path"],
            ),
            (
                "all failing",
                run(&[Verdict::All { pods: 2 }], &two, &d, &h, &p),
                vec!["report:all-pods-failing"],
            ),
            (
                "fresh oom",
                run(&[], &[oom(pod("a"), 60), pod("b")], &d, &h, &p),
                vec!["raise-memory"],
            ),
            (
                "old oom",
                run(&[], &[oom(pod("a"), 51 * 86_400), pod("b")], &d, &h, &p),
                vec![],
            ),
            (
                "oom with two deployments",
                run(&[], &[oom(pod("a"), 60), other], &d, &h, &p),
                vec!["report:several-deployments"],
            ),
            (
                "a replacement without an IP",
                run(&[failing("a")], &[pod("a"), pod("b"), pending], &d, &h, &p),
                vec!["report:disruption-in-flight"],
            ),
            (
                "a young replacement",
                run(
                    &[failing("a")],
                    &[pod("a"), pod("b"), young.clone()],
                    &d,
                    &h,
                    &p,
                ),
                vec!["report:disruption-in-flight"],
            ),
            (
                "fewer available than desired",
                run(&[failing("a")], &two, &[short], &h, &p),
                vec!["report:disruption-in-flight"],
            ),
            (
                "young failing pod",
                run(&[failing("c")], &[pod("a"), young], &d, &h, &p),
                vec!["report:pod-too-young"],
            ),
            (
                "cooldown",
                run(
                    &[failing("a")],
                    &two,
                    &d,
                    &hist(vec![done(30, ActionKind::Evict)]),
                    &p,
                ),
                vec!["report:cooldown"],
            ),
            (
                "budget",
                run(
                    &[failing("a")],
                    &two,
                    &d,
                    &hist(
                        (0..6)
                            .map(|i| done(3000 - i * 400, ActionKind::Evict))
                            .collect(),
                    ),
                    &p,
                ),
                vec!["report:action-budget-exhausted"],
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn an_oom_kill_is_answered_once_and_dry_run_leaves_no_trace() {
        let p = Policy::default();
        let d = [deployment()];
        let pods = [oom(pod("a"), 60), pod("b")];
        let mut h = History::default();
        let i = Inputs {
            verdicts: &[],
            pods: &pods,
            deployments: &d,
            history: &h,
            policy: &p,
            now: now(),
        };
        let planned = plan(&i);
        let Action::RaiseMemory { to, .. } = &planned[0].1 else {
            panic!("{planned:?}")
        };
        assert_eq!(*to, 340 * MI);
        // Carried out: remembered, so the same kill is not answered again even after the
        // cooldown; a new kill is.
        h.record(&planned[0].1, now() - Duration::from_secs(120));
        let mut raised = deployment();
        raised.memory_limit = Some(340 * MI);
        let i = Inputs {
            verdicts: &[],
            pods: &pods,
            deployments: &[raised.clone()],
            history: &h,
            policy: &p,
            now: now(),
        };
        assert!(plan(&i).is_empty(), "{:?}", plan(&i));
        // Reverted by someone: reported, not fought.
        let newer = [oom(pod("a"), 10), pod("b")];
        let i = Inputs {
            verdicts: &[],
            pods: &newer,
            deployments: &d,
            history: &h,
            policy: &p,
            now: now(),
        };
        assert_eq!(kinds(&plan(&i)), ["report:patch-reverted"]);
        // A dry run records nothing: the same plan comes again, and no patch-reverted.
        let fresh = History::default();
        let i = Inputs {
            verdicts: &[],
            pods: &pods,
            deployments: &d,
            history: &fresh,
            policy: &p,
            now: now(),
        };
        assert_eq!(kinds(&plan(&i)), ["raise-memory"]);
        // The cap holds.
        let mut capped = deployment();
        capped.memory_limit = Some(1 << 30);
        let i = Inputs {
            verdicts: &[],
            pods: &pods,
            deployments: &[capped],
            history: &fresh,
            policy: &p,
            now: now(),
        };
        assert_eq!(kinds(&plan(&i)), ["report:memory-cap-reached"]);
    }

    #[test]
    fn history_round_trips_through_json_and_forgets() {
        let mut h = History::default();
        let a = Action::Evict {
            pod: "a".into(),
            uid: "u".into(),
            reason: "r".into(),
        };
        h.record(&a, now());
        h.record(&report("cooldown", "x"), now());
        assert_eq!(h.done.len(), 1, "reports are not actions");
        let back: History = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        h.forget(&a);
        assert!(h.done.is_empty());
    }

    #[test]
    fn a_raise_that_failed_is_forgotten_whole() {
        let raise = Action::RaiseMemory {
            deployment: "coredns".into(),
            container: "coredns".into(),
            from: 170 * MI,
            to: 340 * MI,
            request_to: None,
            oom: "uid-a/1".into(),
            reason: "OOM".into(),
        };
        let mut h = History::default();
        h.record(&raise, now());
        assert_eq!(h.memory_set, Some(("coredns".into(), 340 * MI)));
        h.forget(&raise);
        assert_eq!(h.memory_set, None, "the limit was never set");
        assert!(h.oom_answered.is_empty() && h.done.is_empty());
    }

    #[test]
    fn memory_growth() {
        let p = Policy::default();
        assert_eq!(next_memory(170 * MI, &p), Some(340 * MI));
        assert_eq!(next_memory(50 * MI, &p), Some(150 * MI), "at least +100Mi");
        assert_eq!(next_memory(700 * MI, &p), Some(1024 * MI), "capped");
        assert_eq!(next_memory(1024 * MI, &p), None);
    }
}
