//! The `ClusterDNSReachable` condition on the agent's own Node, as node-problem-detector sets
//! its conditions: a strategic merge patch of `status.conditions`, keyed by type, so the
//! kubelet's conditions are untouched.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::execute::FIELD_MANAGER;

/// The condition type.
pub const NODE_CONDITION: &str = "ClusterDNSReachable";

/// Sets the condition on `node`: `reachable`, with a PascalCase `reason` and a `message`.
pub async fn set_node_condition(
    client: Client,
    node: &str,
    reachable: bool,
    reason: &str,
    message: &str,
) -> Result<(), kube::Error> {
    let now = k8s_openapi::jiff::Timestamp::try_from(SystemTime::now())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let patch = json!({"status": {"conditions": [{
        "type": NODE_CONDITION,
        "status": if reachable { "True" } else { "False" },
        "reason": reason,
        "message": message.chars().take(1024).collect::<String>(),
        "lastTransitionTime": now,
        "lastHeartbeatTime": now,
    }]}});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    Api::<Node>::all(client)
        .patch_status(node, &pp, &Patch::Strategic(&patch))
        .await
        .map(|_| ())
}
