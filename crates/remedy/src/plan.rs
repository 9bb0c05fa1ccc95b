//! The planner: a pure function from what was observed to what to do, with every safety rule.
//!
//! The ladder, in order:
//! 1. Every CoreDNS pod failing from this agent is not evidence against CoreDNS — the agent's own
//!    path (node, veth, conntrack) may be the fault. No eviction; a report; a rollout restart only
//!    when explicitly enabled, at most once per interval (default 1 h).
//! 2. A pod whose last termination was `OOMKilled`, or pods evicted R times (default 2) within a
//!    window (default 10 min) and failing again: raise the memory limit of the owning Deployment's
//!    container to max(old x factor, old + step), capped, never lowered; the request too if it
//!    would exceed the new limit. Not when an addon manager reconciles the Deployment, nor when
//!    our last patch was reverted: those are reported instead of fought.
//! 3. A pod that failed N consecutive rounds (default 3) while another pod answers: evict it.
//!
//! Gates on every disruptive action: never more than one disruption in flight (no pod
//! terminating, none younger than the grace period); never a pod younger than the grace period or
//! already terminating; a cooldown since the last action; a maximum of actions per hour.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::quantity::format_quantity;

/// The rules' parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Consecutive failed rounds before a pod is evicted.
    pub fail_rounds: u32,
    /// Evictions within `eviction_window` after which a failing pod gets more memory instead.
    pub evictions_before_memory: usize,
    /// See `evictions_before_memory`.
    pub eviction_window: Duration,
    /// Memory growth factor.
    pub memory_factor: f64,
    /// Minimum memory step, bytes.
    pub memory_step: u64,
    /// Memory limit cap, bytes.
    pub memory_cap: u64,
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
            fail_rounds: 3,
            evictions_before_memory: 2,
            eviction_window: Duration::from_secs(600),
            memory_factor: 2.0,
            memory_step: 100 << 20,
            memory_cap: 1 << 30,
            rollout_restart: false,
            rollout_restart_interval: Duration::from_secs(3600),
            grace_period: Duration::from_secs(60),
            cooldown: Duration::from_secs(60),
            max_actions_per_hour: 6,
        }
    }
}

/// One CoreDNS pod, as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodObservation {
    /// Pod name.
    pub name: String,
    /// Pod IP.
    pub ip: Option<IpAddr>,
    /// Node.
    pub node: Option<String>,
    /// Time since it started; `None` when not started.
    pub age: Option<Duration>,
    /// Has a deletion timestamp.
    pub terminating: bool,
    /// Ready condition.
    pub ready: bool,
    /// Container restarts.
    pub restarts: u32,
    /// Reason of the DNS container's last termination (`OOMKilled`, `Error`, ...).
    pub last_termination: Option<String>,
    /// Memory limit of its DNS container, bytes.
    pub memory_limit: Option<u64>,
    /// Owning Deployment.
    pub deployment: Option<String>,
    /// Rounds in a row this pod failed from the agent.
    pub consecutive_failures: u32,
    /// Its last probe succeeded.
    pub answering: bool,
}

/// The owning Deployment, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentObservation {
    /// Name.
    pub name: String,
    /// The DNS container's name.
    pub container: String,
    /// Its memory limit, bytes.
    pub memory_limit: Option<u64>,
    /// Its memory request, bytes.
    pub memory_request: Option<u64>,
    /// Labelled `addonmanager.kubernetes.io/mode: Reconcile`.
    pub addon_managed: bool,
}

/// Everything the planner looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// The CoreDNS pods.
    pub pods: Vec<PodObservation>,
    /// Their Deployment, when known.
    pub deployment: Option<DeploymentObservation>,
}

/// The kind of an action: a stable label (`remediations_total{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Evict a pod.
    Evict,
    /// Raise a memory limit.
    RaiseMemory,
    /// Restart the Deployment's pods.
    RolloutRestart,
    /// Say something; change nothing.
    Report,
}

impl ActionKind {
    /// `evict`, `raise-memory`, `rollout-restart`, `report`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Evict => "evict",
            ActionKind::RaiseMemory => "raise-memory",
            ActionKind::RolloutRestart => "rollout-restart",
            ActionKind::Report => "report",
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Evict `pod` through the Eviction API.
    Evict {
        /// Pod name.
        pod: String,
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
    /// A finding that changes nothing.
    Report {
        /// Stable code: `all-pods-failing`, `pod-too-young`, `cooldown`, `disruption-in-flight`,
        /// `action-budget-exhausted`, `memory-cap-reached`, `addon-managed`, `patch-reverted`,
        /// `no-memory-limit`.
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
            Action::Report { .. } => ActionKind::Report,
        }
    }

    /// One line for logs and `/status`.
    pub fn describe(&self) -> String {
        match self {
            Action::Evict { pod, reason } => format!("evict pod {pod}: {reason}"),
            Action::RaiseMemory {
                deployment,
                container,
                from,
                to,
                request_to,
                reason,
            } => format!(
                "raise memory of {deployment}/{container} from {} to {}{}: {reason}",
                format_quantity(*from),
                format_quantity(*to),
                request_to
                    .map(|r| format!(" (request to {})", format_quantity(r)))
                    .unwrap_or_default()
            ),
            Action::RolloutRestart { deployment, reason } => {
                format!("rollout restart of {deployment}: {reason}")
            }
            Action::Report { code, message } => format!("{code}: {message}"),
        }
    }
}

/// An action carried out earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// When.
    pub at: SystemTime,
    /// What kind.
    pub kind: ActionKind,
    /// The pod concerned, for evictions.
    pub pod: Option<String>,
}

/// What was done before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Disruptive actions carried out (evictions, memory raises, restarts), oldest first.
    pub done: Vec<Done>,
    /// The last memory limit we set, and on which Deployment.
    pub memory_set: Option<(String, u64)>,
}

impl History {
    fn since(&self, now: SystemTime, within: Duration) -> impl Iterator<Item = &Done> {
        self.done
            .iter()
            .filter(move |d| now.duration_since(d.at).unwrap_or_default() < within)
    }
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
fn gate(obs: &Observations, hist: &History, p: &Policy, now: SystemTime) -> Option<Action> {
    if let Some(t) = obs.pods.iter().find(|x| x.terminating) {
        return Some(report(
            "disruption-in-flight",
            format!("pod {} is terminating: one disruption at a time", t.name),
        ));
    }
    if let Some(y) = obs
        .pods
        .iter()
        .find(|x| x.age.is_none_or(|a| a < p.grace_period))
    {
        return Some(report(
            "disruption-in-flight",
            format!(
                "pod {} is younger than the grace period ({}s): a replacement is starting",
                y.name,
                p.grace_period.as_secs()
            ),
        ));
    }
    if let Some(last) = hist.done.last()
        && now.duration_since(last.at).unwrap_or_default() < p.cooldown
    {
        return Some(report(
            "cooldown",
            format!(
                "last action {}s ago; cooldown {}s",
                now.duration_since(last.at).unwrap_or_default().as_secs(),
                p.cooldown.as_secs()
            ),
        ));
    }
    let hour = hist.since(now, Duration::from_secs(3600)).count();
    if hour >= p.max_actions_per_hour {
        return Some(report(
            "action-budget-exhausted",
            format!(
                "{hour} actions in the last hour (maximum {})",
                p.max_actions_per_hour
            ),
        ));
    }
    None
}

/// Plans this round's actions. At most one disruptive action; reports say why nothing (else)
/// was done.
pub fn plan(obs: &Observations, hist: &History, p: &Policy, now: SystemTime) -> Vec<Action> {
    let mut out = Vec::new();
    let live: Vec<&PodObservation> = obs.pods.iter().filter(|x| !x.terminating).collect();
    if live.is_empty() {
        return out;
    }
    let failing: Vec<&PodObservation> = live
        .iter()
        .copied()
        .filter(|x| x.consecutive_failures >= p.fail_rounds)
        .collect();

    // 1. Everything failing: maybe this node's path.
    if !failing.is_empty() && failing.len() == live.len() {
        out.push(report(
            "all-pods-failing",
            format!(
                "all {} CoreDNS pods fail from this agent: the fault may be this node's path, not CoreDNS; no eviction",
                live.len()
            ),
        ));
        if p.rollout_restart
            && let Some(d) = &obs.deployment
        {
            let recent = hist
                .since(now, p.rollout_restart_interval)
                .any(|x| x.kind == ActionKind::RolloutRestart);
            if recent {
                out.push(report(
                    "cooldown",
                    format!(
                        "a rollout restart happened less than {}s ago",
                        p.rollout_restart_interval.as_secs()
                    ),
                ));
            } else if let Some(wait) = gate(obs, hist, p, now) {
                out.push(wait);
            } else {
                out.push(Action::RolloutRestart {
                    deployment: d.name.clone(),
                    reason: format!(
                        "all {} pods failed {}+ rounds and rollout restarts are enabled",
                        live.len(),
                        p.fail_rounds
                    ),
                });
            }
        }
        return out;
    }

    // 2. Memory.
    let reverted = match (&hist.memory_set, &obs.deployment) {
        (Some((name, set)), Some(d))
            if *name == d.name && d.memory_limit.is_some_and(|l| l < *set) =>
        {
            out.push(report(
                "patch-reverted",
                format!(
                    "the memory limit we set on {} ({}) was changed back to {}: not fighting whoever manages it",
                    d.name,
                    format_quantity(*set),
                    d.memory_limit.map(format_quantity).unwrap_or_default()
                ),
            ));
            true
        }
        _ => false,
    };
    let oom: Vec<&&PodObservation> = live
        .iter()
        .filter(|x| x.last_termination.as_deref() == Some("OOMKilled"))
        // A pod still on an older, lower limit than the Deployment's: the raise already happened.
        .filter(|x| {
            let dep = obs.deployment.as_ref().and_then(|d| d.memory_limit);
            !(x.memory_limit.is_some() && dep.is_some() && x.memory_limit < dep)
        })
        .collect();
    let evictions = hist
        .since(now, p.eviction_window)
        .filter(|x| x.kind == ActionKind::Evict)
        .count();
    let repeated = evictions >= p.evictions_before_memory && !failing.is_empty();
    if (!oom.is_empty() || repeated) && !reverted {
        let why = match oom.first() {
            Some(x) => format!("pod {} was OOMKilled (restarts: {})", x.name, x.restarts),
            None => format!(
                "{evictions} evictions in the last {}s and pod {} fails again",
                p.eviction_window.as_secs(),
                failing[0].name
            ),
        };
        match &obs.deployment {
            None => out.push(report("no-deployment", format!("{why}, but no owning Deployment is known"))),
            Some(d) if d.addon_managed => out.push(report(
                "addon-managed",
                format!("{why}, but {} is reconciled by the addon manager (addonmanager.kubernetes.io/mode: Reconcile): raise its memory there", d.name),
            )),
            Some(d) => match d.memory_limit {
                None => out.push(report("no-memory-limit", format!("{why}, but {} sets no memory limit", d.name))),
                Some(old) => match next_memory(old, p) {
                    None => out.push(report(
                        "memory-cap-reached",
                        format!("{why}, but the limit {} is at the cap {}", format_quantity(old), format_quantity(p.memory_cap)),
                    )),
                    Some(to) => match gate(obs, hist, p, now) {
                        Some(wait) => out.push(wait),
                        None => out.push(Action::RaiseMemory {
                            deployment: d.name.clone(),
                            container: d.container.clone(),
                            from: old,
                            to,
                            request_to: d.memory_request.filter(|r| *r > to).map(|_| to),
                            reason: why,
                        }),
                    },
                },
            },
        }
        return out;
    }

    // 3. Evict the worst failing pod, when another answers.
    if failing.is_empty() {
        return out;
    }
    let mut candidates: Vec<&&PodObservation> = failing
        .iter()
        .filter(|x| x.age.is_some_and(|a| a >= p.grace_period))
        .collect();
    if candidates.is_empty() {
        out.push(report(
            "pod-too-young",
            format!(
                "pod {} fails but is younger than the grace period",
                failing[0].name
            ),
        ));
        return out;
    }
    candidates.sort_by_key(|x| std::cmp::Reverse(x.consecutive_failures));
    let worst = candidates[0];
    match gate(obs, hist, p, now) {
        Some(wait) => out.push(wait),
        None => {
            let answering: Vec<&str> = live
                .iter()
                .filter(|x| x.answering)
                .map(|x| x.name.as_str())
                .collect();
            out.push(Action::Evict {
                pod: worst.name.clone(),
                reason: format!(
                    "failed {} consecutive rounds from this agent ({}) while {} answer{}",
                    worst.consecutive_failures,
                    worst
                        .ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "no IP".into()),
                    answering.join(", "),
                    if answering.len() == 1 { "s" } else { "" }
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn pod(name: &str, failures: u32) -> PodObservation {
        PodObservation {
            name: name.into(),
            ip: Some(format!("10.244.0.{}", name.len()).parse().unwrap()),
            age: Some(Duration::from_secs(3600)),
            ready: true,
            memory_limit: Some(170 * MI),
            deployment: Some("coredns".into()),
            consecutive_failures: failures,
            answering: failures == 0,
            ..PodObservation::default()
        }
    }

    fn obs(pods: Vec<PodObservation>) -> Observations {
        Observations {
            pods,
            deployment: Some(DeploymentObservation {
                name: "coredns".into(),
                container: "coredns".into(),
                memory_limit: Some(170 * MI),
                memory_request: Some(70 * MI),
                addon_managed: false,
            }),
        }
    }

    fn ago(secs: u64, kind: ActionKind) -> Done {
        Done {
            at: now() - Duration::from_secs(secs),
            kind,
            pod: Some("x".into()),
        }
    }

    fn kinds(a: &[Action]) -> Vec<String> {
        a.iter()
            .map(|a| match a {
                Action::Report { code, .. } => format!("report:{code}"),
                other => other.kind().as_str().to_owned(),
            })
            .collect()
    }

    #[test]
    fn scenarios() {
        let p = Policy::default();
        let oom = |mut x: PodObservation| {
            x.last_termination = Some("OOMKilled".into());
            x.restarts = 4;
            x
        };
        let young = |mut x: PodObservation| {
            x.age = Some(Duration::from_secs(10));
            x
        };
        let hist = |done: Vec<Done>| History {
            done,
            memory_set: None,
        };
        let cases: Vec<(&str, Observations, History, Vec<&str>)> = vec![
            (
                "healthy",
                obs(vec![pod("a", 0), pod("b", 0)]),
                History::default(),
                vec![],
            ),
            (
                "below the threshold",
                obs(vec![pod("a", 2), pod("b", 0)]),
                History::default(),
                vec![],
            ),
            (
                "one pod failing",
                obs(vec![pod("a", 3), pod("b", 0)]),
                History::default(),
                vec!["evict"],
            ),
            (
                "all failing",
                obs(vec![pod("a", 5), pod("b", 3)]),
                History::default(),
                vec!["report:all-pods-failing"],
            ),
            (
                "oom killed",
                obs(vec![oom(pod("a", 0)), pod("b", 0)]),
                History::default(),
                vec!["raise-memory"],
            ),
            (
                "evicted twice, failing again",
                obs(vec![pod("a", 3), pod("b", 0)]),
                hist(vec![
                    ago(400, ActionKind::Evict),
                    ago(200, ActionKind::Evict),
                ]),
                vec!["raise-memory"],
            ),
            (
                "evicted twice but long ago",
                obs(vec![pod("a", 3), pod("b", 0)]),
                hist(vec![
                    ago(4000, ActionKind::Evict),
                    ago(3000, ActionKind::Evict),
                ]),
                vec!["evict"],
            ),
            (
                "young failing pod",
                obs(vec![young(pod("a", 3)), pod("b", 0)]),
                History::default(),
                vec!["report:pod-too-young"],
            ),
            (
                "a replacement is starting",
                obs(vec![pod("a", 3), young(pod("c", 0)), pod("b", 0)]),
                History::default(),
                vec!["report:disruption-in-flight"],
            ),
            (
                "cooldown",
                obs(vec![pod("a", 3), pod("b", 0)]),
                hist(vec![ago(30, ActionKind::Evict)]),
                vec!["report:cooldown"],
            ),
            (
                "budget",
                obs(vec![pod("a", 3), pod("b", 0)]),
                hist(
                    (0..6)
                        .map(|i| ago(3000 - i * 400, ActionKind::RolloutRestart))
                        .collect(),
                ),
                vec!["report:action-budget-exhausted"],
            ),
        ];
        for (name, o, h, want) in cases {
            assert_eq!(kinds(&plan(&o, &h, &p, now())), want, "{name}");
        }
    }

    #[test]
    fn terminating_pods_are_never_evicted_and_block_disruption() {
        let p = Policy::default();
        let mut t = pod("a", 9);
        t.terminating = true;
        let a = plan(
            &obs(vec![t, pod("b", 3), pod("c", 0)]),
            &History::default(),
            &p,
            now(),
        );
        assert_eq!(kinds(&a), ["report:disruption-in-flight"]);
    }

    #[test]
    fn the_worst_pod_is_evicted_and_the_reason_has_the_evidence() {
        let p = Policy::default();
        let a = plan(
            &obs(vec![pod("a", 3), pod("bb", 7), pod("c", 0)]),
            &History::default(),
            &p,
            now(),
        );
        match &a[..] {
            [Action::Evict { pod, reason }] => {
                assert_eq!(pod, "bb");
                assert!(reason.contains("failed 7 consecutive rounds"), "{reason}");
                assert!(reason.contains("while c answers"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_growth_and_cap() {
        let p = Policy::default();
        assert_eq!(next_memory(170 * MI, &p), Some(340 * MI), "factor 2");
        assert_eq!(
            next_memory(30 * MI, &p),
            Some(130 * MI),
            "minimum step 100Mi"
        );
        assert_eq!(next_memory(800 * MI, &p), Some(1024 * MI), "capped");
        assert_eq!(next_memory(1024 * MI, &p), None, "at the cap");
        assert_eq!(next_memory(2048 * MI, &p), None, "never lowered");

        let mut o = obs(vec![pod("a", 0), pod("b", 0)]);
        o.pods[0].last_termination = Some("OOMKilled".into());
        o.pods[0].memory_limit = Some(1024 * MI);
        o.deployment.as_mut().unwrap().memory_limit = Some(1024 * MI);
        assert_eq!(
            kinds(&plan(&o, &History::default(), &p, now())),
            ["report:memory-cap-reached"]
        );

        let mut o = obs(vec![pod("a", 0), pod("b", 0)]);
        o.pods[0].last_termination = Some("OOMKilled".into());
        o.deployment.as_mut().unwrap().memory_request = Some(400 * MI);
        match &plan(&o, &History::default(), &p, now())[..] {
            [
                Action::RaiseMemory {
                    from,
                    to,
                    request_to,
                    ..
                },
            ] => {
                assert_eq!(
                    (*from, *to, *request_to),
                    (170 * MI, 340 * MI, Some(340 * MI))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oom_pod_on_an_older_lower_limit_is_not_raised_again() {
        let p = Policy::default();
        let mut o = obs(vec![pod("a", 0), pod("b", 0)]);
        o.pods[0].last_termination = Some("OOMKilled".into());
        o.deployment.as_mut().unwrap().memory_limit = Some(340 * MI);
        assert!(plan(&o, &History::default(), &p, now()).is_empty());
    }

    #[test]
    fn addon_manager_and_reverted_patches_are_reported_not_fought() {
        let p = Policy::default();
        let mut o = obs(vec![pod("a", 0), pod("b", 0)]);
        o.pods[0].last_termination = Some("OOMKilled".into());
        o.deployment.as_mut().unwrap().addon_managed = true;
        assert_eq!(
            kinds(&plan(&o, &History::default(), &p, now())),
            ["report:addon-managed"]
        );

        let mut o = obs(vec![pod("a", 0), pod("b", 0)]);
        o.pods[0].last_termination = Some("OOMKilled".into());
        let h = History {
            done: vec![ago(7200, ActionKind::RaiseMemory)],
            memory_set: Some(("coredns".into(), 340 * MI)),
        };
        assert_eq!(kinds(&plan(&o, &h, &p, now())), ["report:patch-reverted"]);
    }

    #[test]
    fn rollout_restart_only_when_enabled_and_once_per_interval() {
        let mut p = Policy::default();
        let o = obs(vec![pod("a", 3), pod("b", 4)]);
        assert_eq!(
            kinds(&plan(&o, &History::default(), &p, now())),
            ["report:all-pods-failing"]
        );
        p.rollout_restart = true;
        assert_eq!(
            kinds(&plan(&o, &History::default(), &p, now())),
            ["report:all-pods-failing", "rollout-restart"]
        );
        let h = History {
            done: vec![ago(1800, ActionKind::RolloutRestart)],
            memory_set: None,
        };
        assert_eq!(
            kinds(&plan(&o, &h, &p, now())),
            ["report:all-pods-failing", "report:cooldown"]
        );
    }
}
