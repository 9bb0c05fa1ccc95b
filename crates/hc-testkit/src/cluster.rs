use std::net::IpAddr;

use serde_json::{Value, json};

use crate::FakeApi;

/// A CoreDNS pod as the fake API server holds it (`Running`, ready, started long ago, UID
/// [`pod_uid`], on `node-1`), owned by ReplicaSet `coredns-5d78c9869d` of Deployment `coredns`.
pub fn coredns_pod(name: &str, ip: IpAddr, memory_limit: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "uid": pod_uid(name),
            "labels": {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "coredns-5d78c9869d", "uid": "rs-1", "controller": true}]},
        "spec": {"nodeName": "node-1", "containers": [{"name": "coredns", "image": "coredns/coredns:1.11.1",
            "resources": {"limits": {"memory": memory_limit}, "requests": {"cpu": "100m", "memory": "70Mi"}}}]},
        "status": {"phase": "Running", "podIP": ip.to_string(), "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "coredns", "ready": true, "restartCount": 0, "image": "coredns/coredns:1.11.1", "imageID": "x",
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    })
}

/// Marks a pod's DNS container as last terminated `OOMKilled` long ago (2026-01-01), with
/// `restarts` restarts.
pub fn oom_killed(pod: Value, restarts: u32) -> Value {
    oom_killed_at(pod, restarts, "2026-01-01T00:01:00Z")
}

/// Marks a pod's DNS container as last terminated `OOMKilled`, finished at `finished` (RFC 3339),
/// with `restarts` restarts.
pub fn oom_killed_at(mut pod: Value, restarts: u32, finished: &str) -> Value {
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(restarts);
    pod["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": finished, "finishedAt": finished}});
    pod
}

/// `t` as RFC 3339, as the API server writes times (seconds).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let s = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (s / 86_400, s % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Fills `api` with a cluster's DNS objects: Service `kube-system/kube-dns` (ClusterIP `vip`,
/// ports `dns` 53/UDP and `dns-tcp` 53/TCP), `default/kubernetes` (ClusterIP `api_ip`), an
/// EndpointSlice and a pod per `(name, ip)`, and Deployment `coredns` with `memory_limit`.
pub fn install_coredns(
    api: &FakeApi,
    vip: IpAddr,
    api_ip: IpAddr,
    pods: &[(&str, IpAddr)],
    memory_limit: &str,
) {
    api.put(
        "api/v1/namespaces/kube-system/services/kube-dns",
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"clusterIP": vip.to_string(), "clusterIPs": [vip.to_string()], "selector": {"k8s-app": "kube-dns"},
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                          {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}),
    );
    api.put(
        "api/v1/namespaces/default/services/kubernetes",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": api_ip.to_string(), "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}),
    );
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|(name, ip)| json!({"addresses": [ip.to_string()], "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": name, "namespace": "kube-system", "uid": pod_uid(name)}}))
        .collect();
    api.put(
        "apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-abcde",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kube-dns-abcde", "namespace": "kube-system", "labels": {"kubernetes.io/service-name": "kube-dns"}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
    );
    for (name, ip) in pods {
        api.put(
            &format!("api/v1/namespaces/kube-system/pods/{name}"),
            coredns_pod(name, *ip, memory_limit),
        );
    }
    api.put(
        "apis/apps/v1/namespaces/kube-system/deployments/coredns",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"replicas": pods.len(), "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {"containers": [{"name": "coredns", "image": "coredns/coredns:1.11.1",
                        "resources": {"limits": {"memory": memory_limit}, "requests": {"cpu": "100m", "memory": "70Mi"}}}]}}}}),
    );
}

/// The UID the fake gives CoreDNS pod `name` (stable, so tests can assert on it).
pub fn pod_uid(name: &str) -> String {
    format!("uid-{name}")
}

/// A CoreDNS pod on `node`, with its UID, as [`coredns_pod`] otherwise.
pub fn coredns_pod_on(name: &str, ip: IpAddr, node: &str, memory_limit: &str) -> Value {
    let mut p = coredns_pod(name, ip, memory_limit);
    p["metadata"]["uid"] = json!(pod_uid(name));
    p["spec"]["nodeName"] = json!(node);
    p
}

/// The kube-dns EndpointSlice for `pods` (name, address, node): each endpoint's `targetRef`
/// names the pod and its UID, as the EndpointSlice controller writes them.
pub fn endpoint_slice(pods: &[(&str, IpAddr, &str)]) -> Value {
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|(name, ip, node)| json!({"addresses": [ip.to_string()],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": node,
            "targetRef": {"kind": "Pod", "name": name, "namespace": "kube-system", "uid": pod_uid(name)}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns-abcde", "namespace": "kube-system", "labels": {"kubernetes.io/service-name": "kube-dns"}},
        "addressType": "IPv4", "endpoints": endpoints,
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]})
}

/// An agent pod (the DaemonSet's) on `node`, reachable at `ip` (the node's: host network).
pub fn agent_pod(node: &str, ip: IpAddr) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("coredns-healthcheck-{node}"), "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": "coredns-healthcheck", "app.kubernetes.io/component": "agent"}},
        "spec": {"nodeName": node, "hostNetwork": true, "containers": [{"name": "agent", "image": "hc-cli"}]},
        "status": {"phase": "Running", "podIP": ip.to_string(), "hostIP": ip.to_string(),
            "conditions": [{"type": "Ready", "status": "True"}]}})
}

/// Describes a [`crate::ClusterLab`] to the fake API server: the kube-dns Service and
/// `default/kubernetes`, a CoreDNS pod per lab DNS pod (named `coredns-<k>`, on its node, UID
/// [`pod_uid`]), the EndpointSlice, the `coredns` Deployment (all replicas available), and an
/// agent pod per node.
#[cfg(target_os = "linux")]
pub fn install_cluster(api: &FakeApi, lab: &crate::ClusterLab, memory_limit: &str) {
    let pods: Vec<(String, IpAddr, String)> = lab
        .dns
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                IpAddr::V4(d.pod.ip),
                lab.nodes[d.node].name.clone(),
            )
        })
        .collect();
    let refs: Vec<(&str, IpAddr)> = pods.iter().map(|(n, ip, _)| (n.as_str(), *ip)).collect();
    install_coredns(
        api,
        IpAddr::V4(crate::LAB_DNS_VIP),
        IpAddr::V4(crate::LAB_API_IP),
        &refs,
        memory_limit,
    );
    for (name, ip, node) in &pods {
        api.put(
            &format!("api/v1/namespaces/kube-system/pods/{name}"),
            coredns_pod_on(name, *ip, node, memory_limit),
        );
    }
    let slice: Vec<(&str, IpAddr, &str)> = pods
        .iter()
        .map(|(n, ip, node)| (n.as_str(), *ip, node.as_str()))
        .collect();
    api.put(
        "apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-abcde",
        endpoint_slice(&slice),
    );
    let mut dep = api
        .get("apis/apps/v1/namespaces/kube-system/deployments/coredns")
        .unwrap();
    dep["status"] = json!({"replicas": pods.len(), "readyReplicas": pods.len(), "availableReplicas": pods.len()});
    api.put(
        "apis/apps/v1/namespaces/kube-system/deployments/coredns",
        dep,
    );
    for node in &lab.nodes {
        let name = format!("coredns-healthcheck-{}", node.name);
        api.put(
            &format!("api/v1/namespaces/kube-system/pods/{name}"),
            agent_pod(&node.name, IpAddr::V4(node.ip)),
        );
    }
}
