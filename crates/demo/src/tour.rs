//! The tour of `hc-cli demo`: the server, the real agent round against it, a scripted UDP outage
//! and its recovery, an excerpt of `/metrics` and `/status` while the outage is on, and (as root)
//! a sweep of two namespaces, one with a planted fault, and its diagnosis. Told through a
//! narrator the caller prints.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dnsprobe::{AnswerExpectation, ProbeReport, ProbeSpec, Transport};
use hc_agent::{Agent, AgentConfig};
use hc_exporter::{Admin, Metrics, Registry};
use hc_netns::SweepConfig;

use crate::server::{API_IP, DemoError, DemoServer};
use crate::stage::Stage;

/// Rounds in all.
pub const ROUNDS: u32 = 12;
/// The rounds UDP is dropped in.
pub const FAULT: std::ops::Range<u32> = 4..9;

/// What the tour says: a `[demo]` note, or a plain line (a round, a sweep line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A narration.
    Note(&'a str),
    /// Output shown as it is.
    Plain(&'a str),
}

/// How to run the tour.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TourOptions {
    /// Time between rounds.
    pub interval: Duration,
    /// Where to serve the metrics (a free port when taken).
    pub metrics_addr: SocketAddr,
    /// Sweep two namespaces of its own (as root).
    pub netns: bool,
}

impl TourOptions {
    /// One round a second, metrics on 127.0.0.1:9890, namespaces when root.
    pub fn new() -> Self {
        TourOptions {
            interval: Duration::from_secs(1),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9890)),
            netns: true,
        }
    }
}

impl Default for TourOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Effective UID 0 (what the kernel checks), read from /proc/self/status.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uid = s.lines().find(|l| l.starts_with("Uid:"))?;
            Some(uid.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

async fn serve_metrics(
    addr: SocketAddr,
    say: &dyn Fn(Line<'_>),
) -> Result<(Admin, Metrics, SocketAddr), DemoError> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(hc_exporter::DEFAULT_LATENCY_BUCKETS)
        .map_err(|e| DemoError::Zone(e.to_string()))?
        .register(&mut registry, env!("CARGO_PKG_VERSION"));
    let admin = Admin::new(registry);
    let bound = match admin.bind(addr).await {
        Ok(b) => b,
        Err(e) => {
            say(Line::Note(&format!("{e}; using a free port instead")));
            admin
                .bind(SocketAddr::new(addr.ip(), 0))
                .await
                .map_err(DemoError::other)?
        }
    };
    let at = bound.local_addr().map_err(DemoError::other)?;
    tokio::spawn(bound.run());
    Ok((admin, metrics, at))
}

/// Runs the tour on the caller's runtime, saying what happens as it happens. Returns when done,
/// or early on Ctrl-C.
pub async fn tour(opts: &TourOptions, say: &dyn Fn(Line<'_>)) -> Result<(), DemoError> {
    let (udp, tcp) = DemoServer::bind(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let server = DemoServer::start(udp, tcp).await?;
    let target = server.addr;
    say(Line::Note(&format!(
        "A CoreDNS-like server (hickory-server) answers kubernetes.default.svc.cluster.local. A {API_IP} on {target}, UDP and TCP."
    )));
    let (admin, metrics, at) = serve_metrics(opts.metrics_addr, say).await?;
    say(Line::Note(&format!(
        "Metrics: http://{at}/metrics, status: http://{at}/status"
    )));
    // The real agent, as `hc-cli run --target ADDR --expect 10.96.0.1 --timeout 300ms
    // --attempts 1 --failure-threshold 2` configures it.
    let probe = (ProbeSpec::new(target))
        .with_answer(AnswerExpectation::Contains(vec![IpAddr::V4(API_IP)]))
        .with_timeout(Duration::from_millis(300));
    let mut cfg = AgentConfig::new(vec![target], probe);
    cfg.thresholds.failure = std::num::NonZeroU32::MIN.saturating_add(1);
    let mut agent = Agent::new(cfg, Some(metrics), None);
    let every = format!("{:?}", opts.interval);
    say(Line::Note(&format!(
        "The checking loop probes it every {every} over UDP and TCP; a target is down after 2 failed rounds."
    )));
    let Some((udp_failed, tcp_failed)) =
        rounds(&mut agent, (&admin, at), &server, opts.interval, say).await?
    else {
        say(Line::Note("interrupted"));
        return Ok(());
    };
    let swept = if !opts.netns {
        say(Line::Note("Namespaces skipped (--no-netns)."));
        None
    } else if is_root() {
        Some(namespaces(target, say).await?)
    } else {
        say(Line::Note(
            "Not root: the namespace sweep is skipped (run as root to see a sweep and a diagnosis).",
        ));
        None
    };
    say(Line::Note("What it showed:"));
    say(Line::Plain(&format!(
        "  - probes over UDP and TCP against a real DNS server, every {every}, {ROUNDS} rounds;"
    )));
    say(Line::Plain(&format!(
        "  - UDP failed in {udp_failed} rounds while TCP failed in {tcp_failed}: the failure an HTTP liveness probe cannot see;"
    )));
    say(Line::Plain(
        "  - the state changed once each way after the thresholds (the 'DNS target down/up' lines), not every round;",
    ));
    say(Line::Plain(&format!(
        "  - metrics and /status were served on http://{at}, target_up and /status saying which path failed;"
    )));
    if let Some(s) = swept {
        say(Line::Plain(&format!(
            "  - a sweep of two network namespaces: {s}."
        )));
    }
    Ok(())
}

/// The rounds, with the fault switched on and off and the endpoints shown while it is on; the
/// rounds UDP and TCP failed in, or `None` when interrupted.
async fn rounds(
    agent: &mut Agent,
    (admin, at): (&Admin, SocketAddr),
    server: &DemoServer,
    interval: Duration,
    say: &dyn Fn(Line<'_>),
) -> Result<Option<(u32, u32)>, DemoError> {
    let mut ticks = tokio::time::interval(interval);
    let (mut udp_failed, mut tcp_failed) = (0, 0);
    for round in 1..=ROUNDS {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(None),
        }
        if round == FAULT.start {
            server.set_drop_udp(true);
            say(Line::Note(
                "Fault: the server stops answering UDP. TCP still works, so an HTTP or TCP health check stays green.",
            ));
        }
        if round == FAULT.end {
            server.set_drop_udp(false);
            say(Line::Note("The fault is repaired: UDP answers again."));
        }
        let started = Instant::now();
        let report = agent.round(false).await.map_err(DemoError::other)?;
        admin.publish(agent.status(started.elapsed()));
        let failed = |t| {
            report
                .host
                .iter()
                .any(|r: &ProbeReport| r.transport == t && !r.healthy())
        };
        udp_failed += u32::from(failed(Transport::Udp));
        tcp_failed += u32::from(failed(Transport::Tcp));
        let words: Vec<String> = report
            .host
            .iter()
            .map(|r| format!("{} {}", r.transport, r.result_label()))
            .collect();
        say(Line::Plain(&format!(
            "  round {round:>2}: {}",
            words.join(", ")
        )));
        // Two rounds after the state turned: what a scraper and the controller read now.
        if round == FAULT.start + 2 {
            show_endpoints(at, say).await?;
        }
    }
    Ok(Some((udp_failed, tcp_failed)))
}

/// An excerpt of `/metrics` and of `/status` as served at this moment.
async fn show_endpoints(at: SocketAddr, say: &dyn Fn(Line<'_>)) -> Result<(), DemoError> {
    let (code, body) = crate::excerpt::get(at, "/metrics").await?;
    say(Line::Note(&format!(
        "While UDP is down, http://{at}/metrics ({code}) says, among its lines:"
    )));
    for l in crate::excerpt::metrics(&body) {
        say(Line::Plain(&format!("    {l}")));
    }
    let (code, body) = crate::excerpt::get(at, "/status").await?;
    say(Line::Note(&format!(
        "and http://{at}/status answers {code} (what the controller reads):"
    )));
    for l in crate::excerpt::status(&body)? {
        say(Line::Plain(&format!("    {l}")));
    }
    Ok(())
}

async fn namespaces(target: SocketAddr, say: &dyn Fn(Line<'_>)) -> Result<String, DemoError> {
    let stage = Stage::create(&format!("hcdemo{}", std::process::id()), target.port()).await?;
    let [ok, broken] = [&stage.names[0], &stage.names[1]];
    say(Line::Note(&format!(
        "Two network namespaces: {ok} (loopback up, a DNS server inside, resolv.conf naming it) and {broken}."
    )));
    say(Line::Note(&format!(
        "Fault planted in {broken}: its loopback is down (no route to any DNS server) and its resolv.conf names 10.0.0.99, not the DNS Service 127.0.0.1. Sweeping both; each finding on a line:"
    )));
    let mut cfg = SweepConfig::new(vec![target]);
    cfg.probe = (cfg.probe)
        .with_answer(AnswerExpectation::Contains(vec![IpAddr::V4(API_IP)]))
        .with_timeout(Duration::from_millis(500));
    cfg.dns_service = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    cfg.netns = stage.names.clone();
    let reports = hc_netns::sweep(&cfg).await.map_err(DemoError::other)?;
    for r in &reports {
        let word = if r.healthy() { "OK  " } else { "FAIL" };
        say(Line::Plain(&format!("  {word} {r:#}")));
    }
    let bad = reports.iter().filter(|r| !r.healthy()).count();
    Ok(format!(
        "{} namespaces, {bad} unhealthy, each with the reason; removed at exit",
        reports.len()
    ))
}
