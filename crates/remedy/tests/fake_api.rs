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
    assert_eq!(s.pods.len(), 2);
    assert_eq!(s.pods[0].deployment.as_deref(), Some("coredns"));
    assert_eq!(s.pods[0].memory_limit, Some(170 << 20));
    assert_eq!(s.pods[0].container.as_deref(), Some("coredns"));
    assert!(s.pods[0].ready && !s.pods[0].terminating);

    // A new pod arrives through the watch, not a new LIST.
    let lists_before = api
        .requests()
        .iter()
        .filter(|r| r.contains("/pods?") && !r.contains("watch=true"))
        .count();
    api.put(
        "api/v1/namespaces/kube-system/pods/coredns-c",
        hc_testkit::oom_killed(
            hc_testkit::coredns_pod("coredns-c", ip("10.244.0.4"), "170Mi"),
            3,
        ),
    );
    let mut found = None;
    for _ in 0..100 {
        found = d
            .snapshot()
            .pods
            .into_iter()
            .find(|p| p.name == "coredns-c");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = found.expect("the watch delivered the new pod");
    assert_eq!(c.last_termination.as_deref(), Some("OOMKilled"));
    assert_eq!(c.restarts, 3);
    let lists_after = api
        .requests()
        .iter()
        .filter(|r| r.contains("/pods?") && !r.contains("watch=true"))
        .count();
    assert_eq!(lists_before, lists_after, "no periodic LIST");
    assert_eq!(d.health().last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_with_pdb_refusal_then_success_and_events() {
    let api = cluster();
    let ex = executor(&api, Mode::On).await;
    api.refuse_evictions(1);
    let evict = Action::Evict {
        pod: "coredns-a".into(),
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
    let obs = ex.observe_deployment("coredns", "coredns").await.unwrap();
    assert_eq!(
        (obs.memory_limit, obs.addon_managed),
        (Some(170 << 20), false)
    );
    let raise = |from: u64, to: u64| Action::RaiseMemory {
        deployment: "coredns".into(),
        container: "coredns".into(),
        from,
        to,
        request_to: None,
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
    api.put("apis/apps/v1/namespaces/kube-system/deployments/coredns", d);
    assert!(
        ex.observe_deployment("coredns", "coredns")
            .await
            .unwrap()
            .addon_managed
    );
    assert!(
        matches!(ex.execute(&raise(340 << 20, 680 << 20)).await, Outcome::Refused(m) if m.contains("addon manager"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_one_leader_and_release_hands_over() {
    let api = cluster();
    let fast = |id: &str| {
        let mut c = LeaseConfig::new("kube-system", "coredns-healthcheck", id);
        c.retry = Duration::from_millis(100);
        c.renew = Duration::from_millis(500);
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
    let lease = api
        .get("apis/coordination.k8s.io/v1/namespaces/kube-system/leases/coredns-healthcheck")
        .unwrap();
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap().to_owned();
    assert!(holder == "agent-a" || holder == "agent-b");
    // Stay stable for a while: renewals keep it.
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
}
