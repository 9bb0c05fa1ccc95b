//! `hc-cli run`, the agent: rounds, thresholds, metrics, status, readiness, signals, --once and
//! environment configuration, against real DNS servers on loopback and in the lab.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Agent, BIN, KillOnDrop, ip};
use hc_testkit::{Behaviour, Dnsmasq, Lab, ScriptedServer, loopback};
use serde_json::Value;

const NAME: &str = "kubernetes.default.svc.cluster.local";

fn once(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("run")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn once_exit_codes_and_report() {
    let good = Dnsmasq::start(loopback(), &[(NAME, ip("10.96.0.1"))], "cluster.local");
    let g = good.addr().to_string();
    let o = once(&["--target", &g, "--expect", "10.96.0.1", "--once"], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 2, "UDP and TCP: {out}");
    assert!(out.lines().all(|l| l.starts_with("OK   ")), "{out}");
    assert!(
        o.stderr.is_empty(),
        "no logs in --once: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let closed = hc_testkit::closed_port(loopback()).to_string();
    let o = once(
        &[
            "--target",
            &g,
            "--target",
            &closed,
            "--once",
            "--json",
            "--timeout",
            "200ms",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["healthy"], false);
    let t = v["targets"].as_array().unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(t[2]["target"], closed);
    assert_eq!(t[2]["healthy"], false);

    for bad in [
        vec!["--once"],
        vec!["--target", &g, "--interval", "0s", "--once"],
        vec!["--target", &g, "--failure-threshold", "0", "--once"],
        vec!["--target", &g, "--latency-buckets", "0.5,0.1", "--once"],
        vec!["--target", &g, "--log-format", "xml", "--once"],
    ] {
        let o = once(&bad, &[]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.stderr.is_empty());
    }
}

#[test]
fn configured_from_the_environment() {
    let good = Dnsmasq::start(loopback(), &[(NAME, ip("10.96.0.1"))], "cluster.local");
    let closed = hc_testkit::closed_port(loopback()).to_string();
    let targets = format!("{},{closed}", good.addr());
    let o = once(
        &[],
        &[
            ("HC_TARGET", &targets),
            ("HC_EXPECT", "10.96.0.1"),
            ("HC_ONCE", "true"),
            ("HC_JSON", "1"),
            ("HC_TIMEOUT", "200ms"),
            ("HC_ATTEMPTS", "1"),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = v["targets"].as_array().unwrap();
    assert_eq!(t.len(), 4, "both targets from HC_TARGET, UDP and TCP");
    assert_eq!(t[0]["healthy"], true);
    assert_eq!(t[2]["attempts"], 1, "HC_ATTEMPTS");
    let help = String::from_utf8(
        Command::new(BIN)
            .args(["run", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for env in [
        "HC_TARGET",
        "HC_INTERVAL",
        "HC_TIMEOUT",
        "HC_ATTEMPTS",
        "HC_FAILURE_THRESHOLD",
        "HC_SUCCESS_THRESHOLD",
        "HC_SWEEP_NETNS",
        "HC_NETNS_GLOB",
        "HC_PROC_ROOT",
        "HC_DNS_SERVICE",
        "HC_METRICS_ADDR",
        "HC_ONCE",
        "HC_JSON",
        "HC_LOG_FORMAT",
    ] {
        assert!(help.contains(env), "--help names {env}");
    }
    for env in ["HC_QUERY_BUDGET", "HC_NETNS_EVERY", "HC_TCP_EVERY"] {
        assert!(help.contains(env), "--help names {env}");
    }
    assert!(
        (help.split_whitespace().collect::<Vec<_>>().join(" "))
            .contains("stay within --query-budget"),
        "--help states the budget"
    );
}

#[test]
fn metrics_grow_per_round_and_status_is_served() {
    let server = ScriptedServer::start(
        loopback(),
        &[ip("10.96.0.1")],
        Behaviour::Answer,
        Behaviour::Answer,
    );
    let t = server.addr().to_string();
    let agent = Agent::start(
        None,
        &[
            "--target",
            &t,
            "--expect",
            "10.96.0.1",
            "--interval",
            "100ms",
        ],
    );
    agent.wait_for("ready", |a| {
        a.get("/readyz").is_some_and(|r| r.status == 200)
    });
    let q = [
        ("target", t.as_str()),
        ("transport", "udp"),
        ("source", "host"),
        ("result", "ok"),
    ];
    // Rounds and queries from one scrape each time: a round can land between two scrapes.
    let counts = |a: &Agent| {
        let body = a.get("/metrics").unwrap().body;
        let v = |name, l: &[(&str, &str)]| hc_testkit::metric_value(&body, name, l).unwrap_or(0.0);
        (
            v("coredns_healthcheck_rounds_total", &[]),
            v("coredns_healthcheck_dns_queries_total", &q),
        )
    };
    // A scrape may also land inside a round, after its query is counted and before the round
    // is: over ten rounds, one query per round shows as 10 +- 1 (two would show as 20).
    let (r0, q0) = counts(&agent);
    agent.wait_for("ten more rounds", |a| counts(a).0 >= r0 + 10.0);
    let (r1, q1) = counts(&agent);
    assert!(
        ((q1 - q0) - (r1 - r0)).abs() <= 1.0,
        "one UDP query to the target per round: {} queries in {} rounds",
        q1 - q0,
        r1 - r0
    );
    for transport in ["udp", "tcp"] {
        let l = [("target", t.as_str()), ("transport", transport)];
        assert_eq!(agent.metric("coredns_healthcheck_target_up", &l), Some(1.0));
    }
    assert_eq!(
        agent.metric(
            "coredns_healthcheck_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(
        agent
            .metric(
                "coredns_healthcheck_dns_query_duration_seconds_count",
                &[
                    ("target", t.as_str()),
                    ("transport", "tcp"),
                    ("source", "host")
                ]
            )
            .unwrap()
            >= 1.0
    );
    assert!(
        agent
            .metric("coredns_healthcheck_round_duration_seconds_count", &[])
            .unwrap()
            >= 1.0
    );
    let s = agent.get("/status").unwrap();
    assert_eq!(s.status, 200);
    let v: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["targets"].as_array().unwrap().len(), 2);
    assert_eq!(v["targets"][0]["state"], "up");
    assert!(v["targets"][0]["rtt_ms"].as_f64().is_some());
    assert_eq!(agent.get("/healthz").unwrap().status, 200);
}

#[test]
fn readiness_waits_for_the_first_round() {
    let silent = ScriptedServer::start(loopback(), &[], Behaviour::Silent, Behaviour::Silent);
    let t = silent.addr().to_string();
    // The first round takes at least 1.5 s (a silent target, 1 attempt of 1.5 s).
    let agent = Agent::start(
        None,
        &[
            "--target",
            &t,
            "--timeout",
            "1500ms",
            "--attempts",
            "1",
            "--interval",
            "10s",
        ],
    );
    agent.wait_for("the server to listen", |a| a.get("/healthz").is_some());
    let r = agent.get("/readyz").unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "no round completed yet\n")
    );
    let before = agent.get("/status").unwrap();
    assert_eq!(before.status, 503);
    // The shape of every later document: a reader of /status parses it as one.
    let doc: serde_json::Value = serde_json::from_str(&before.body).unwrap();
    assert_eq!(doc["targets"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["nothing_checked"], "no round completed yet", "{doc}");
    assert_eq!(doc["healthy"], false);
    agent.wait_for("ready after the first round", |a| {
        a.get("/readyz").is_some_and(|r| r.status == 200)
    });
    // Unhealthy targets do not make the agent unready: /status says what is down.
    let s = agent.get("/status").unwrap();
    assert_eq!(s.status, 503);
    let v: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(
        v["targets"][0]["state"], "unknown",
        "one failure is below the threshold of 3"
    );
    assert_eq!(v["targets"][0]["consecutive_failures"], 1);
    assert_eq!(v["targets"][0]["last_error"]["kind"], "timeout");
}

#[test]
fn sigterm_abandons_the_round_and_exits_0() {
    let silent = ScriptedServer::start(loopback(), &[], Behaviour::Silent, Behaviour::Silent);
    let t = silent.addr().to_string();
    // A round that would take 60 s.
    let mut agent = Agent::start(
        None,
        &["--target", &t, "--timeout", "30s", "--attempts", "2"],
    );
    // A round in flight (the silent server got its first query): the handlers are installed.
    agent.wait_for("the first query", |_| silent.queries() >= 1);
    let sent = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &agent.pid().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(s) = agent.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM, mid-round"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(agent.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("the round in progress is abandoned"), "{err}");
}

#[test]
fn overrunning_rounds_do_not_stack() {
    let silent = ScriptedServer::start(loopback(), &[], Behaviour::Silent, Behaviour::Silent);
    let t = silent.addr().to_string();
    // Every round takes >= 300 ms (a silent target), the interval asks for one every 50 ms.
    let agent = Agent::start(
        None,
        &[
            "--target",
            &t,
            "--timeout",
            "300ms",
            "--attempts",
            "1",
            "--interval",
            "50ms",
        ],
    );
    agent.wait_for("ready", |a| {
        a.get("/readyz").is_some_and(|r| r.status == 200)
    });
    let started = Instant::now();
    let r0 = agent
        .metric("coredns_healthcheck_rounds_total", &[])
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let r1 = agent
        .metric("coredns_healthcheck_rounds_total", &[])
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    // Sequential rounds of >= 0.3 s: at most elapsed/0.3 (+1 for the one in flight at the start).
    // Stacked rounds (one every 50 ms) would be about six times more.
    assert!(
        r1 - r0 <= (elapsed / 0.3).floor() + 1.0,
        "{} rounds in {elapsed:.2}s",
        r1 - r0
    );
    assert!(r1 > r0, "rounds go on");
    // Each UDP probe of a round is one query: queries match rounds, none overlapping.
    let queries = silent.queries() as f64;
    let rounds = agent
        .metric("coredns_healthcheck_rounds_total", &[])
        .unwrap();
    assert!(
        queries <= 2.0 * (rounds + 1.0),
        "{queries} queries for {rounds} rounds"
    );
}

#[test]
fn root_udp_dropped_flips_target_up_then_recovers() {
    let lab = Lab::new(2, 0);
    let dns0 = format!("{}:53", lab.dns[0].pod.ip);
    let dns1 = format!("{}:53", lab.dns[1].pod.ip);
    let agent = Agent::start(
        Some(&lab.node),
        &[
            "--target",
            &dns0,
            "--target",
            &dns1,
            "--expect",
            "10.96.0.1",
            "--interval",
            "150ms",
            "--timeout",
            "200ms",
            "--attempts",
            "1",
            "--failure-threshold",
            "2",
        ],
    );
    let up = |a: &Agent, t: &str, tr: &str| {
        a.metric(
            "coredns_healthcheck_target_up",
            &[("target", t), ("transport", tr)],
        )
    };
    // /status is published at the end of a round, its metrics during it: wait for both.
    agent.wait_for("all up", |a| {
        up(a, &dns0, "udp") == Some(1.0)
            && up(a, &dns1, "udp") == Some(1.0)
            && a.get("/status").is_some_and(|r| r.status == 200)
    });

    lab.drop_udp_at_dns_pod(0);
    agent.wait_for("dns0 udp down", |a| {
        up(a, &dns0, "udp") == Some(0.0) && a.get("/status").is_some_and(|r| r.status == 503)
    });
    assert_eq!(
        up(&agent, &dns0, "tcp"),
        Some(1.0),
        "down on UDP, up on TCP: exactly that"
    );
    assert_eq!(
        up(&agent, &dns1, "udp"),
        Some(1.0),
        "the other target is untouched"
    );
    let s = agent.get("/status").unwrap();
    assert_eq!(s.status, 503);
    let v: Value = serde_json::from_str(&s.body).unwrap();
    let udp0 = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == dns0 && t["transport"] == "udp")
        .unwrap()
        .clone();
    assert_eq!(udp0["state"], "down");
    assert_eq!(udp0["last_error"]["kind"], "timeout");
    assert!(udp0["consecutive_failures"].as_u64().unwrap() >= 2);
    assert!(
        agent
            .metric(
                "coredns_healthcheck_failures_total",
                &[
                    ("target", dns0.as_str()),
                    ("transport", "udp"),
                    ("reason", "timeout")
                ]
            )
            .unwrap()
            >= 2.0
    );

    lab.restore_udp_at_dns_pod(0);
    agent.wait_for("dns0 udp up again", |a| up(a, &dns0, "udp") == Some(1.0));
    agent.wait_for("status 200 again", |a| {
        a.get("/status").is_some_and(|r| r.status == 200)
    });

    // The other way round: TCP dropped at the second pod, UDP working.
    hc_testkit::nft(
        &lab.dns[1].pod.ns,
        "table inet tcpfault {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 53 drop\n  }\n}\n",
    );
    agent.wait_for("dns1 tcp down", |a| up(a, &dns1, "tcp") == Some(0.0));
    assert_eq!(up(&agent, &dns1, "udp"), Some(1.0));
    let log = agent.finish();
    let said = |finding: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"finding\":\"{finding}\"")))
            .count()
    };
    assert_eq!(said("udp-blocked"), 1, "said once: {log}");
    assert_eq!(said("tcp-blocked"), 1, "said once: {log}");
}

#[test]
fn root_sweep_rotates_through_pod_namespaces() {
    let lab = Lab::new(1, 3);
    lab.pods[1].write_resolv_conf("nameserver 10.96.0.99\n");
    let glob = lab.client_glob();
    let agent = Agent::start(
        Some(&lab.node),
        &[
            "--target",
            "10.96.0.10",
            "--expect",
            "10.96.0.1",
            "--interval",
            "100ms",
            "--timeout",
            "300ms",
            "--sweep-netns",
            "--netns-glob",
            &glob,
            "--dns-service",
            "10.96.0.10",
            "--netns-per-round",
            "1",
            // Time 150 times faster than the defaults: every namespace every 800 ms.
            "--query-budget",
            "150",
            "--netns-every",
            "800ms",
        ],
    );
    // One namespace per round at most: all three known after three rounds.
    agent.wait_for("all 3 namespaces checked, on /metrics and /status", |a| {
        a.metric("coredns_healthcheck_netns_checked", &[]) == Some(3.0)
            && a.get("/status").is_some_and(|r| {
                serde_json::from_str::<Value>(&r.body)
                    .is_ok_and(|v| v["namespaces"].as_array().is_some_and(|n| n.len() == 3))
            })
    });
    assert_eq!(
        agent.metric("coredns_healthcheck_netns_unhealthy", &[]),
        Some(1.0)
    );
    assert_eq!(
        agent.metric(
            "coredns_healthcheck_netns_findings",
            &[("code", "resolv-conf-nameserver")]
        ),
        Some(1.0)
    );
    assert!(
        agent
            .metric(
                "coredns_healthcheck_dns_queries_total",
                &[("source", "pod"), ("result", "ok")]
            )
            .unwrap()
            >= 3.0
    );
    let v: Value = serde_json::from_str(&agent.get("/status").unwrap().body).unwrap();
    let ns = v["namespaces"].as_array().unwrap();
    assert_eq!(ns.len(), 3);
    let bad = ns
        .iter()
        .find(|n| n["name"] == lab.pods[1].ns.name())
        .unwrap();
    assert_eq!(bad["healthy"], false);
    assert_eq!(bad["findings"][0]["code"], "resolv-conf-nameserver");
    // Fixing the file clears it on the next visit.
    lab.pods[1].write_resolv_conf("nameserver 10.96.0.10\n");
    agent.wait_for("healthy after the fix", |a| {
        a.metric("coredns_healthcheck_netns_unhealthy", &[]) == Some(0.0)
    });
    assert_eq!(
        agent.metric(
            "coredns_healthcheck_netns_findings",
            &[("code", "resolv-conf-nameserver")]
        ),
        Some(0.0)
    );
}

/// Open descriptors of process `pid`.
/// The number the next descriptor `pid` opens would get: the lowest one it has not open.
fn lowest_free_fd(pid: u32) -> usize {
    let open: std::collections::BTreeSet<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !open.contains(n)).unwrap()
}

#[test]
fn probes_that_cannot_start_are_not_failures_of_the_target() {
    let dns = Dnsmasq::start(loopback(), &[(NAME, ip("10.96.0.1"))], "cluster.local");
    let t = dns.addr().to_string();
    let args = [
        "--target",
        &t,
        "--expect",
        "10.96.0.1",
        "--interval",
        "100ms",
    ];
    // RLIMIT_NOFILE bounds the number a new descriptor gets, not how many are open (a
    // descriptor inherited at a high number takes no low slot). The lowest free number between
    // rounds, plus one, leaves room for exactly one more descriptor: a scrape's connection, or
    // a round's UDP probe, never also its TCP probe. A single sample may catch a round's socket
    // or a scrape's connection, so the idle value is the lowest seen over a second.
    let idle = {
        let a = Agent::start(None, &args);
        a.wait_rounds(3);
        (0..20)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(50));
                lowest_free_fd(a.pid())
            })
            .min()
            .unwrap()
    };
    let limit = format!("--nofile={0}:{0}", idle + 1);
    let admin = std::net::SocketAddr::new(ip("127.0.0.1"), hc_testkit::free_port(ip("127.0.0.1")));
    // Killed even when an assertion below fails (no agent left running).
    let mut child = KillOnDrop(Some(
        Command::new("prlimit")
            .args([limit.as_str(), BIN, "run"])
            .args(args)
            .args(["--metrics-addr", &admin.to_string(), "--log-format", "json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("prlimit (util-linux)"),
    ));
    let metrics = || {
        hc_testkit::http(admin, "GET", "/metrics")
            .map(|r| r.body)
            .unwrap_or_default()
    };
    let not_started = |body: &str| -> f64 {
        ["udp", "tcp"]
            .iter()
            .filter_map(|tr| {
                hc_testkit::metric_value(
                    body,
                    "coredns_healthcheck_probes_not_started_total",
                    &[("target", t.as_str()), ("transport", tr)],
                )
            })
            .sum()
    };
    let until = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let b = metrics();
        if not_started(&b) >= 5.0 {
            break b;
        }
        assert!(Instant::now() < until, "no probe failed to start: {b}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Not a failure of the target: never down, no failure counted for it.
    for tr in ["udp", "tcp"] {
        assert_ne!(
            hc_testkit::metric_value(
                &body,
                "coredns_healthcheck_target_up",
                &[("target", t.as_str()), ("transport", tr)]
            ),
            Some(0.0),
            "{body}"
        );
    }
    assert!(!body.contains("reason=\"not-probed\""), "{body}");
    let status: Value =
        serde_json::from_str(&hc_testkit::http(admin, "GET", "/status").unwrap().body).unwrap();
    assert!(
        status["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] != "down"),
        "{status}"
    );
    let mut child = child.0.take().unwrap();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("DNS target down"), "{log}");
}
