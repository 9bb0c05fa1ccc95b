//! The agents and the controller together, in the shipped shape (tests/common/shipped.rs):
//! several simulated nodes, each with its own agent and its own path to the CoreDNS pods, the
//! fake API server enforcing the rendered RBAC, and faults injected for real. Each scenario
//! asserts the exact requests the controller made. Root only (network namespaces).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use common::shipped::Shipped;
use serde_json::Value;

const REMEDIATE: &str = "deploy/overlays/remediate";

/// The verdicts in a controller status, as `kind:subject`.
fn verdicts(s: &Value) -> Vec<String> {
    s["verdicts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            format!(
                "{}:{}",
                v["kind"].as_str().unwrap(),
                v["subject"].as_str().unwrap()
            )
        })
        .collect()
}

/// Waits until every node reports on every pod (the view is complete).
fn settled(c: &Shipped, n: usize) {
    let nodes = c.lab.nodes.len();
    c.wait_for(30, "every node reporting on every pod", |c| {
        let s = c.controller_status(n);
        s["agents"]["reporting"] == nodes
            && s["pods"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["nodes_reporting"] == nodes))
    });
}

/// What the ReplicaSet and the EndpointSlice controller do after an eviction: a replacement
/// `<name>-r` with a new UID, on the same node and (here) the same address.
fn replace(c: &Shipped, k: usize) {
    let d = &c.lab.dns[k];
    let name = format!("{}-r", d.name);
    let node = &c.lab.nodes[d.node].name;
    let ip = std::net::IpAddr::V4(d.pod.ip);
    c.api.put(
        &format!("api/v1/namespaces/kube-system/pods/{name}"),
        hc_testkit::coredns_pod_on(&name, ip, node, "170Mi"),
    );
    let pods: Vec<(String, std::net::IpAddr, String)> = c
        .lab
        .dns
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let n = if i == k { name.clone() } else { x.name.clone() };
            (
                n,
                std::net::IpAddr::V4(x.pod.ip),
                c.lab.nodes[x.node].name.clone(),
            )
        })
        .collect();
    let refs: Vec<(&str, std::net::IpAddr, &str)> = pods
        .iter()
        .map(|(n, ip, node)| (n.as_str(), *ip, node.as_str()))
        .collect();
    c.api.put(
        "apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-abcde",
        hc_testkit::endpoint_slice(&refs),
    );
}

fn events_on(c: &Shipped, namespace: &str, kind: &str) -> Vec<Value> {
    c.api
        .list("apis/events.k8s.io/v1", namespace, "events")
        .into_iter()
        .filter(|e| e["regarding"]["kind"] == kind)
        .collect()
}

#[test]
fn root_udp_dropped_at_one_dns_pod_evicts_exactly_that_pod_once() {
    let c = Shipped::new(4, 2, REMEDIATE);
    let _agents = c.agents();
    let ctl = c.controller(0, "controller-a", &[]);
    settled(&c, 0);
    assert!(
        verdicts(&c.controller_status(0)).is_empty(),
        "healthy: no verdict"
    );
    // The probing plan the agents follow: 4 nodes, 2 pods, each node probes both per epoch
    // (half the 3 s window).
    let plan = c
        .api
        .get("api/v1/namespaces/kube-system/configmaps/coredns-healthcheck-plan")
        .expect("the controller publishes the probing plan");
    assert_eq!(plan["data"]["nodes"], "4", "{plan}");
    assert_eq!(plan["data"]["pods-per-epoch"], "2", "{plan}");
    assert_eq!(plan["data"]["epoch-ms"], "1500", "{plan}");
    c.lab.drop_udp_at_dns_pod(0);
    // The controller evicts, then records the Event: wait for both.
    c.wait_for(30, "the eviction and its Event", |c| {
        !c.evicted().is_empty() && !events_on(c, "kube-system", "Pod").is_empty()
    });
    assert_eq!(c.evicted(), ["coredns-0"], "{}", ctl.log());
    // The evidence, on the pod's Event: a quorum (60%) of the nodes with a result in the window
    // (one node's last result may predate the fault).
    let ev = events_on(&c, "kube-system", "Pod");
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["reason"], "DNSPodEvicted");
    let note = ev[0]["note"].as_str().unwrap();
    assert!(
        ["fails from 3 of 4 nodes", "fails from 4 of 4 nodes"]
            .iter()
            .any(|s| note.contains(s)),
        "{note}"
    );
    // Still failing (the fake keeps its endpoint): no second eviction within the cooldown.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(c.evicted(), ["coredns-0"]);
    assert_eq!(
        c.controller_writes(),
        ["create pods/eviction coredns-0", "create events "],
        "exactly these writes"
    );
}

#[test]
fn root_one_node_cut_off_is_an_event_on_that_node_and_no_eviction() {
    let c = Shipped::new(4, 2, REMEDIATE);
    let _agents = c.agents();
    let _ctl = c.controller(0, "controller-a", &[]);
    settled(&c, 0);
    c.lab.break_node(2);
    // The Event is written during the round; the status naming the verdict is published at
    // its end: wait for both.
    c.wait_for(30, "the Event on node-2 and the round's status", |c| {
        !events_on(c, "default", "Node").is_empty() && !verdicts(&c.controller_status(0)).is_empty()
    });
    let ev = events_on(&c, "default", "Node");
    assert_eq!(ev[0]["regarding"]["name"], "node-2");
    assert_eq!(ev[0]["type"], "Warning");
    assert_eq!(verdicts(&c.controller_status(0)), ["node:node-2"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(c.evicted().is_empty());
    assert_eq!(c.controller_writes(), ["create events "], "one Event, once");
}

#[test]
fn root_the_service_nat_broken_is_reported_and_no_eviction() {
    let c = Shipped::new(4, 2, REMEDIATE);
    let _agents = c.agents();
    let _ctl = c.controller(0, "controller-a", &[]);
    settled(&c, 0);
    for n in 1..4 {
        c.lab.break_service(n);
    }
    c.wait_for(30, "the service verdict", |c| {
        verdicts(&c.controller_status(0)).contains(&"service:service".to_owned())
    });
    let s = c.controller_status(0);
    assert!(
        s["last_actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["description"]
                .as_str()
                .unwrap()
                .starts_with("service-path:")),
        "{s}"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        c.controller_writes().is_empty(),
        "{:?}",
        c.controller_writes()
    );
}

#[test]
fn root_the_leaders_own_node_cut_off_evicts_nothing() {
    let c = Shipped::new(4, 2, REMEDIATE);
    let _agents = c.agents();
    // The controller runs on node 0, whose path to DNS breaks.
    let _ctl = c.controller(0, "controller-a", &[]);
    settled(&c, 0);
    c.lab.break_node(0);
    c.wait_for(30, "node-0 blamed", |c| {
        verdicts(&c.controller_status(0)) == ["node:node-0"]
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(c.evicted().is_empty());
}

#[test]
fn root_two_controllers_one_acts_and_a_restarted_one_keeps_the_cooldown() {
    let c = Shipped::new(4, 2, REMEDIATE);
    let _agents = c.agents();
    let a = c.controller(0, "controller-a", &[]);
    let b = c.controller(1, "controller-b", &[]);
    settled(&c, 0);
    c.lab.drop_udp_at_dns_pod(0);
    c.wait_for(30, "the eviction", |c| !c.evicted().is_empty());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        c.evicted(),
        ["coredns-0"],
        "one eviction for two controllers"
    );
    let leaders: Vec<bool> = [0, 1]
        .iter()
        .map(|n| c.controller_status(*n)["leader"] == true)
        .collect();
    assert_eq!(leaders.iter().filter(|l| **l).count(), 1, "{leaders:?}");
    let lease = c
        .api
        .get("apis/coordination.k8s.io/v1/namespaces/kube-system/leases/coredns-healthcheck")
        .unwrap();
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap().to_owned();
    assert_eq!(
        holder,
        if leaders[0] {
            "controller-a"
        } else {
            "controller-b"
        }
    );
    assert!(
        lease["metadata"]["annotations"]["coredns-healthcheck.io/history"]
            .as_str()
            .unwrap()
            .contains("evict")
    );
    // The replacement answers; both controllers go; a new replica starts within the cooldown;
    // the other pod starts failing.
    c.lab.restore_udp_at_dns_pod(0);
    replace(&c, 0);
    drop((a, b));
    c.lab.drop_udp_at_dns_pod(1);
    let _c2 = c.controller(2, "controller-c", &[]);
    c.wait_for(40, "the new leader sees the pod verdict and waits", |c| {
        let s = c.controller_status(2);
        s["leader"] == true
            && s["last_actions"].as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["description"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("cooldown:")
                })
            })
    });
    assert_eq!(
        c.evicted(),
        ["coredns-0"],
        "no action until the cooldown ends"
    );
}

#[test]
fn root_memory_only_for_a_fresh_oom_kill_on_its_deployment_and_dry_run_changes_nothing() {
    let c = Shipped::new(3, 2, "deploy/base");
    let _agents = c.agents();
    // An OOM kill of 51 days ago: nothing to do.
    let old = hc_testkit::rfc3339(
        std::time::SystemTime::now() - std::time::Duration::from_secs(51 * 86_400),
    );
    let pod = |finished: &str| {
        let mut p = c
            .api
            .get("api/v1/namespaces/kube-system/pods/coredns-1")
            .unwrap();
        p = hc_testkit::oom_killed_at(p, 4, finished);
        p
    };
    c.api
        .put("api/v1/namespaces/kube-system/pods/coredns-1", pod(&old));
    // Dry-run first (the base): a fresh kill is planned, and nothing changes.
    let dry = c.controller(0, "controller-dry", &[]);
    settled(&c, 0);
    let fresh =
        hc_testkit::rfc3339(std::time::SystemTime::now() - std::time::Duration::from_secs(30));
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        c.controller_writes().is_empty(),
        "an old kill raises nothing"
    );
    c.api
        .put("api/v1/namespaces/kube-system/pods/coredns-1", pod(&fresh));
    c.wait_for(30, "the dry-run raise", |c| {
        c.controller_status(0)["last_actions"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|x| x["action"] == "raise-memory" && x["result"] == "dry-run")
            })
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let s = c.controller_status(0);
    let descriptions: Vec<&str> = s["last_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["description"].as_str().unwrap())
        .collect();
    assert!(
        !descriptions.iter().any(|d| d.starts_with("patch-reverted")),
        "no false report: {descriptions:?}"
    );
    assert!(
        c.controller_writes().is_empty(),
        "dry-run: {:?}",
        c.controller_writes()
    );
    drop(dry);
    // On: one raise, on the Deployment that owns the pod, once.
    let _on = c.controller(0, "controller-on", &[("HC_REMEDIATION", "on")]);
    // The Event is written after the patch: wait for both, then for nothing more.
    c.wait_for(40, "the raise and its Event", |c| {
        c.controller_writes().len() >= 2
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        c.controller_writes(),
        ["patch deployments coredns", "create events "],
        "one raise, on coredns"
    );
    let d = c
        .api
        .get("apis/apps/v1/namespaces/kube-system/deployments/coredns")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "340Mi"
    );
}

#[test]
fn root_a_pdb_refusal_is_retried_later_and_counted() {
    let c = Shipped::new(3, 2, REMEDIATE);
    let _agents = c.agents();
    let _ctl = c.controller(0, "controller-a", &[]);
    settled(&c, 0);
    c.api.refuse_evictions(2);
    c.lab.drop_udp_at_dns_pod(1);
    c.wait_for(30, "the eviction after two refusals", |c| {
        !c.evicted().is_empty()
    });
    assert_eq!(c.evicted(), ["coredns-1"]);
    assert_eq!(c.api.eviction_attempts(), 3);
    let addr = std::net::SocketAddr::new(c.lab.nodes[0].ip.into(), 9891);
    let scrape = || {
        c.lab
            .net
            .run(|| hc_testkit::http(addr, "GET", "/metrics").unwrap().body)
    };
    let value = |metrics: &str, result: &str| {
        hc_testkit::metric_value(
            metrics,
            "coredns_healthcheck_remediations_total",
            &[("action", "evict"), ("result", result)],
        )
    };
    // The controller counts the eviction once the API's answer is in: the API may show it
    // a moment before the counter does.
    c.wait_for(30, "the eviction counted", |_| {
        value(&scrape(), "success").is_some_and(|v| v >= 1.0)
    });
    let metrics = scrape();
    assert_eq!(value(&metrics, "retry-later"), Some(2.0), "{metrics}");
    assert_eq!(value(&metrics, "success"), Some(1.0), "{metrics}");
}

#[test]
fn root_hc_cli_status_shows_the_view_through_the_api_proxy_or_directly() {
    let c = Shipped::new(3, 2, "deploy/base");
    let _agents = c.agents();
    let _ctl = c.controller(0, "controller-a", &[]);
    settled(&c, 0);
    // The controller's Service, whose "ClusterIP" is where it listens in the lab.
    c.api.put(
        "api/v1/namespaces/kube-system/services/coredns-healthcheck-controller",
        serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "coredns-healthcheck-controller", "namespace": "kube-system"},
            "spec": {"clusterIP": c.lab.nodes[0].ip.to_string(), "ports": [{"name": "metrics", "port": 9891}]}}),
    );
    let admin = c.lab.file("admin.kubeconfig");
    c.api.write_kubeconfig(&admin);
    let status = |args: &[&str]| {
        c.lab
            .net
            .command(common::BIN)
            .arg("status")
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let k = admin.display().to_string();
    let o = status(&["--kubeconfig", &k]);
    common::Agent::assert_exit(&o, 0);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.starts_with("cluster DNS: healthy (3 nodes reporting"),
        "{text}"
    );
    c.lab.drop_udp_at_dns_pod(0);
    // A quorum of 3 nodes is 2 failing: the verdict may first say "2 of 3"; wait for the third.
    c.wait_for(30, "the pod verdict, from all 3 nodes", |c| {
        let s = c.controller_status(0);
        verdicts(&s) == ["pod:coredns-0"]
            && s["verdicts"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("fails from 3 of 3"))
    });
    let o = status(&["--kubeconfig", &k]);
    common::Agent::assert_exit(&o, 1);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("NOT healthy")
            && text.contains("verdict pod: CoreDNS pod coredns-0 fails from 3 of 3 nodes"),
        "{text}"
    );
    assert!(text.lines().count() <= 20, "{text}");
    let url = format!("http://{}:9891", c.lab.nodes[0].ip);
    let o = status(&["--controller", &url, "--json"]);
    common::Agent::assert_exit(&o, 1);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdicts"][0]["subject"], "coredns-0");
    let _ = std::fs::remove_file(admin);
    // Nothing to read: a clear usage error.
    let o = c
        .lab
        .net
        .command(common::BIN)
        .arg("status")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    common::Agent::assert_exit(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--controller"));
}

/// A Service of the fake API server, as the API server holds it.
fn service(ns: &str, name: &str, ip: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
}

/// `hc-cli status --controller` against node `n`'s controller: its exit code and its text.
fn hc_cli_status(c: &Shipped, n: usize) -> (Option<i32>, String) {
    let o = c
        .lab
        .net
        .command(common::BIN)
        .args([
            "status",
            "--controller",
            &format!("http://{}:9891", c.lab.nodes[n].ip),
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// The freshness check, end to end: the DNS pods serve the fake API server's Services through a
/// sync per pod (the lab's `kubernetes` plugin); a new Service's propagation is measured; one
/// DNS pod's sync stalls (a CoreDNS whose watch stopped), a Service is replaced and another
/// deleted, and the names still answering the old addresses are reported until the pod syncs
/// again.
#[test]
fn root_service_changes_propagate_and_a_stalled_dns_pod_leaves_stale_records() {
    let c = Shipped::new(2, 2, "deploy/base");
    let records = hc_testkit::ServiceRecords::start(&c.api, &c.lab);
    let ctl = c.controller(0, "controller-a", &[("HC_FRESHNESS_GIVE_UP", "4s")]);
    c.wait_for(
        30,
        "the controller leads, its watch of Services synced",
        |c| {
            let s = c.controller_status(0);
            s["leader"] == true
                && (s["watches"].as_array().into_iter().flatten())
                    .any(|w| w["name"] == "services" && w["healthy"] == true)
        },
    );
    let put = |name: &str, ip: &str| {
        c.api.put(
            &format!("api/v1/namespaces/shop/services/{name}"),
            service("shop", name, ip),
        );
    };
    put("web", "10.96.7.7");
    put("db", "10.96.7.9");
    let metric = |c: &Shipped, name: &str, labels: &[(&str, &str)]| {
        c.metric(0, 9891, name, labels).unwrap_or(0.0)
    };
    let checks = |c: &Shipped, event: &str, result: &str| {
        metric(
            c,
            "coredns_healthcheck_freshness_checks_total",
            &[("event", event), ("result", result)],
        )
    };
    c.wait_for(30, "both Services propagated", |c| {
        checks(c, "added", "propagated") >= 2.0
    });
    let count = metric(
        &c,
        "coredns_healthcheck_service_propagation_seconds_count",
        &[("event", "added")],
    );
    assert_eq!(count, 2.0, "{}", ctl.log());
    let s = c.controller_status(0);
    let last = &s["freshness"]["last"];
    assert!(
        (last.as_array().into_iter().flatten()).any(|r| r["name"] == "web.shop.svc.cluster.local."
            && r["result"] == "propagated"
            && r["seconds"].as_f64().is_some_and(|x| x < 4.0)),
        "{s}"
    );
    assert_eq!(s["freshness"]["stale"], serde_json::json!([]), "{s}");
    // DNS pod 1 stops syncing; web is replaced (deleted, created again with another address),
    // db deleted. Behind the Service, one pod of two answers the old addresses.
    records.stall(1);
    let faulted = std::time::Instant::now();
    assert!(c.api.delete("api/v1/namespaces/shop/services/web"));
    put("web", "10.96.7.8");
    assert!(c.api.delete("api/v1/namespaces/shop/services/db"));

    c.wait_for(30, "two stale records", |c| {
        c.controller_status(0)["freshness"]["stale"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    eprintln!(
        "stale records named {:?} after the change (give-up 4s)",
        faulted.elapsed()
    );
    let s = c.controller_status(0);
    let stale = s["freshness"]["stale"].as_array().unwrap();
    let of = |name: &str| stale.iter().find(|r| r["name"] == name).unwrap();
    let web = of("web.shop.svc.cluster.local.");
    assert_eq!(
        (&web["event"], &web["address"], &web["current"]),
        (&"changed".into(), &"10.96.7.7".into(), &"10.96.7.8".into()),
        "{s}"
    );
    assert_eq!(
        web["pods"],
        serde_json::json!(["coredns-1"]),
        "the stalled pod, named"
    );
    let db = of("db.shop.svc.cluster.local.");
    assert_eq!(
        (&db["event"], &db["address"]),
        (&"deleted".into(), &"10.96.7.9".into())
    );
    assert_eq!(s["healthy"], false, "a stale record is not healthy");
    assert_eq!(metric(&c, "coredns_healthcheck_stale_records", &[]), 2.0);
    assert_eq!(checks(&c, "changed", "stale"), 1.0);
    assert_eq!(checks(&c, "deleted", "stale"), 1.0);
    let (code, text) = hc_cli_status(&c, 0);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "stale record: web.shop.svc.cluster.local. still answers 10.96.7.7 (changed Service, now 10.96.7.8) from coredns-1"
        ),
        "{text}"
    );
    assert!(ctl.log().contains("stale-record"), "logged");
    // The pod syncs again: the names answer right, the records clear.
    records.resume(1);
    c.wait_for(30, "the stale records cleared", |c| {
        c.controller_status(0)["freshness"]["stale"] == serde_json::json!([])
            && metric(c, "coredns_healthcheck_stale_records", &[]) == 0.0
    });
}

/// CoreDNS's own endpoints against what the nodes see: the DNS pods answer /health and /ready
/// as CoreDNS's plugins do; UDP is dropped at one pod while HTTP answers: the gap is named on
/// that pod only, as a metric, in /status and in `hc-cli status`; once /ready says not ready,
/// HTTP no longer claims health and the gap closes.
#[test]
fn root_http_says_healthy_while_udp_fails_and_the_gap_is_named() {
    let c = Shipped::new(3, 2, "deploy/base");
    let http: Vec<hc_testkit::HealthEndpoints> = (c.lab.dns.iter())
        .map(|d| hc_testkit::HealthEndpoints::start_in(&d.pod.ns, d.pod.ip.into(), 8080, 8181))
        .collect();
    let _agents = c.agents();
    let ctl = c.controller(0, "controller-a", &[]);
    settled(&c, 0);
    let gap = |c: &Shipped, pod: &str| {
        c.metric(0, 9891, "coredns_healthcheck_health_gap", &[("pod", pod)])
    };
    let up = |c: &Shipped, pod: &str, endpoint: &str| {
        c.metric(
            0,
            9891,
            "coredns_healthcheck_coredns_http_up",
            &[("pod", pod), ("endpoint", endpoint)],
        )
    };
    c.wait_for(30, "both pods read over HTTP", |c| {
        ["coredns-0", "coredns-1"]
            .iter()
            .all(|p| up(c, p, "health") == Some(1.0) && up(c, p, "ready") == Some(1.0))
    });
    assert!(http.iter().all(|h| h.requests() > 0));
    assert_eq!(gap(&c, "coredns-0"), Some(0.0), "healthy: no gap");
    c.lab.drop_udp_at_dns_pod(0);
    let faulted = std::time::Instant::now();
    c.wait_for(30, "the gap on coredns-0", |c| {
        gap(c, "coredns-0") == Some(1.0)
    });
    eprintln!("health gap named {:?} after the fault", faulted.elapsed());
    let s = c.controller_status(0);
    let gaps = s["health_gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{s}");
    assert_eq!(gaps[0]["pod"], "coredns-0");
    let message = gaps[0]["message"].as_str().unwrap();
    assert!(
        message.contains("answers /health ok and /ready ok") && message.contains("over UDP"),
        "{message}"
    );
    assert_eq!(gap(&c, "coredns-1"), Some(0.0));
    let pod0 = (s["pods"].as_array().unwrap().iter())
        .find(|p| p["name"] == "coredns-0")
        .unwrap();
    assert_eq!(pod0["http"]["health"], "ok", "{s}");
    let (code, text) = hc_cli_status(&c, 0);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("HTTP healthy, DNS failing: CoreDNS pod coredns-0 answers /health ok"),
        "{text}"
    );
    assert!(ctl.log().contains("http-healthy-dns-failing"));
    // The ready plugin says not ready: HTTP no longer claims health; no gap.
    http[0].set_ready(false);
    c.wait_for(30, "the gap closed", |c| {
        gap(c, "coredns-0") == Some(0.0) && up(c, "coredns-0", "ready") == Some(0.0)
    });
    // The view says why (its pods are in no set order; it is published with the metrics of
    // the same interval, so it is read until it has caught up).
    c.wait_for(30, "the view shows /ready's 503", |c| {
        (c.controller_status(0)["pods"].as_array().unwrap().iter())
            .find(|p| p["name"] == "coredns-0")
            .is_some_and(|p| p["http"]["ready"] == "http-503")
    });
}

/// The API server through cluster DNS (kubenurse's api-dns check): the `kubernetes` Service
/// leads to a real TLS server; every agent resolves the name through the DNS Service and
/// completes a handshake. One node loses the Service's rule: its agent says so, apart from DNS
/// health, which stays up; then the node's DNS path is cut and the check names DNS instead.
#[test]
fn root_the_api_server_through_cluster_dns_is_reported_apart_from_dns_health() {
    let c = Shipped::new(2, 1, "deploy/base");
    let backend = std::net::SocketAddr::new(hc_testkit::UNDERLAY_GATEWAY.into(), 6443);
    let _tls = hc_testkit::TlsServer::start_in(
        &c.lab.net,
        backend,
        "kubernetes.default.svc.cluster.local",
    );
    c.lab.serve_api_service(backend);
    let timing: Vec<(&str, &str)> = (common::shipped::AGENT_ENV.iter().copied())
        .chain([("HC_API_DNS_EVERY", "1s")])
        .collect();
    let agents: Vec<_> = (0..2).map(|n| c.agent_with(n, &timing)).collect();
    let api_dns = |c: &Shipped, n: usize| c.agent_status(n)["api_dns"].clone();
    c.wait_for(30, "both agents reach the API server through DNS", |c| {
        (0..2).all(|n| api_dns(c, n)["result"] == "ok")
    });
    let a = api_dns(&c, 0);
    assert_eq!(a["name"], "kubernetes.default.svc.cluster.local.", "{a}");
    assert_eq!(a["resolver"], "10.96.0.10:53", "{a}");
    assert_eq!(a["address"], "10.96.0.1:443", "{a}");
    let checks = |c: &Shipped, n: usize, result: &str| {
        c.metric(
            n,
            9890,
            "coredns_healthcheck_api_dns_checks_total",
            &[("result", result)],
        )
        .unwrap_or(0.0)
    };
    c.lab.break_api_service(1);
    let faulted = std::time::Instant::now();
    c.wait_for(30, "node-1's check fails at the connection", |c| {
        api_dns(c, 1)["result"] == "connect"
    });
    eprintln!(
        "api-dns failure named {:?} after the fault (every 1s)",
        faulted.elapsed()
    );
    let s = c.agent_status(1);
    assert_eq!(s["healthy"], true, "DNS health is apart: {s}");
    assert!(
        (s["targets"].as_array().unwrap().iter()).all(|t| t["state"] != "down"),
        "{s}"
    );
    assert_eq!(
        c.metric(1, 9890, "coredns_healthcheck_api_dns_up", &[]),
        Some(0.0)
    );
    assert!(checks(&c, 1, "connect") >= 1.0);
    assert_eq!(api_dns(&c, 0)["result"], "ok", "node-0 is not affected");
    assert_eq!(checks(&c, 0, "connect"), 0.0);
    assert!(
        agents[1].log().contains("api-dns-unreachable"),
        "{}",
        agents[1].log()
    );
    // The node's DNS path cut: the check fails at DNS, and so does DNS health.
    c.lab.restore_api_service(1);
    c.lab.break_node(1);
    c.wait_for(30, "node-1's check fails at DNS", |c| {
        api_dns(c, 1)["result"] == "dns"
    });
    c.wait_for(30, "node-1's DNS health down", |c| {
        c.agent_status(1)["healthy"] == false
    });
    assert_eq!(api_dns(&c, 0)["result"], "ok");
}
