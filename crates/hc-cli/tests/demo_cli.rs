//! `hc-cli demo`, the README's first command: it runs by itself, shows the UDP outage and the
//! recovery as transitions, serves metrics, and (as root; CI runs as root) sweeps two namespaces
//! of its own and removes them.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn demo(extra: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hc-cli"))
        .args([
            "demo",
            "--interval",
            "100ms",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap(),
    )
}

#[test]
fn the_demo_shows_the_udp_outage_and_the_recovery() {
    let (code, out) = demo(&["--no-netns"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{out}"))
    };
    let fault = pos("Fault: the server stops answering UDP");
    let down = pos("DNS target down target=");
    let repaired = pos("The fault is repaired");
    let up_again = lines
        .iter()
        .rposition(|l| l.contains("DNS target up") && l.contains("transport=udp"))
        .unwrap();
    assert!(
        fault < down && down < repaired && repaired < up_again,
        "{out}"
    );
    assert!(
        lines[down].contains("transport=udp"),
        "only UDP goes down: {}",
        lines[down]
    );
    assert_eq!(
        out.matches("DNS target down target=").count(),
        1,
        "one transition, not one per round"
    );
    assert!(out.contains("udp-blocked"));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.trim_start().starts_with("round"))
            .count(),
        12
    );
    assert!(out.contains("tcp ok") && out.contains("udp timeout"));
    assert!(out.contains("What it showed:"));
    assert!(out.contains("/metrics"));
    // While UDP is down (after the transition, before the repair), the endpoints as served.
    let metrics = pos("/metrics (200) says");
    let status = pos("/status answers 503");
    assert!(
        down < metrics && metrics < status && status < repaired,
        "{out}"
    );
    let shown = &lines[metrics..status];
    assert!(
        shown
            .iter()
            .any(|l| l.contains("coredns_healthcheck_target_up{")
                && l.contains("transport=\"udp\"")
                && l.ends_with("} 0")),
        "{out}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.contains("coredns_healthcheck_failures_total{")
                && l.contains("reason=\"timeout\"")),
        "{out}"
    );
    assert!(lines[status + 1].contains("\"healthy\": false"), "{out}");
    assert!(
        lines[status + 2..status + 4]
            .iter()
            .any(|l| l.contains(" udp: down") && l.contains("last error timeout")),
        "{out}"
    );
    assert!(
        !out.contains("src:udp://"),
        "the embedded server's own logs stay out"
    );
}

#[test]
fn root_sweeps_two_namespaces_and_removes_them() {
    hc_testkit::needs_root("the demo's namespace sweep");
    let (code, out) = demo(&[]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("FAIL hcdemo") && l.contains("-broken"))
        .unwrap_or_else(|| panic!("{out}"));
    let broken = lines[at];
    assert!(
        out.contains("Fault planted in hcdemo") && out.contains("its loopback is down"),
        "the demo names what it broke: {out}"
    );
    // One finding per line, under the namespace's line.
    let findings: Vec<&str> = (lines[at + 1..].iter())
        .take_while(|l| l.starts_with("    - "))
        .copied()
        .collect();
    for code in ["no-route", "resolv-conf-nameserver", "dns-unreachable"] {
        let n = findings
            .iter()
            .filter(|l| l.starts_with(&format!("    - {code}:")))
            .count();
        assert_eq!(n, 1, "{code} on a line of its own: {out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("OK   hcdemo") && l.contains("-ok")),
        "{out}"
    );
    let list = String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let pid_prefix = "hcdemo";
    let mine: Vec<&str> = list.lines().filter(|l| l.starts_with(pid_prefix)).collect();
    // Other demo runs may be going on concurrently; ours (named in the output) must be gone.
    let ours = broken
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .trim_end_matches("-broken")
        .to_owned();
    assert!(
        mine.iter().all(|l| !l.starts_with(&ours)),
        "{ours} left behind: {list}"
    );
}
