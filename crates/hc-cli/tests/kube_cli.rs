//! `hc-cli run` in Kubernetes mode: the real binary talks to a stateful fake API server through
//! a generated kubeconfig, probes the lab's DNS pods it discovered, and reports what it saw
//! (read-only: remediation is the controller's, controller_lab.rs). Root only;
//! everything runs inside the lab's node namespace.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Agent, BIN, ip};
use hc_testkit::{FakeApi, Lab, install_coredns};
use serde_json::Value;

/// A lab with two DNS pods, and a fake API server inside its node namespace that describes them.
struct Cluster {
    api: FakeApi,
    kubeconfig: PathBuf,
    lab: Lab,
}

impl Cluster {
    fn new(memory: &str) -> Cluster {
        let lab = Lab::new(2, 0);
        let listener = lab
            .node
            .run(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let api = FakeApi::start_on(listener);
        api.dial_from_netns(&lab.node.path());
        let pods = [
            ("coredns-a", ip("10.244.0.2")),
            ("coredns-b", ip("10.244.0.3")),
        ];
        install_coredns(&api, ip("10.96.0.10"), ip("10.96.0.1"), &pods, memory);
        // The probing plan a controller would publish, with time 100 times faster (rounds of
        // 150 ms): one node probes both pods in every epoch of 300 ms.
        api.put(
            "api/v1/namespaces/kube-system/configmaps/coredns-healthcheck-plan",
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "coredns-healthcheck-plan", "namespace": "kube-system"},
                "data": {"nodes": "1", "pods-per-epoch": "2", "epoch-ms": "300"}}),
        );
        let kubeconfig =
            std::env::temp_dir().join(format!("{}.kubeconfig", hc_testkit::unique_name("hck")));
        api.write_kubeconfig(&kubeconfig);
        Cluster {
            api,
            kubeconfig,
            lab,
        }
    }

    fn agent(&self, extra: &[&str]) -> Agent {
        let k = self.kubeconfig.display().to_string();
        let mut args = vec![];
        if !extra.contains(&"--kubeconfig") {
            args.extend(["--kubeconfig", &k]);
        }
        args.extend([
            "--interval",
            "150ms",
            "--query-budget",
            "100",
            "--timeout",
            "200ms",
            "--attempts",
            "1",
            "--failure-threshold",
            "2",
        ]);
        args.extend_from_slice(extra);
        Agent::start(Some(&self.lab.node), &args)
    }

    fn once(&self, extra: &[&str]) -> std::process::Output {
        let k = self.kubeconfig.display().to_string();
        self.lab
            .node
            .command(BIN)
            .args([
                "run",
                "--kubeconfig",
                &k,
                "--once",
                "--json",
                "--timeout",
                "300ms",
            ])
            .args(extra)
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// `/status`, or null while the agent is not listening yet.
fn status(a: &Agent) -> Value {
    a.get("/status")
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or(Value::Null)
}

#[test]
fn root_discovery_finds_the_service_the_pods_and_the_expected_answer() {
    let c = Cluster::new("170Mi");
    let o = c.once(&[]);
    Agent::assert_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = v["targets"].as_array().unwrap();
    let pairs: Vec<(String, String)> = t
        .iter()
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_owned(),
                r["transport"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for target in ["10.96.0.10:53", "10.244.0.2:53", "10.244.0.3:53"] {
        for tr in ["udp", "tcp"] {
            assert!(
                pairs.contains(&(target.into(), tr.into())),
                "{target} {tr} missing: {pairs:?}"
            );
        }
    }
    assert_eq!(t.len(), 6);
    for r in t {
        assert_eq!(r["name"], "kubernetes.default.svc.cluster.local.");
        assert_eq!(r["answers"], serde_json::json!(["10.96.0.1"]));
    }
    // The expected answer is the discovered ClusterIP of default/kubernetes: change it, and the
    // same answers are wrong.
    let mut svc = c
        .api
        .get("api/v1/namespaces/default/services/kubernetes")
        .unwrap();
    svc["spec"]["clusterIP"] = "10.96.0.2".into();
    c.api
        .put("api/v1/namespaces/default/services/kubernetes", svc);
    let o = c.once(&[]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["targets"][0]["error"]["kind"], "wrong-answer");
    // Read-only watches of the Service, its EndpointSlices, default/kubernetes and the probing
    // plan; no pods.
    let verbs: std::collections::BTreeSet<(String, String)> = c
        .api
        .audit()
        .into_iter()
        .map(|e| (e.verb, e.resource))
        .collect();
    for (verb, res) in &verbs {
        assert!(
            ["list", "watch"].contains(&verb.as_str())
                && ["services", "endpointslices", "configmaps"].contains(&res.as_str()),
            "the agent asked for {verb} {res}"
        );
    }
}

#[test]
fn root_the_agent_status_names_each_coredns_pod_and_its_node() {
    let c = Cluster::new("170Mi");
    let a = c.agent(&["--node-name", "node-7"]);
    // The Service over UDP and TCP, each pod over UDP (TCP only to diagnose a UDP failure).
    a.wait_for("a round with the pods", |a| {
        status(a)["targets"].as_array().is_some_and(|t| {
            t.len() == 6 && t.iter().filter(|t| t["last_result"] == "ok").count() == 4
        })
    });
    let s = status(&a);
    assert_eq!(s["node"], "node-7");
    for t in s["targets"].as_array().unwrap() {
        match t["target"].as_str().unwrap() {
            "10.96.0.10:53" => assert_eq!(t["role"], "service"),
            "10.244.0.2:53" => {
                assert_eq!(t["role"], "pod");
                assert_eq!(t["pod"]["name"], "coredns-a");
                assert_eq!(t["pod"]["uid"], hc_testkit::pod_uid("coredns-a"));
                assert_eq!(t["pod"]["node"], "node-1");
            }
            "10.244.0.3:53" => assert_eq!(t["pod"]["name"], "coredns-b"),
            other => panic!("unexpected target {other}"),
        }
        if t["role"] == "pod" && t["transport"] == "tcp" {
            assert_eq!(t["state"], "unknown", "{t}");
            assert!(t["last_result"].is_null(), "{t}");
            continue;
        }
        assert_eq!(t["last_result"], "ok");
        assert!(t["checked_unix_ms"].as_u64().unwrap() > 1_700_000_000_000);
    }
    // At start it said what discovery found, before the first round.
    let mut a = a;
    a.child.kill().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut a.child.stderr.take().unwrap(), &mut log).unwrap();
    let found = (log.lines())
        .find(|l| l.contains(r#""message":"discovered""#))
        .unwrap_or_else(|| panic!("no discovered line:\n{log}"));
    for t in [
        "10.96.0.10:53 (service)",
        "10.244.0.2:53 (pod coredns-a on node-1)",
        "10.244.0.3:53 (pod coredns-b on ",
        "expect 10.96.0.1",
    ] {
        assert!(found.contains(t), "{t} missing: {found}");
    }
}

#[test]
fn root_a_coredns_pod_that_leaves_the_endpoints_is_forgotten() {
    let c = Cluster::new("170Mi");
    let a = c.agent(&[]);
    let pod_b = "10.244.0.3:53";
    let up_b = |a: &Agent| {
        let body = a.get("/metrics").map(|r| r.body).unwrap_or_default();
        hc_testkit::metric_value(
            &body,
            "coredns_healthcheck_target_up",
            &[("target", pod_b), ("transport", "udp")],
        )
    };
    a.wait_for("coredns-b probed", |a| up_b(a) == Some(1.0));
    // The EndpointSlice now holds coredns-a only (coredns-b scaled away).
    let slice = "apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-abcde";
    let mut v = c.api.get(slice).unwrap();
    v["endpoints"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["addresses"][0] != "10.244.0.3");
    c.api.put(slice, v);
    a.wait_for("coredns-b forgotten", |a| {
        let targets = status(a)["targets"].clone();
        (targets.as_array())
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["target"] != pod_b))
    });
    assert_eq!(up_b(&a), None, "its target_up series goes with it");
    let s = status(&a);
    assert!(
        (s["targets"].as_array().unwrap().iter()).any(|t| t["target"] == "10.244.0.2:53"),
        "{s}"
    );
}

#[test]
fn root_flags_that_moved_to_the_controller_are_accepted_with_a_warning() {
    let c = Cluster::new("170Mi");
    let o = c.once(&["--remediation", "on"]);
    Agent::assert_exit(&o, 0);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--remediation") && e.contains("hc-cli controller"),
        "{e}"
    );
    // Their variables, set by an old manifest, are named as ignored.
    // `run --once` with one variable of an old manifest set.
    let once_with = |var: &str, value: &str| {
        (c.lab.node.command(BIN))
            .args([
                "run",
                "--once",
                "--json",
                "--timeout",
                "300ms",
                "--kubeconfig",
            ])
            .arg(&c.kubeconfig)
            .env(var, value)
            .output()
            .unwrap()
    };
    let o = once_with("HC_LEASE_NAME", "x");
    Agent::assert_exit(&o, 0);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("HC_LEASE_NAME has no effect on the agent"),
        "{e}"
    );
    // The old name of HC_DNS_PORT still sets the port (nothing listens on this one).
    let o = once_with("HC_UDP_PORT", "5399");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ports: Vec<&str> = (v["targets"].as_array().unwrap().iter())
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert!(
        !ports.is_empty() && ports.iter().all(|t| t.ends_with(":5399")),
        "{ports:?}"
    );
    // The others are usage errors that say where the flag went.
    let o = c.once(&["--lease-name", "x"]);
    Agent::assert_exit(&o, 2);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--lease-name is a flag of `hc-cli controller` now"),
        "{e}"
    );
}

#[test]
fn root_api_down_probing_goes_on_within_the_shipped_rbac() {
    let c = Cluster::new("170Mi");
    // The agent's own service account, and only what the rendered manifests grant it.
    c.api.enforce_rbac(&common::rendered("deploy/base"));
    let sa = std::env::temp_dir().join(format!("{}.kubeconfig", hc_testkit::unique_name("hcsa")));
    c.api
        .write_kubeconfig_for(&sa, "kube-system", "coredns-healthcheck");
    let a = c.agent(&["--kubeconfig", &sa.display().to_string()]);
    a.wait_for("reachable", |a| {
        status(a)["kubernetes"]["api_reachable"] == true
    });
    c.api.set_down(true);
    a.wait_for("unreachable shown in /status", |a| {
        status(a)["kubernetes"]["api_reachable"] == false
    });
    let r0 = a.metric("coredns_healthcheck_rounds_total", &[]).unwrap();
    a.wait_for("rounds go on", |a| {
        a.metric("coredns_healthcheck_rounds_total", &[]).unwrap() >= r0 + 3.0
    });
    // On the last known targets: the discovered pods are still probed.
    let q = [
        ("target", "10.244.0.3:53"),
        ("transport", "udp"),
        ("source", "host"),
        ("result", "ok"),
    ];
    let q0 = a
        .metric("coredns_healthcheck_dns_queries_total", &q)
        .unwrap();
    a.wait_for("pods still probed", |a| {
        a.metric("coredns_healthcheck_dns_queries_total", &q)
            .unwrap()
            > q0
    });
    // The outage lasts: the client retries its watches all along.
    std::thread::sleep(std::time::Duration::from_secs(10));
    c.api.set_down(false);
    a.wait_for("reachable again", |a| {
        status(a)["kubernetes"]["api_reachable"] == true
    });
    let _ = std::fs::remove_file(sa);
    // The outage is said once when it starts and once when it ends, with the cause; the
    // client's own retries are not logged.
    let log = a.finish();
    let lines: Vec<&str> = log.lines().collect();
    let count = |s: &str| lines.iter().filter(|l| l.contains(s)).count();
    assert_eq!(count("Kubernetes API unreachable"), 1, "{log}");
    assert_eq!(count("Kubernetes API reachable again"), 1, "{log}");
    eprintln!(
        "{} log lines for the whole test, one outage of 10 s",
        lines.len()
    );
    assert!(
        lines.len() <= 12,
        "{} lines for one outage: {log}",
        lines.len()
    );
    // Nothing the shipped Role does not grant, before, during or after the outage.
    let denied: Vec<_> = c
        .api
        .audit()
        .into_iter()
        .filter(|e| e.code == 403)
        .collect();
    assert!(denied.is_empty(), "{denied:?}");
}

/// A stand-in kubelet for probe pods: runs the pod's `hc-cli` arguments inside the lab's node
/// namespace (where the pod network is), stores the output as the pod's logs and sets its phase.
/// `image_pull_fails`: leave the pod waiting on ErrImagePull instead.
fn kubelet(
    c: &Cluster,
    image_pull_fails: bool,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<String> {
    let mut ran = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for pod in c.api.list("api/v1", "kube-system", "pods") {
            if pod["metadata"]["labels"]["app.kubernetes.io/name"] != "coredns-healthcheck-probe"
                || !pod["status"].is_null()
            {
                continue;
            }
            let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
            let mut pod = pod.clone();
            if image_pull_fails {
                pod["status"] = serde_json::json!({"phase": "Pending", "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
                    "image": "x", "imageID": "", "state": {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}}]});
            } else {
                let args: Vec<String> = pod["spec"]["containers"][0]["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect();
                let o = c.lab.node.command(BIN).args(&args).output().unwrap();
                c.api
                    .set_logs("kube-system", &name, &String::from_utf8_lossy(&o.stdout));
                let phase = if o.status.success() {
                    "Succeeded"
                } else {
                    "Failed"
                };
                pod["status"] = serde_json::json!({"phase": phase});
            }
            c.api
                .put(&format!("api/v1/namespaces/kube-system/pods/{name}"), pod);
            ran.push(name);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    ran
}

fn probe_pods_left(c: &Cluster) -> usize {
    c.api
        .list("api/v1", "kube-system", "pods")
        .iter()
        .filter(|p| {
            p["metadata"]["labels"]["app.kubernetes.io/name"] == "coredns-healthcheck-probe"
        })
        .count()
}

#[test]
fn root_via_probe_pod_probes_from_inside_and_leaves_nothing() {
    let c = Cluster::new("170Mi");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (o, ran) = std::thread::scope(|s| {
        let k = s.spawn(|| kubelet(&c, false, &stop));
        let o = c.once(&["--via", "probe-pod", "--probe-pod-timeout", "20s"]);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (o, k.join().unwrap())
    });
    Agent::assert_exit(&o, 0);
    assert_eq!(ran.len(), 1, "one probe pod");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = v["targets"].as_array().unwrap();
    assert_eq!(
        t.len(),
        6,
        "the Service and both pods, UDP and TCP, probed by the pod"
    );
    assert!(
        t.iter()
            .all(|r| r["healthy"] == true && r["answers"] == serde_json::json!(["10.96.0.1"]))
    );
    assert!(
        t.iter()
            .any(|r| r["target"] == "10.244.0.3:53" && r["transport"] == "tcp")
    );
    assert_eq!(probe_pods_left(&c), 0, "the probe pod was deleted");
    let reqs = c.api.requests();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET") && r.contains(&format!("pods/{}/log", ran[0])))
    );
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("DELETE") && r.contains(&ran[0]))
    );
}

#[test]
fn root_via_probe_pod_cleans_up_and_says_why_when_it_cannot_start() {
    let c = Cluster::new("170Mi");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let o = std::thread::scope(|s| {
        let k = s.spawn(|| kubelet(&c, true, &stop));
        let o = c.once(&["--via", "probe-pod", "--probe-pod-timeout", "20s"]);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        k.join().unwrap();
        o
    });
    assert_eq!(o.status.code(), Some(3), "a run-time failure");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("cannot start") && e.contains("ErrImagePull"),
        "{e}"
    );
    assert_eq!(probe_pods_left(&c), 0, "deleted after the error");

    // Forbidden: a clear error naming what to grant.
    c.api.forbid("POST", "pods");
    let o = c.once(&["--via", "probe-pod"]);
    assert_eq!(o.status.code(), Some(2), "RBAC is configuration");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("forbidden") && e.contains("--via direct"), "{e}");
}

#[test]
fn root_node_condition_is_set_on_transitions_only() {
    let c = Cluster::new("170Mi");
    c.api.put(
        "api/v1/nodes/node-1",
        serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}]}}),
    );
    let cond = || -> Option<Value> {
        let n = c.api.get("api/v1/nodes/node-1").unwrap();
        n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ClusterDNSReachable")
            .cloned()
    };
    let a = c.agent(&[
        "--node-condition",
        "--node-name",
        "node-1",
        "--remediation",
        "off",
    ]);
    a.wait_for("condition True", |_| {
        cond().is_some_and(|x| x["status"] == "True")
    });
    a.wait_rounds(5);
    let patches = || {
        c.api
            .requests()
            .iter()
            .filter(|r| r.starts_with("PATCH") && r.contains("nodes/node-1/status"))
            .count()
    };
    assert_eq!(patches(), 1, "patched once while nothing changed");
    c.lab.drop_udp_at_dns_pod(0);
    a.wait_for("condition False", |_| {
        cond().is_some_and(|x| x["status"] == "False")
    });
    let x = cond().unwrap();
    assert_eq!(x["reason"], "UDPBlocked", "{x}");
    assert!(
        x["message"]
            .as_str()
            .unwrap()
            .contains("10.244.0.2:53 over udp"),
        "{x}"
    );
    let n = c.api.get("api/v1/nodes/node-1").unwrap();
    assert!(
        n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["type"] == "Ready"),
        "the kubelet's conditions stay"
    );
    assert_eq!(patches(), 2);
}

#[test]
fn root_via_port_forward_checks_each_pod_over_tcp_and_says_udp_was_not() {
    let mut c = Cluster::new("170Mi");
    c.lab.dns[1].server.kill();
    let o = c.once(&["--via", "port-forward"]);
    Agent::assert_exit(&o, 1);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["via"], "port-forward");
    assert!(v["note"].as_str().unwrap().contains("UDP"), "{v}");
    let t = v["targets"].as_array().unwrap();
    assert_eq!(
        t.len(),
        2,
        "one TCP probe per pod, no Service, no UDP: {t:#?}"
    );
    assert!(t.iter().all(|r| r["transport"] == "tcp"));
    let a = t.iter().find(|r| r["target"] == "10.244.0.2:53").unwrap();
    assert_eq!(a["healthy"], true, "{a}");
    assert_eq!(a["answers"], serde_json::json!(["10.96.0.1"]));
    let b = t.iter().find(|r| r["target"] == "10.244.0.3:53").unwrap();
    assert_eq!(
        b["healthy"], false,
        "the killed pod fails through the tunnel too: {b}"
    );
    let reqs = c.api.requests();
    assert!(
        reqs.iter()
            .any(|r| r.contains("pods/coredns-a/portforward")),
        "{reqs:?}"
    );
}

#[test]
fn no_target_and_no_cluster_says_what_to_give() {
    let o = std::process::Command::new(BIN)
        .args(["run", "--once"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--target") && e.contains("--kubeconfig"), "{e}");
}

#[test]
fn a_kubeconfig_exec_plugin_that_hangs_does_not_block_start_up() {
    // The API server's address is never contacted: the plugin never answers.
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", hc_testkit::unique_name("hcx")));
    std::fs::write(
        &path,
        r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: sleep
      args: ["600"]
      interactiveMode: Never
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let o = std::process::Command::new(BIN)
        .args(["run", "--once", "--kubeconfig"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("exec plugin") && e.contains("no answer within"),
        "{e}"
    );
    // A bound against a hang, not a speed claim: the plugin would take 600 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
}

#[test]
fn root_nothing_known_is_not_healthy() {
    let c = Cluster::new("170Mi");
    c.api.set_down(true);
    // --once: exit 3, saying why.
    let o = c.once(&[]);
    Agent::assert_exit(&o, 3);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("nothing was checked") && e.contains("Kubernetes API"),
        "{e}"
    );
    assert!(o.stdout.is_empty());
    // The agent: /status and /readyz 503, with the reason, until the API answers.
    let a = c.agent(&[]);
    a.wait_for("the reason in /status", |a| {
        status(a)["nothing_checked"]
            .as_str()
            .is_some_and(|w| w.contains("no DNS target known"))
    });
    assert_eq!(a.get("/status").unwrap().status, 503);
    assert_eq!(a.get("/readyz").unwrap().status, 503);
    assert_eq!(status(&a)["healthy"], false);
    c.api.set_down(false);
    a.wait_for("healthy once the targets are known", |a| {
        status(a)["healthy"] == true
    });
    assert_eq!(a.get("/readyz").unwrap().status, 200);
    assert!(status(&a)["nothing_checked"].is_null());
}
