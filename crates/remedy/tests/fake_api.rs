//! remedy against the stateful fake API server: watches, evictions with PDB refusals, the
//! memory patch, Events, and the Lease.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use hc_remedy::{
    Action, ClusterSource, Discovery, DiscoveryConfig, Elector, Executor, LeaseConfig, Mode,
    Outcome, connect,
};
use hc_testkit::{FakeApi, install_coredns};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn client(api: &FakeApi) -> hc_remedy::Client {
    let dir = std::env::temp_dir().join(hc_testkit::unique_name("hc-kcfg-"));
    api.write_kubeconfig(&dir);
    let c = connect(&ClusterSource::Kubeconfig(dir.clone()))
        .await
        .unwrap();
    let _ = std::fs::remove_file(dir);
    c
}

async fn executor(api: &FakeApi, mode: Mode) -> Executor {
    Executor::new(client(api).await, "kube-system", mode, "agent-1", false)
}

fn cluster() -> FakeApi {
    let api = FakeApi::start();
    install_coredns(
        &api,
        ip("10.96.0.10"),
        ip("10.96.0.1"),
        &[
            ("coredns-a", ip("10.244.0.2")),
            ("coredns-b", ip("10.244.0.3")),
        ],
        "170Mi",
    );
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_the_watches() {
    let api = cluster();
    let d = Discovery::start(client(&api).await, &DiscoveryConfig::default());
    assert!(
        d.wait_ready(Duration::from_secs(10)).await,
        "watches listed"
    );
    let s = d.snapshot();
    assert_eq!(s.service_ips, vec![ip("10.96.0.10")]);
    assert_eq!((s.udp_port, s.tcp_port), (53, 53));
    assert_eq!(s.api_ip, Some(ip("10.96.0.1")));
    assert_eq!(
        s.endpoints.iter().map(|e| e.ip).collect::<Vec<_>>(),
        vec![ip("10.244.0.2"), ip("10.244.0.3")]
    );
    let e = &s.endpoints[0];
    assert_eq!(e.pod.as_deref(), Some("coredns-a"));
    assert_eq!(e.pod_uid.as_deref(), Some("uid-coredns-a"));
    assert_eq!(e.node.as_deref(), Some("node-1"));

    // A new endpoint arrives through the watch, not a new LIST.
    let lists = |api: &FakeApi| api.audit().iter().filter(|e| e.verb == "list").count();
    let lists_before = lists(&api);
    api.put(
        "apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-abcde",
        hc_testkit::endpoint_slice(&[
            ("coredns-a", ip("10.244.0.2"), "node-1"),
            ("coredns-c", ip("10.244.0.4"), "node-2"),
        ]),
    );
    let mut found = None;
    for _ in 0..100 {
        found = d
            .snapshot()
            .endpoints
            .into_iter()
            .find(|e| e.ip == ip("10.244.0.4"));
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = found.expect("the watch delivered the new endpoint");
    assert_eq!(c.pod.as_deref(), Some("coredns-c"));
    assert_eq!(lists_before, lists(&api), "no periodic LIST");
    assert!(
        d.health().iter().all(|(_, h)| h.healthy()),
        "{:?}",
        d.health()
    );
    // The targets: the Service, then each pod with its identity.
    let t = d.snapshot().targets(None);
    assert_eq!(t.len(), 3);
    assert_eq!(t[0].role, hc_remedy::TargetRole::Service);
    assert!(
        matches!(&t[2].role, hc_remedy::TargetRole::Pod { uid: Some(u), .. } if u == "uid-coredns-c")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_error_is_its_own_and_clears_with_a_list_it_may_make() {
    let api = cluster();
    let d = Discovery::start(client(&api).await, &DiscoveryConfig::default());
    assert!(d.wait_ready(Duration::from_secs(10)).await);
    api.set_down(true);
    let mut down = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if d.health().iter().any(|(_, h)| h.last_error.is_some()) {
            down = true;
            break;
        }
    }
    assert!(down, "the outage shows");
    let before = api.requests().len();
    api.set_down(false);
    let mut up = false;
    for _ in 0..300 {
        d.recheck().await;
        if d.health().iter().all(|(_, h)| h.healthy()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "recovered: {:?}", d.health());
    // The recheck ran: a LIST of one item (the watcher's own relists ask for pages of 500).
    let after = api.requests().split_off(before);
    let limit_one = |r: &String| r.split(['?', '&']).any(|q| q == "limit=1");
    assert!(after.iter().any(limit_one), "no recheck LIST: {after:?}");
    // The recheck is a LIST through the watch's own selectors: never a GET.
    assert!(
        api.audit().iter().all(|e| e.verb != "get"),
        "{:?}",
        api.audit()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_with_pdb_refusal_then_success_and_events() {
    let api = cluster();
    let ex = executor(&api, Mode::On).await;
    // Another pod of the same name (a replacement): the UID precondition protects it.
    let stale = Action::Evict {
        pod: "coredns-a".into(),
        uid: "uid-of-the-old-one".into(),
        reason: "failed 3 rounds".into(),
    };
    let o = ex.execute(&stale).await;
    assert!(
        matches!(&o, Outcome::Refused(m) if m.contains("Precondition")),
        "{o:?}"
    );
    assert!(api.evictions().is_empty());
    api.refuse_evictions(1);
    let evict = Action::Evict {
        pod: "coredns-a".into(),
        uid: "uid-coredns-a".into(),
        reason: "failed 3 rounds".into(),
    };

    let o = ex.execute(&evict).await;
    assert!(
        matches!(o, Outcome::RetryLater(_)),
        "429 is retry later: {o:?}"
    );
    assert!(api.evictions().is_empty());
    assert_eq!(ex.execute(&evict).await, Outcome::Success);
    assert_eq!(api.evictions(), vec!["kube-system/coredns-a"]);
    assert!(
        api.get("api/v1/namespaces/kube-system/pods/coredns-a")
            .is_none()
    );
    let events = api.list("apis/events.k8s.io/v1", "kube-system", "events");
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(
        reasons.contains(&"DNSPodEvictedFailed") && reasons.contains(&"DNSPodEvicted"),
        "{reasons:?}"
    );
    let ok = events
        .iter()
        .find(|e| e["reason"] == "DNSPodEvicted")
        .unwrap();
    assert_eq!(ok["regarding"]["name"], "coredns-a");
    assert!(ok["note"].as_str().unwrap().contains("failed 3 rounds"));

    // Dry-run changes nothing.
    let dry = executor(&api, Mode::DryRun).await;
    let before = api.requests().len();
    assert_eq!(
        dry.execute(&Action::Evict {
            pod: "coredns-b".into(),
            uid: "uid-coredns-b".into(),
            reason: "x".into()
        })
        .await,
        Outcome::DryRun
    );
    assert_eq!(api.requests().len(), before, "dry-run sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_patched_test_and_set_and_addon_managed_is_refused() {
    let api = cluster();
    let ex = executor(&api, Mode::On).await;
    let raise = |from: u64, to: u64| Action::RaiseMemory {
        deployment: "coredns".into(),
        container: "coredns".into(),
        from,
        to,
        request_to: None,
        oom: "uid-coredns-a/1".into(),
        reason: "OOMKilled".into(),
    };
    assert_eq!(
        ex.execute(&raise(170 << 20, 340 << 20)).await,
        Outcome::Success
    );
    let d = api
        .get("apis/apps/v1/namespaces/kube-system/deployments/coredns")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "340Mi"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "70Mi"
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("PATCH") && r.contains("fieldManager=coredns-healthcheck"))
    );
    // A stale plan (the limit moved) is refused, not forced.
    assert!(matches!(
        ex.execute(&raise(170 << 20, 340 << 20)).await,
        Outcome::Refused(_)
    ));

    let mut d = api
        .get("apis/apps/v1/namespaces/kube-system/deployments/coredns")
        .unwrap();
    d["metadata"]["labels"]["addonmanager.kubernetes.io/mode"] = "Reconcile".into();
    api.put(
        "apis/apps/v1/namespaces/kube-system/deployments/coredns",
        d.clone(),
    );
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(d).unwrap();
    assert!(hc_remedy::deployment_info(&d).addon_managed);
    assert!(
        matches!(ex.execute(&raise(340 << 20, 680 << 20)).await, Outcome::Refused(m) if m.contains("addon manager"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_one_leader_the_history_on_it_and_release_hands_over() {
    let api = cluster();
    let fast = |id: &str| {
        let mut c = LeaseConfig::new("kube-system", "coredns-healthcheck", id);
        c.retry = Duration::from_millis(100);
        // A renewal may come 1.4 s late on a loaded machine and the leader still holds.
        c.renew_deadline = Duration::from_millis(1500);
        c.duration = Duration::from_secs(3);
        c
    };
    let a = Elector::spawn(client(&api).await, fast("agent-a"));
    let b = Elector::spawn(client(&api).await, fast("agent-b"));
    let mut leaders = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        leaders = usize::from(a.is_leader()) + usize::from(b.is_leader());
        assert!(leaders <= 1, "two leaders at once");
        if leaders == 1 {
            break;
        }
    }
    assert_eq!(leaders, 1);
    let (leader, other) = if a.is_leader() { (&a, &b) } else { (&b, &a) };
    // The leader commits what it does to the Lease; the other cannot.
    let evict = Action::Evict {
        pod: "coredns-a".into(),
        uid: "u".into(),
        reason: "r".into(),
    };
    leader
        .commit(|h| h.record(&evict, std::time::SystemTime::now()))
        .await
        .unwrap();
    assert!(
        other
            .commit(|h| h.record(&evict, std::time::SystemTime::now()))
            .await
            .is_err()
    );
    let lease = api
        .get("apis/coordination.k8s.io/v1/namespaces/kube-system/leases/coredns-healthcheck")
        .unwrap();
    let history = lease["metadata"]["annotations"][hc_remedy::HISTORY_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(history.contains(r#""kind":"evict""#), "{history}");
    // Stay stable for a while: renewals (writes) keep it.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(leader.is_leader() && !other.is_leader());
    }
    leader.release().await;
    let mut handed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if other.is_leader() {
            handed = true;
            break;
        }
    }
    assert!(handed, "the other replica took over after the release");
    // ... and continues the history.
    assert_eq!(other.history().await.done.len(), 1);
}
