//! The agent's round against real servers on loopback (no root, no namespace): thresholds,
//! transitions, the UDP-vs-TCP verdict, the status document and the metrics.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use dnsprobe::{AnswerExpectation, ProbeSpec, Thresholds};
use hc_agent::{Agent, AgentConfig};
use hc_exporter::{Metrics, Registry, TargetState};
use hc_testkit::{Behaviour, Dnsmasq, ScriptedServer, loopback};

const API: &str = "10.96.0.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn thresholds_status_and_metrics_over_rounds() {
    let good = Dnsmasq::start(
        loopback(),
        &[("kubernetes.default.svc.cluster.local", ip(API))],
        "cluster.local",
    );
    // UDP dead, TCP alive: the case an HTTP liveness probe misses.
    let udp_dead =
        ScriptedServer::start(loopback(), &[ip(API)], Behaviour::Silent, Behaviour::Answer);
    let probe = ProbeSpec::new(good.addr())
        .with_timeout(Duration::from_millis(200))
        .with_answer(AnswerExpectation::Contains(vec![ip(API)]));
    let mut cfg = AgentConfig::new(vec![good.addr(), udp_dead.addr()], probe);
    cfg.thresholds = Thresholds::new(2, 1);
    let mut registry = Registry::default();
    let metrics = Metrics::new(hc_exporter::DEFAULT_LATENCY_BUCKETS)
        .unwrap()
        .register(&mut registry, "t");
    let mut agent = Agent::new(cfg, Some(metrics), None);

    let first = agent.round(false).await.unwrap();
    assert_eq!(first.host.len(), 4, "two targets over UDP and TCP");
    assert!(!first.healthy());
    let s = agent.status(Duration::ZERO);
    let state = |s: &hc_exporter::Status, target: std::net::SocketAddr, t: &str| {
        s.targets
            .iter()
            .find(|x| x.target == target.to_string() && x.transport == t)
            .unwrap()
            .state
    };
    assert_eq!(
        state(&s, udp_dead.addr(), "udp"),
        TargetState::Unknown,
        "one failure is below the threshold"
    );
    assert_eq!(state(&s, good.addr(), "udp"), TargetState::Up);
    agent.round(false).await.unwrap();
    let s = agent.status(Duration::ZERO);
    assert_eq!(state(&s, udp_dead.addr(), "udp"), TargetState::Down);
    assert_eq!(state(&s, udp_dead.addr(), "tcp"), TargetState::Up);
    assert!(!s.healthy());
    assert_eq!(s.round, 2);
    let t = s
        .targets
        .iter()
        .find(|x| x.target == udp_dead.addr().to_string() && x.transport == "udp")
        .unwrap();
    assert_eq!(t.last_result.as_deref(), Some("timeout"));
    assert_eq!(t.consecutive_failures, 2);
    assert!(t.checked_unix_ms.is_some());
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &registry).unwrap();
    let up = |target: std::net::SocketAddr, t: &str| {
        hc_testkit::metric_value(
            &body,
            "coredns_healthcheck_target_up",
            &[("target", &target.to_string()), ("transport", t)],
        )
    };
    assert_eq!(up(udp_dead.addr(), "udp"), Some(0.0), "{body}");
    assert_eq!(up(udp_dead.addr(), "tcp"), Some(1.0));
    assert_eq!(
        hc_testkit::metric_value(&body, "coredns_healthcheck_rounds_total", &[]),
        Some(2.0)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_static_target_is_tracked_and_reported() {
    // (Targets that go away: kube_cli.rs, root_a_coredns_pod_that_leaves_the_endpoints_is_forgotten.)
    let a = Dnsmasq::start(
        loopback(),
        &[("kubernetes.default.svc.cluster.local", ip(API))],
        "cluster.local",
    );
    let probe = ProbeSpec::new(a.addr()).with_timeout(Duration::from_millis(200));
    let mut agent = Agent::new(AgentConfig::new(vec![a.addr()], probe), None, None);
    assert!(agent.round(false).await.unwrap().healthy());
    assert_eq!(agent.targets(), vec![a.addr().to_string()]);
    assert!(agent.status(Duration::ZERO).healthy());
}
