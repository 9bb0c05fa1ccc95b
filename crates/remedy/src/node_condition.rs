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

/// The condition a node's own results call for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVerdict {
    /// `True`: cluster DNS is reachable from this node.
    pub reachable: bool,
    /// `DNSReachable`, `UDPBlocked`, `DNSUnreachable` or `PodNamespacesCannotResolve`.
    pub reason: &'static str,
    /// In plain words.
    pub message: String,
}

/// The condition from the node's targets (after thresholds) and the number of its pod
/// namespaces that cannot resolve: False while any target is down (`UDPBlocked` when every down
/// target is down over UDP only, its TCP up), or while pod namespaces cannot resolve.
///
/// ```
/// use dnsprobe::{Failure, HealthBook, ProbeReport, ProbeSpec, Thresholds, Transport};
///
/// let spec = ProbeSpec::new("10.96.0.10:53".parse().unwrap());
/// let mut book = HealthBook::new(Thresholds::default());
/// book.track([(spec.target, Transport::Udp)]);
/// assert!(hc_remedy::node_verdict(&book, 0).reachable);
/// assert_eq!(hc_remedy::node_verdict(&book, 2).reason, "PodNamespacesCannotResolve");
/// for _ in 0..3 {
///     book.record(&ProbeReport::failed(&spec, Transport::Udp, Failure::Refused));
/// }
/// assert_eq!(hc_remedy::node_verdict(&book, 0).reason, "DNSUnreachable");
/// ```
pub fn node_verdict(health: &dnsprobe::HealthBook, unhealthy_netns: usize) -> NodeVerdict {
    let down: Vec<&dnsprobe::TargetHealth> = health
        .entries()
        .iter()
        .filter(|e| e.health.state == dnsprobe::HealthState::Down)
        .collect();
    if !down.is_empty() {
        let udp_only = down
            .iter()
            .all(|e| health.verdict(e.target) == dnsprobe::TransportVerdict::UdpBlocked);
        let list: Vec<String> = down
            .iter()
            .map(|e| format!("{} over {}", e.target, e.transport))
            .collect();
        return NodeVerdict {
            reachable: false,
            reason: if udp_only {
                "UDPBlocked"
            } else {
                "DNSUnreachable"
            },
            message: format!("cluster DNS fails from this node: {}", list.join(", ")),
        };
    }
    if unhealthy_netns > 0 {
        return NodeVerdict {
            reachable: false,
            reason: "PodNamespacesCannotResolve",
            message: format!(
                "{unhealthy_netns} pod network namespaces on this node cannot resolve"
            ),
        };
    }
    NodeVerdict {
        reachable: true,
        reason: "DNSReachable",
        message: "every cluster DNS target answers over UDP and TCP".to_owned(),
    }
}
