use std::net::IpAddr;

use serde_json::{Value, json};

use crate::FakeApi;

/// A CoreDNS pod as the fake API server holds it (`Running`, ready, started long ago), owned by
/// ReplicaSet `coredns-5d78c9869d` of Deployment `coredns`.
pub fn coredns_pod(name: &str, ip: IpAddr, memory_limit: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system",
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

/// Marks a pod's DNS container as last terminated `OOMKilled`, with `restarts` restarts.
pub fn oom_killed(mut pod: Value, restarts: u32) -> Value {
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(restarts);
    pod["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:01:00Z"}});
    pod
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
            "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": name, "namespace": "kube-system"}}))
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
