//! The agent's admin server under a connection flood, in a 64 MiB memory cgroup (the
//! DaemonSet's limit) and under a 1,024-descriptor limit: any pod can connect to an agent
//! listening on the node's address. The agent stays alive, `/healthz` answers during the
//! flood, the DNS target it probes is not reported down, and its memory comes back near the
//! baseline. Root only (the cgroup).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{BIN, KillOnDrop, ip};
use hc_testkit::{Dnsmasq, MemoryCgroup, free_port, http, loopback};

const NAME: &str = "kubernetes.default.svc.cluster.local";

fn rss_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// Threads that open idle connections to `addr` as fast as `per_second` allows, each keeping
/// the last `hold` open (closing the oldest), until `stop`.
fn flood(
    addr: SocketAddr,
    threads: usize,
    per_second: u64,
    hold: usize,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let (stop, made) = (stop.clone(), made.clone());
            std::thread::spawn(move || {
                let mut open: VecDeque<TcpStream> = VecDeque::with_capacity(hold);
                let gap = Duration::from_micros(1_000_000 * threads as u64 / per_second);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                        made.fetch_add(1, Ordering::Relaxed);
                        if open.len() == hold {
                            open.pop_front();
                        }
                        open.push_back(s);
                    }
                    if let Some(rest) = gap.checked_sub(t.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
            })
        })
        .collect()
}

#[test]
fn root_a_connection_flood_leaves_the_agent_alive_answering_and_small() {
    let cg = MemoryCgroup::new(64 << 20);
    let dns = Dnsmasq::start(loopback(), &[(NAME, ip("10.96.0.1"))], "cluster.local");
    let admin = SocketAddr::new(ip("127.0.0.1"), free_port(ip("127.0.0.1")));
    // Killed even when an assertion below fails (no agent left running in the cgroup).
    let mut guard = KillOnDrop(Some(
        cg.command("prlimit")
            .args(["--nofile=1024:1024", BIN, "run"])
            .args(["--target", &dns.addr().to_string(), "--expect", "10.96.0.1"])
            .args(["--interval", "500ms", "--timeout", "1s"])
            .args(["--metrics-addr", &admin.to_string(), "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prlimit (util-linux) runs the agent under a descriptor limit"),
    ));
    let pid = guard.0.as_ref().unwrap().id();
    let healthz = || {
        let t = Instant::now();
        let ok = http(admin, "GET", "/healthz").is_ok_and(|r| r.status == 200);
        (ok, t.elapsed())
    };
    let until = Instant::now() + Duration::from_secs(30);
    while !healthz().0 {
        assert!(Instant::now() < until, "the agent did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let baseline = rss_kib(pid, "VmRSS:");

    // About 3,000 connections a second, up to 6,800 held open at once, for 10 s.
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let threads = flood(admin, 4, 3_000, 1_700, stop.clone(), made.clone());
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let (ok, took) = healthz();
        assert!(ok, "/healthz did not answer during the flood");
        latencies.push(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let peak = rss_kib(pid, "VmHWM:");
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib(pid, "VmRSS:");
    let alive = guard.0.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(alive, "the agent died");
    assert_eq!(cg.oom_kills(), 0, "OOM-killed in its 64 MiB cgroup");
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    let connections = made.load(Ordering::Relaxed);
    eprintln!(
        "flood: {connections} connections in 10 s; RSS {baseline} KiB before, peak {peak} KiB, {after} KiB 3 s after; /healthz p50 {p50:?}, max {max:?} over {} requests; cgroup peak {:?} bytes",
        latencies.len(),
        cg.peak()
    );
    assert!(connections > 10_000, "the flood was real: {connections}");
    assert!(
        after <= baseline + 8 * 1024,
        "RSS {after} KiB after the flood, {baseline} KiB before"
    );
    // The DNS target kept being probed and stayed up: descriptors did not run out.
    let body = http(admin, "GET", "/metrics").unwrap().body;
    let up = hc_testkit::metric_value(
        &body,
        "coredns_healthcheck_target_up",
        &[("target", &dns.addr().to_string()), ("transport", "udp")],
    );
    assert_eq!(up, Some(1.0), "{body}");
    let mut child = guard.0.take().unwrap();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("DNS target down"), "{log}");
    assert!(log.lines().count() < 20, "the flood flooded the log: {log}");
}
