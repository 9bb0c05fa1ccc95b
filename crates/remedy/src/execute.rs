//! Carrying out a plan: the Eviction API, a test-and-set JSON patch of the Deployment, a rollout
//! restart annotation, and a Kubernetes Event for every action.

use std::time::SystemTime;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use serde_json::json;

use crate::plan::Action;
use crate::quantity::{format_quantity, parse_quantity};

/// The field manager of our patches.
pub const FIELD_MANAGER: &str = "coredns-healthcheck";

/// `--remediation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Mode {
    /// Watch and report; plan nothing.
    Off,
    /// Plan, log and export the plan; change nothing.
    DryRun,
    /// Act (the Lease holder only).
    On,
}

impl Mode {
    /// `off`, `dry-run`, `on`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DryRun => "dry-run",
            Mode::On => "on",
        }
    }
}

/// How an action ended: a stable label (`remediations_total{result}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Dry-run: logged, not done.
    DryRun,
    /// Refused for now (a PodDisruptionBudget: HTTP 429); try again later.
    RetryLater(String),
    /// Not done on purpose: the object is managed elsewhere, or gone.
    Refused(String),
    /// The API said no.
    Error(String),
    /// A report: nothing to do.
    Reported,
}

impl Outcome {
    /// `success`, `dry-run`, `retry-later`, `refused`, `error`, `reported`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::DryRun => "dry-run",
            Outcome::RetryLater(_) => "retry-later",
            Outcome::Refused(_) => "refused",
            Outcome::Error(_) => "error",
            Outcome::Reported => "reported",
        }
    }
}

/// Executes actions in one namespace.
pub struct Executor {
    client: Client,
    namespace: String,
    mode: Mode,
    delete_pods: bool,
    recorder: Recorder,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("namespace", &self.namespace)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn api_error(e: kube::Error) -> Outcome {
    match e {
        kube::Error::Api(s) if s.code == 429 => Outcome::RetryLater(s.message),
        kube::Error::Api(s) if s.code == 404 => Outcome::Refused(format!("gone: {}", s.message)),
        kube::Error::Api(s) if s.code == 409 || s.code == 422 => {
            Outcome::Refused(format!("changed under us: {}", s.message))
        }
        e => Outcome::Error(e.to_string()),
    }
}

impl Executor {
    /// An executor; `identity` names this replica in Events. `delete_pods`: delete instead of
    /// evicting (ignores PodDisruptionBudgets: only when configured).
    pub fn new(
        client: Client,
        namespace: &str,
        mode: Mode,
        identity: &str,
        delete_pods: bool,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: Some(identity.into()),
            },
        );
        Executor {
            client,
            namespace: namespace.into(),
            mode,
            delete_pods,
            recorder,
        }
    }

    /// Carries out `action` (or, in dry-run, does not), and records an Event for it.
    pub async fn execute(&self, action: &Action) -> Outcome {
        if matches!(action, Action::Report { .. }) {
            return Outcome::Reported;
        }
        if self.mode != Mode::On {
            return Outcome::DryRun;
        }
        let outcome = match action {
            Action::Evict { pod, uid, .. } => self.evict(pod, uid).await,
            Action::RaiseMemory {
                deployment,
                container,
                from,
                to,
                request_to,
                ..
            } => {
                self.raise_memory(deployment, container, *from, *to, *request_to)
                    .await
            }
            Action::RolloutRestart { deployment, .. } => self.restart(deployment).await,
            // The Event is the action.
            Action::NodeEvent { .. } => Outcome::Success,
            _ => Outcome::Reported,
        };
        self.event(action, &outcome).await;
        outcome
    }

    async fn evict(&self, pod: &str, uid: &str) -> Outcome {
        let api = Api::<Pod>::namespaced(self.client.clone(), &self.namespace);
        // Only this pod: a replacement with the same name is not evicted (409).
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let r = if self.delete_pods {
            api.delete(pod, &dp).await.map(|_| ())
        } else {
            // A policy/v1 Eviction written out: kube's `Api::evict` names the field
            // `delete_options`, which an API server drops as unknown, and with it the precondition.
            let eviction = json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": pod, "namespace": self.namespace},
                "deleteOptions": {"preconditions": {"uid": uid}},
            });
            api.create_subresource::<_, serde_json::Value>(
                "eviction",
                pod,
                &Default::default(),
                &eviction,
            )
            .await
            .map(|_| ())
        };
        r.map_or_else(api_error, |()| Outcome::Success)
    }

    async fn raise_memory(
        &self,
        name: &str,
        container: &str,
        from: u64,
        to: u64,
        request_to: Option<u64>,
    ) -> Outcome {
        let api = Api::<Deployment>::namespaced(self.client.clone(), &self.namespace);
        let d = match api.get(name).await {
            Ok(d) => d,
            Err(e) => return api_error(e),
        };
        if d.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("addonmanager.kubernetes.io/mode"))
            .is_some_and(|m| m == "Reconcile")
        {
            return Outcome::Refused(format!("{name} is reconciled by the addon manager"));
        }
        let containers = d
            .spec
            .and_then(|s| s.template.spec)
            .map(|s| s.containers)
            .unwrap_or_default();
        let Some((i, c)) = containers
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == container)
        else {
            return Outcome::Refused(format!("{name} has no container {container}"));
        };
        let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
        let current = limits.and_then(|l| l.get("memory")).map(|q| q.0.clone());
        if current.as_deref().and_then(parse_quantity) != Some(from) {
            return Outcome::Refused(format!(
                "the limit is {current:?} now, not {}: re-planning",
                format_quantity(from)
            ));
        }
        let base = format!("/spec/template/spec/containers/{i}/resources");
        let mut ops = vec![
            // Test-and-set: fails (422) if anyone changed the limit since we read it.
            json!({"op": "test", "path": format!("{base}/limits/memory"), "value": current}),
            json!({"op": "replace", "path": format!("{base}/limits/memory"), "value": format_quantity(to)}),
        ];
        if let Some(r) = request_to {
            let has_request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|r| r.contains_key("memory"));
            let op = if has_request { "replace" } else { "add" };
            ops.push(json!({"op": op, "path": format!("{base}/requests/memory"), "value": format_quantity(r)}));
        }
        let patch: json_patch::Patch = match serde_json::from_value(json!(ops)) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api.patch(name, &pp, &Patch::<()>::Json(patch)).await {
            Ok(_) => Outcome::Success,
            Err(e) => api_error(e),
        }
    }

    async fn restart(&self, name: &str) -> Outcome {
        let api = Api::<Deployment>::namespaced(self.client.clone(), &self.namespace);
        let now = k8s_openapi::jiff::Timestamp::try_from(SystemTime::now())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api.patch(name, &pp, &Patch::Merge(&patch)).await {
            Ok(_) => Outcome::Success,
            Err(e) => api_error(e),
        }
    }

    async fn event(&self, action: &Action, outcome: &Outcome) {
        let mut namespace = Some(self.namespace.clone());
        let (kind, name, api_version, reason, verb) = match action {
            Action::Evict { pod, .. } => ("Pod", pod.clone(), "v1", "DNSPodEvicted", "Evict"),
            Action::NodeEvent { node, .. } => {
                // Cluster-scoped: the Event goes to `default`.
                namespace = None;
                (
                    "Node",
                    node.clone(),
                    "v1",
                    "ClusterDNSUnreachable",
                    "Diagnose",
                )
            }
            Action::RaiseMemory { deployment, .. } => (
                "Deployment",
                deployment.clone(),
                "apps/v1",
                "DNSMemoryRaised",
                "RaiseMemory",
            ),
            Action::RolloutRestart { deployment, .. } => (
                "Deployment",
                deployment.clone(),
                "apps/v1",
                "DNSRolloutRestarted",
                "RolloutRestart",
            ),
            _ => return,
        };
        let (type_, reason) = match outcome {
            Outcome::Success if matches!(action, Action::NodeEvent { .. }) => {
                (EventType::Warning, reason.to_owned())
            }
            Outcome::Success => (EventType::Normal, reason.to_owned()),
            _ => (EventType::Warning, format!("{reason}Failed")),
        };
        let note = match outcome {
            Outcome::Success => action.describe(),
            Outcome::RetryLater(m) | Outcome::Refused(m) | Outcome::Error(m) => {
                format!("{} ({}: {m})", action.describe(), outcome.label())
            }
            _ => action.describe(),
        };
        let reference = ObjectReference {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
            name: Some(name),
            namespace,
            ..ObjectReference::default()
        };
        let ev = Event {
            type_,
            reason,
            note: Some(note.chars().take(1000).collect()),
            action: verb.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::warn!(error = %e, "cannot record the Kubernetes Event");
        }
    }
}
