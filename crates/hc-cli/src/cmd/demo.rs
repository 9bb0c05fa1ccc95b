//! `hc-cli demo`: the whole product on one Linux machine, no cluster, no root needed. A
//! CoreDNS-like server on loopback, the real checking loop against it over UDP and TCP, a scripted
//! fault (UDP stops, TCP keeps working, then it recovers), the transitions as they happen, and
//! metrics on the usual port; as root also two network namespaces, swept and diagnosed, removed
//! at exit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use dnsprobe::{AnswerExpectation, Thresholds};
use hc_exporter::{Admin, Metrics, Registry};
use hc_netns::SweepConfig;

use crate::agent::{Agent, AgentConfig};
use crate::cli::DemoArgs;
use crate::demo_server::{API_IP, DemoServer};
use crate::exit;

/// Two namespaces made for the demo; removed on drop (also when the demo is interrupted).
struct DemoNetns {
    names: Vec<String>,
}

impl DemoNetns {
    fn create(prefix: &str) -> anyhow::Result<DemoNetns> {
        let mut made = DemoNetns { names: Vec::new() };
        for suffix in ["ok", "broken"] {
            let name = format!("{prefix}-{suffix}");
            let st = Command::new("ip").args(["netns", "add", &name]).status()?;
            anyhow::ensure!(st.success(), "`ip netns add {name}` failed");
            made.names.push(name);
        }
        let st = Command::new("ip")
            .args(["-n", &made.names[0], "link", "set", "lo", "up"])
            .status()?;
        anyhow::ensure!(
            st.success(),
            "`ip -n {} link set lo up` failed",
            made.names[0]
        );
        for (name, ns) in made.names.iter().zip(["127.0.0.1", "10.0.0.99"]) {
            let dir = PathBuf::from("/etc/netns").join(name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(
                dir.join("resolv.conf"),
                format!("nameserver {ns}\noptions ndots:5\n"),
            )?;
        }
        Ok(made)
    }
}

impl Drop for DemoNetns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
            let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(n));
        }
    }
}

fn say(s: &str) {
    println!("\x1b[1m[demo]\x1b[0m {s}");
}

fn plain(s: &str) {
    println!("[demo] {s}");
}

pub(crate) fn run(args: DemoArgs) -> exit::Result {
    let colour = crate::output::colour_stdout();
    let note: fn(&str) = if colour { say } else { plain };
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        // The agent's own lines only: the embedded server logs every query.
        let only_ours =
            tracing_subscriber::filter::Targets::new().with_target("hc_cli", tracing::Level::INFO);
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stdout)
                    .with_ansi(colour)
                    .with_target(false)
                    .without_time(),
            )
            .with(only_ours)
            .try_init();
    }
    crate::runtime()?
        .block_on(demo(args, note))
        .map_err(exit::runtime)
}

async fn demo(args: DemoArgs, note: fn(&str)) -> anyhow::Result<u8> {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (udp, tcp) = DemoServer::bind(lo)?;
    let server = DemoServer::start(udp, tcp).await?;
    let target = server.addr;
    note(&format!(
        "A CoreDNS-like server (hickory-server) answers kubernetes.default.svc.cluster.local. A {API_IP} on {target}, UDP and TCP."
    ));

    let mut registry = Registry::default();
    let metrics = Metrics::new(hc_exporter::DEFAULT_LATENCY_BUCKETS)?
        .register(&mut registry, env!("CARGO_PKG_VERSION"));
    let admin = Admin::new(registry);
    let bound = match admin.bind(args.metrics_addr).await {
        Ok(b) => b,
        Err(e) => {
            note(&format!("{e}; using a free port instead"));
            admin.bind(SocketAddr::new(lo, 0)).await?
        }
    };
    let metrics_at = bound.local_addr()?;
    tokio::spawn(bound.run());
    note(&format!(
        "Metrics: http://{metrics_at}/metrics, status: http://{metrics_at}/status"
    ));

    // The real agent, configured as `hc-cli run --target ADDR --expect 10.96.0.1 --timeout 300ms
    // --attempts 1 --failure-threshold 2` would be.
    let interval = humantime::format_duration(args.interval).to_string();
    let cfg = AgentConfig {
        targets: vec![target],
        probe: dnsprobe::ProbeSpec::new(target)
            .with_answer(AnswerExpectation::Contains(vec![IpAddr::V4(API_IP)]))
            .with_timeout(Duration::from_millis(300)),
        name_given: false,
        thresholds: Thresholds {
            failure: 2.try_into()?,
            ..Thresholds::default()
        },
        sweep: None,
        per_round: 16,
    };
    let mut agent = Agent::new(cfg, Some(metrics), None);
    note(&format!(
        "The checking loop probes it every {interval} over UDP and TCP; a target is down after 2 failed rounds."
    ));

    let rounds = 12u32;
    let (fault_on, fault_off) = (4u32, 9u32);
    let mut ticks = tokio::time::interval(args.interval);
    let mut udp_failed_rounds = 0;
    let mut tcp_failed_rounds = 0;
    for round in 1..=rounds {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => { note("interrupted"); return Ok(exit::HEALTHY); }
        }
        if round == fault_on {
            server.set_drop_udp(true);
            note(
                "Fault: the server stops answering UDP. TCP still works, so an HTTP or TCP health check stays green.",
            );
        }
        if round == fault_off {
            server.set_drop_udp(false);
            note("The fault is repaired: UDP answers again.");
        }
        let started = Instant::now();
        let report = agent.round(false).await.map_err(|e| e.error)?;
        admin.publish(agent.status(started.elapsed()));
        let words: Vec<String> = report
            .host
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.transport,
                    r.failure
                        .as_ref()
                        .map_or("ok".to_owned(), |f| f.kind().to_string())
                )
            })
            .collect();
        udp_failed_rounds += u32::from(
            report
                .host
                .iter()
                .any(|r| r.transport == dnsprobe::Transport::Udp && !r.healthy()),
        );
        tcp_failed_rounds += u32::from(
            report
                .host
                .iter()
                .any(|r| r.transport == dnsprobe::Transport::Tcp && !r.healthy()),
        );
        println!("  round {round:>2}: {}", words.join(", "));
    }

    let mut swept = None;
    if args.no_netns {
        note("Namespaces skipped (--no-netns).");
    } else if is_root() {
        swept = Some(namespaces(target, note).await?);
    } else {
        note(
            "Not root: the namespace sweep is skipped (run as root to see a sweep and a diagnosis).",
        );
    }

    note("What it showed:");
    println!(
        "  - probes over UDP and TCP against a real DNS server, every {interval}, {rounds} rounds;"
    );
    println!(
        "  - UDP failed in {udp_failed_rounds} rounds while TCP failed in {tcp_failed_rounds}: the failure an HTTP liveness probe cannot see;"
    );
    println!(
        "  - the state changed once each way after the thresholds (the 'DNS target down/up' lines), not every round;"
    );
    println!("  - metrics and /status were served on http://{metrics_at};");
    if let Some(s) = swept {
        println!("  - a sweep of two network namespaces: {s}.");
    }
    Ok(exit::HEALTHY)
}

/// UID 0, read from /proc/self/status (no libc call: the crate forbids unsafe code).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

async fn namespaces(target: SocketAddr, note: fn(&str)) -> anyhow::Result<String> {
    let prefix = format!("hcdemo{}", std::process::id());
    let ns = DemoNetns::create(&prefix)?;
    let ok_path = PathBuf::from("/run/netns").join(&ns.names[0]);
    // The same server, also inside the "ok" namespace: its sockets are opened there.
    let port = target.port();
    let (udp, tcp) = hc_netns::run_in(&ok_path, move || -> std::io::Result<_> {
        let lo = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        Ok((
            std::net::UdpSocket::bind(lo)?,
            std::net::TcpListener::bind(lo)?,
        ))
    })??;
    let _inside = DemoServer::start(udp, tcp).await?;
    note(&format!(
        "Two network namespaces: {} (loopback up, a DNS server inside, resolv.conf right) and {} (loopback down, resolv.conf naming 10.0.0.99). Sweeping them:",
        ns.names[0], ns.names[1]
    ));
    let mut cfg = SweepConfig::new(vec![target]);
    cfg.probe = cfg
        .probe
        .with_answer(AnswerExpectation::Contains(vec![IpAddr::V4(API_IP)]))
        .with_timeout(Duration::from_millis(500));
    cfg.dns_service = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    cfg.netns = ns.names.clone();
    let reports = hc_netns::sweep(&cfg).await?;
    for r in &reports {
        println!("  {} {r}", crate::output::status_word(r.healthy(), false));
    }
    let bad = reports.iter().filter(|r| !r.healthy()).count();
    Ok(format!(
        "{} namespaces, {bad} unhealthy, each with the reason; removed at exit",
        reports.len()
    ))
}
