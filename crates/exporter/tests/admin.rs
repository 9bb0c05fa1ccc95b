//! The admin server over real HTTP on loopback, and the metric families as a Prometheus
//! text-format parser reads them.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hc_exporter::{
    Admin, ControllerMetrics, ControllerStatus, DEFAULT_LATENCY_BUCKETS, ErrorStatus, Metrics,
    PodView, Reach, Registry, Source, Status, TargetState, TargetStatus, VerdictView,
};
use hc_testkit::{HttpResponse, http};

async fn get(addr: std::net::SocketAddr, method: &'static str, path: &'static str) -> HttpResponse {
    tokio::task::spawn_blocking(move || http(addr, method, path).unwrap())
        .await
        .unwrap()
}

/// The admin server of `registry` on a free loopback port.
async fn serve(registry: Registry) -> (Admin, std::net::SocketAddr) {
    let admin = Admin::new(registry);
    let server = admin.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    (admin, addr)
}

fn target(state: TargetState) -> TargetStatus {
    TargetStatus {
        target: "10.96.0.10:53".into(),
        transport: "udp".into(),
        state,
        last_error: (state == TargetState::Down).then(|| ErrorStatus {
            kind: "timeout".into(),
            message: "timed out".into(),
        }),
        rtt_ms: None,
        consecutive_failures: 0,
        consecutive_successes: 0,
        role: None,
        pod: None,
        last_result: None,
        checked_unix_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(DEFAULT_LATENCY_BUCKETS)
        .unwrap()
        .register(&mut registry, "9.9.9");
    let (admin, addr) = serve(registry).await;

    assert_eq!(get(addr, "GET", "/healthz").await.status, 200);
    let r = get(addr, "GET", "/readyz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "no round completed yet\n")
    );
    let r = get(addr, "GET", "/status").await;
    assert_eq!(r.status, 503);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["round"], 0);
    assert_eq!(v["healthy"], false);

    metrics.observe_query(
        "10.96.0.10:53",
        "udp",
        Source::Host,
        "ok",
        Some(Duration::from_micros(800)),
    );
    metrics.observe_query("10.96.0.10:53", "tcp", Source::Pod, "timeout", None);
    // A probe that could not start: its own counter, not a query, not a failure.
    metrics.observe_query("10.96.0.10:53", "tcp", Source::Host, "not-probed", None);
    metrics.set_target_up("10.96.0.10:53", "udp", true);
    metrics.round_done(Duration::from_millis(3));
    metrics.set_netns(4, 1, &[("veth-peer-down".into(), 1)]);
    metrics.api_dns_enabled();
    metrics.api_dns(&hc_exporter::ApiDnsStatus {
        result: "connect".into(),
        ..Default::default()
    });
    let spec = dnsprobe::ProbeSpec::new("10.96.0.10:53".parse().unwrap());
    let mut pair =
        dnsprobe::ProbeReport::failed(&spec, dnsprobe::Transport::Udp, dnsprobe::Failure::Refused);
    pair.parallel = Some(dnsprobe::Parallel::Lost(
        dnsprobe::hickory_proto::rr::RecordType::AAAA,
    ));
    metrics.observe_report(&pair, Source::Host);
    let before = hc_netns::ConntrackStats::parse("insert_failed drop\n1 0\n").unwrap();
    let after = hc_netns::ConntrackStats::parse("insert_failed drop\n4 0\n").unwrap();
    metrics.observe_conntrack(Source::Host, &after.growth_since(&before));
    metrics.set_conntrack_stale(2);
    admin.publish(Status {
        round: 1,
        targets: vec![target(TargetState::Up)],
        ..Status::default()
    });

    assert_eq!(get(addr, "GET", "/readyz").await.status, 200);
    // A round that checked nothing is not ready, and says why on /status.
    admin.publish(Status {
        round: 1,
        nothing_checked: Some("no DNS target known".into()),
        ..Status::default()
    });
    let r = get(addr, "GET", "/readyz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "the last round checked nothing: see /status\n")
    );
    let r = get(addr, "GET", "/status").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("no DNS target known"), "{}", r.body);
    admin.publish(Status {
        round: 1,
        targets: vec![target(TargetState::Up)],
        ..Status::default()
    });
    assert_eq!(get(addr, "GET", "/readyz").await.status, 200);
    let r = get(addr, "GET", "/status").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["targets"][0]["state"], "up");
    assert_eq!(v["targets"][0]["consecutive_failures"], 0);

    admin.publish(Status {
        round: 2,
        targets: vec![target(TargetState::Down)],
        ..Status::default()
    });
    let r = get(addr, "GET", "/status").await;
    assert_eq!(r.status, 503);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["targets"][0]["last_error"]["kind"], "timeout");

    let r = get(addr, "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(hc_exporter::OPENMETRICS));
    let value =
        |name: &str, labels: &[(&str, &str)]| hc_testkit::metric_value(&r.body, name, labels);
    let q = [
        ("target", "10.96.0.10:53"),
        ("transport", "udp"),
        ("source", "host"),
        ("result", "ok"),
    ];
    assert_eq!(
        value("coredns_healthcheck_dns_queries_total", &q),
        Some(1.0)
    );
    assert_eq!(value("coredns_healthcheck_api_dns_up", &[]), Some(0.0));
    let api = |result| {
        value(
            "coredns_healthcheck_api_dns_checks_total",
            &[("result", result)],
        )
    };
    assert_eq!((api("connect"), api("ok")), (Some(1.0), Some(0.0)));
    let q = [
        ("transport", "tcp"),
        ("source", "pod"),
        ("result", "timeout"),
    ];
    assert_eq!(
        value("coredns_healthcheck_dns_queries_total", &q),
        Some(1.0)
    );
    assert_eq!(
        value(
            "coredns_healthcheck_failures_total",
            &[("reason", "timeout")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value("coredns_healthcheck_failures_total", &[("reason", "ok")]),
        None,
        "ok is not a failure"
    );
    assert_eq!(
        value(
            "coredns_healthcheck_probes_not_started_total",
            &[("transport", "tcp"), ("source", "host")]
        ),
        Some(1.0)
    );
    assert!(
        !r.body.contains("not-probed"),
        "a probe that did not start is neither a query nor a failure"
    );
    assert_eq!(
        value("coredns_healthcheck_target_up", &[("transport", "udp")]),
        Some(1.0)
    );
    assert_eq!(value("coredns_healthcheck_rounds_total", &[]), Some(1.0));
    assert_eq!(value("coredns_healthcheck_netns_checked", &[]), Some(4.0));
    assert_eq!(value("coredns_healthcheck_netns_unhealthy", &[]), Some(1.0));
    assert_eq!(
        value(
            "coredns_healthcheck_netns_findings",
            &[("code", "veth-peer-down")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value("coredns_healthcheck_build_info", &[("version", "9.9.9")]),
        Some(1.0)
    );
    // The histogram: 0.8 ms falls in the 1 ms bucket; the 5 s glibc timeout has its own bucket.
    let bucket = |le: &str| {
        format!(
            "coredns_healthcheck_dns_query_duration_seconds_bucket{{le=\"{le}\",target=\"10.96.0.10:53\",transport=\"udp\",source=\"host\"}}"
        )
    };
    assert!(
        r.body.contains(&format!("{} 0", bucket("0.0005"))),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("{} 1", bucket("0.001"))),
        "{}",
        r.body
    );
    assert!(r.body.contains("le=\"4.5\"") && r.body.contains("le=\"5.5\""));
    assert!(
        r.body
            .contains("coredns_healthcheck_round_duration_seconds_count 1")
    );

    let r = get(addr, "GET", "/metrics").await;
    for sample in [
        "coredns_healthcheck_parallel_queries_total{target=\"10.96.0.10:53\",lost=\"aaaa\"} 1",
        "coredns_healthcheck_conntrack_stat_total{stat=\"insert_failed\",source=\"host\"} 3",
        "coredns_healthcheck_conntrack_stat_total{stat=\"drop\",source=\"pod\"} 0",
        "coredns_healthcheck_conntrack_stale_entries 2",
    ] {
        assert!(r.body.contains(sample), "{sample} missing:\n{}", r.body);
    }
    // With every family set, the scrape's families are exactly the documented list.
    let mut typed: Vec<(String, String)> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE coredns_healthcheck_"))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_owned(), w.next().unwrap().to_owned())
        })
        .collect();
    typed.sort();
    let mut want: Vec<(String, String)> = hc_exporter::FAMILIES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    want.sort();
    assert_eq!(typed, want, "FAMILIES matches what is registered");

    // Codes that disappear go to 0.
    metrics.set_netns(4, 0, &[]);
    let r = get(addr, "GET", "/metrics").await;
    assert!(
        r.body
            .contains("coredns_healthcheck_netns_findings{code=\"veth-peer-down\"} 0"),
        "{}",
        r.body
    );

    let r = get(addr, "POST", "/metrics").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = get(addr, "HEAD", "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(get(addr, "GET", "/nope").await.status, 404);

    admin.shutting_down();
    let r = get(addr, "GET", "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (503, "shutting down\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_cut_off() {
    let admin = Admin::new(Registry::default());
    let server = admin.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    let closed = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 64];
        // Send nothing: the header-read timeout (2 s) must close the connection well before 20 s.
        s.read(&mut buf)
    })
    .await
    .unwrap();
    assert_eq!(
        closed.ok(),
        Some(0),
        "the server closed the connection (EOF), not our 20 s read timeout"
    );
}

#[test]
fn bad_buckets_are_refused() {
    assert!(Metrics::new(&[]).is_err());
    assert!(Metrics::new(&[0.1, 0.05]).is_err());
    assert!(Metrics::new(&[0.0, 1.0]).is_err());
    assert!(Metrics::new(&[0.001, f64::INFINITY]).is_err());
}

fn families(body: &str) -> Vec<(String, String)> {
    let mut typed: Vec<(String, String)> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE coredns_healthcheck_"))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_owned(), w.next().unwrap().to_owned())
        })
        .collect();
    typed.sort();
    typed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_its_families_and_its_view() {
    let mut registry = Registry::default();
    let metrics = ControllerMetrics::default().register(&mut registry, "9.9.9");
    let (admin, addr) = serve(registry).await;

    // Created at 0 before anything happens, so that increase() sees the first event.
    let r = get(addr, "GET", "/metrics").await;
    assert!(
        r.body.contains(
            r#"coredns_healthcheck_remediations_total{action="evict",result="success"} 0"#
        ),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(r#"coredns_healthcheck_verdicts{kind="pod"} 0"#)
    );

    metrics.decision("pod", "evict", "success");
    metrics.decision("service", "report", "reported");
    metrics.pod_restarts(2, 1);
    metrics.set_memory_limit("coredns", 170 << 20);
    metrics.set_leader(true);
    metrics.agent_read(true);
    metrics.set_watch("coredns-pods", true);
    metrics.round_done(Duration::from_millis(4));
    let reach = |reaching, failing| Reach { reaching, failing };
    let view = ControllerStatus {
        round: 1,
        pods: vec![PodView {
            name: "coredns-a".into(),
            uid: "u".into(),
            ip: None,
            node: None,
            udp: reach(1, 3),
            tcp: reach(4, 0),
            nodes_reporting: 4,
            http: Some(hc_exporter::PodHttp {
                health: "ok".into(),
                ready: "http-503".into(),
                checked_unix_ms: 1,
            }),
        }],
        health_gaps: vec![hc_exporter::HealthGap {
            pod: "coredns-a".into(),
            message: "m".into(),
        }],
        freshness: Some(hc_exporter::FreshnessView {
            followed: 2,
            stale: vec![hc_exporter::StaleRecord {
                name: "web.shop.svc.cluster.local.".into(),
                address: "10.96.7.7".into(),
                current: None,
                event: "deleted".into(),
                since_unix_ms: 1,
                pods: vec!["coredns-a".into()],
            }],
            ..Default::default()
        }),
        verdicts: vec![VerdictView {
            kind: "pod".into(),
            subject: "coredns-a".into(),
            message: "m".into(),
        }],
        ..ControllerStatus::default()
    };
    metrics.propagation("added", 0.3);
    metrics.freshness("added", "propagated");
    metrics.freshness("deleted", "stale");
    metrics.set_view(&view);
    admin.publish_document(view.healthy(), &view);

    let r = get(addr, "GET", "/metrics").await;
    for line in [
        r#"coredns_healthcheck_remediations_total{action="evict",result="success"} 1"#,
        r#"coredns_healthcheck_decisions_total{verdict="service",action="report",result="reported"} 1"#,
        "coredns_healthcheck_pod_restarts_total 2",
        "coredns_healthcheck_oom_kills_total 1",
        r#"coredns_healthcheck_pod_reachable_ratio{pod="coredns-a",transport="udp"} 0.25"#,
        r#"coredns_healthcheck_pod_nodes_reporting{pod="coredns-a"} 4"#,
        r#"coredns_healthcheck_verdicts{kind="pod"} 1"#,
        "coredns_healthcheck_leader 1",
        r#"coredns_healthcheck_freshness_checks_total{event="deleted",result="stale"} 1"#,
        r#"coredns_healthcheck_freshness_checks_total{event="changed",result="skipped"} 0"#,
        r#"coredns_healthcheck_service_propagation_seconds_bucket{le="0.5",event="added"} 1"#,
        "coredns_healthcheck_stale_records 1",
        "coredns_healthcheck_freshness_followed 2",
        r#"coredns_healthcheck_coredns_http_up{pod="coredns-a",endpoint="health"} 1"#,
        r#"coredns_healthcheck_coredns_http_up{pod="coredns-a",endpoint="ready"} 0"#,
        r#"coredns_healthcheck_health_gap{pod="coredns-a"} 1"#,
    ] {
        assert!(r.body.contains(line), "missing {line}:\n{}", r.body);
    }
    let mut want: Vec<(String, String)> = hc_exporter::CONTROLLER_FAMILIES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    want.sort();
    assert_eq!(
        families(&r.body),
        want,
        "CONTROLLER_FAMILIES matches what is registered"
    );

    let r = get(addr, "GET", "/status").await;
    assert_eq!(r.status, 503, "a verdict is not healthy");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["pods"][0]["udp"]["failing"], 3);
    let back: ControllerStatus = serde_json::from_str(&r.body).unwrap();
    assert_eq!(back, view);
}

/// `promtool check metrics` (Prometheus's own 0.0.4 parser and linter) on an exposition.
fn promtool_check_metrics(exposition: &str) -> (bool, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): this test needs Prometheus's promtool \
                 (apt-get install prometheus; scripts/setup.sh does)"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_in_the_format_the_scraper_asks_for() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(DEFAULT_LATENCY_BUCKETS)
        .unwrap()
        .register(&mut registry, "9.9.9");
    let (_admin, addr) = serve(registry).await;
    let mut registry = Registry::default();
    let controller = ControllerMetrics::default().register(&mut registry, "9.9.9");
    let (_controller_admin, controller_addr) = serve(registry).await;
    metrics.target_known("10.96.0.10:53", "udp");
    metrics.observe_query("10.96.0.10:53", "udp", Source::Host, "timeout", None);
    let rtt = Some(Duration::from_micros(800));
    metrics.observe_query("10.96.0.10:53", "tcp", Source::Host, "ok", rtt);
    metrics.set_target_up("10.96.0.10:53", "udp", false);
    metrics.round_done(Duration::from_millis(3));
    controller.decision("pod", "evict", "dry-run");

    let scrape = |addr, accept: &'static str| {
        tokio::task::spawn_blocking(move || {
            hc_testkit::http_with_headers(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap()
        })
    };
    // Prometheus configured for the text format only, and Prometheus's default list.
    let only_text = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
    let text = scrape(addr, only_text).await.unwrap();
    let om = scrape(
        addr,
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    )
    .await
    .unwrap();
    let controller_text = scrape(controller_addr, only_text).await.unwrap();
    assert_eq!(
        text.header("content-type"),
        Some(hc_exporter::PROMETHEUS_TEXT)
    );
    assert_eq!(om.header("content-type"), Some(hc_exporter::OPENMETRICS));
    assert_eq!(text.header("vary"), Some("Accept"));
    assert!(om.body.ends_with("# EOF\n"));
    assert!(!text.body.contains("# EOF"), "{}", text.body);
    assert!(
        text.body
            .contains("# TYPE coredns_healthcheck_dns_queries_total counter\n"),
        "{}",
        text.body
    );

    // Prometheus's own parser reads the 0.0.4 bodies, and its linter has nothing to say.
    for body in [&text.body, &controller_text.body] {
        let (ok, said) = promtool_check_metrics(body);
        assert!(ok, "promtool check metrics:\n{said}\n{body}");
    }
    // The same samples in both formats.
    let samples = |body: &str| {
        let mut s: Vec<String> = (body.lines())
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        s.sort();
        s
    };
    assert_eq!(samples(&text.body), samples(&om.body));

    // Known label sets at 0: the first failure of another kind is seen by increase().
    let value =
        |name: &str, labels: &[(&str, &str)]| hc_testkit::metric_value(&text.body, name, labels);
    let q = |result| {
        [
            ("target", "10.96.0.10:53"),
            ("transport", "udp"),
            ("source", "host"),
            ("result", result),
        ]
    };
    let queries = "coredns_healthcheck_dns_queries_total";
    assert_eq!(value(queries, &q("timeout")), Some(1.0));
    assert_eq!(value(queries, &q("ok")), Some(0.0));
    assert_eq!(value(queries, &q("refused")), Some(0.0));
    let failures = "coredns_healthcheck_failures_total";
    let reason = |r| [("transport", "udp"), ("reason", r)];
    assert_eq!(
        value(failures, &reason("not-probed")),
        None,
        "a probe that could not start is no failure"
    );
    assert_eq!(value(failures, &reason("timeout")), Some(1.0));
    assert_eq!(
        value(queries, &[("transport", "tcp"), ("result", "timeout")]),
        None,
        "only the known target and transport are made"
    );
    let value = |name: &str, labels: &[(&str, &str)]| {
        hc_testkit::metric_value(&controller_text.body, name, labels)
    };
    let decisions = "coredns_healthcheck_decisions_total";
    let d = |v, a, r| [("verdict", v), ("action", a), ("result", r)];
    assert_eq!(value(decisions, &d("pod", "evict", "dry-run")), Some(1.0));
    assert_eq!(value(decisions, &d("pod", "evict", "success")), Some(0.0));
    assert_eq!(value(decisions, &d("api", "report", "reported")), Some(0.0));
    assert_eq!(
        value(decisions, &d("oom", "raise-memory", "error")),
        Some(0.0)
    );
    assert_eq!(value(decisions, &d("api", "report", "success")), None);
}

/// A short name walked through a pod's resolv.conf whose AAAA reply is lost once: a glibc
/// client waits its 5 s timeout, and the lookup lands in the (4.5, 5.5] bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_fills_the_client_lookups_five_second_bucket() {
    use dnsprobe::hickory_proto::op::ResponseCode;
    use hc_netns::{Exchange, Heard, ResolvConf};
    let mut registry = Registry::default();
    let metrics = Metrics::new(DEFAULT_LATENCY_BUCKETS)
        .unwrap()
        .register(&mut registry, "9.9.9");
    let conf = ResolvConf::parse(
        "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
    let reply = |rcode, answers| Heard::Reply {
        rcode,
        answers,
        rtt: Duration::from_millis(1),
    };
    let mut lost_once = true;
    let lookup = hc_netns::walk(&conf, hc_netns::CLIENT_LOOKUP_NAME, &|_| true, |ask| {
        let ex = if ask.name == "kubernetes.default.svc.cluster.local." {
            let aaaa = if std::mem::take(&mut lost_once) {
                Heard::Lost
            } else {
                reply(ResponseCode::NoError, 0)
            };
            Exchange {
                a: reply(ResponseCode::NoError, 1),
                aaaa: Some(aaaa),
            }
        } else {
            Exchange {
                a: reply(ResponseCode::NXDomain, 0),
                aaaa: Some(reply(ResponseCode::NXDomain, 0)),
            }
        };
        async move { ex }
    })
    .await;
    assert_eq!(lookup.result, hc_netns::LookupResult::Answered);
    metrics.observe_client_lookup(&lookup);
    let admin = Admin::new(registry);
    let server = admin.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    let body = get(addr, "GET", "/metrics").await.body;
    let value = |name: &str, labels: &[(&str, &str)]| hc_testkit::metric_value(&body, name, labels);
    let bucket = "coredns_healthcheck_client_lookup_duration_seconds_bucket";
    assert!(
        body.contains(&format!("{bucket}{{le=\"4.5\"}} 0\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!("{bucket}{{le=\"5.5\"}} 1\n")),
        "{body}"
    );
    assert_eq!(
        value(
            "coredns_healthcheck_client_lookups_total",
            &[("result", "answered")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "coredns_healthcheck_client_lookups_total",
            &[("result", "failed")]
        ),
        Some(0.0),
        "every result is created at 0"
    );
    assert_eq!(
        value("coredns_healthcheck_client_lookup_queries_total", &[]),
        Some(6.0),
        "4, and the 2 of the retry"
    );
}
