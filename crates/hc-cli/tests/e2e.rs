//! End-to-end against a real cluster, when one is configured: `HC_E2E_KUBECONFIG=PATH cargo
//! test -p hc-cli --test e2e -- --ignored`. Read-only: remediation off. See docs/testing.md.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn kubeconfig() -> String {
    std::env::var("HC_E2E_KUBECONFIG").expect(
        "these tests need a cluster: set HC_E2E_KUBECONFIG to the kubeconfig of a test cluster",
    )
}

#[test]
#[ignore = "needs a real cluster: set HC_E2E_KUBECONFIG and run with --ignored"]
fn discovers_coredns_in_a_real_cluster() {
    let k = kubeconfig();
    let o = Command::new(env!("CARGO_BIN_EXE_hc-cli"))
        .args([
            "run",
            "--kubeconfig",
            &k,
            "--once",
            "--json",
            "--timeout",
            "2s",
        ])
        .output()
        .unwrap();
    // 0 or 1: from outside the cluster the pod IPs may be unreachable; 2 would be a usage or
    // configuration error, 3 a round that checked nothing (no target discovered).
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let targets = v["targets"].as_array().unwrap();
    assert!(!targets.is_empty(), "discovery found no target");
    let name = targets[0]["name"].as_str().unwrap();
    assert!(name.starts_with("kubernetes.default.svc."), "{name}");
    let kubectl = Command::new("kubectl")
        .args([
            "--kubeconfig",
            &k,
            "-n",
            "kube-system",
            "get",
            "service",
            "kube-dns",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .output();
    if let Ok(out) = kubectl
        && out.status.success()
    {
        let vip = String::from_utf8(out.stdout).unwrap();
        assert!(
            targets
                .iter()
                .any(|t| t["target"].as_str().unwrap().starts_with(&vip)),
            "the kube-dns ClusterIP {vip} is a target"
        );
    }
}
