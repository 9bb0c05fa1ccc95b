//! Careless input to `hc-cli probe` (and the other commands' shared parsers), as a table: each
//! is refused with exit 2 and a message that says what is wrong, or read the way it was meant.
//! Nothing here sends a query anywhere but to a scripted server on loopback.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv6Addr};
use std::process::{Command, Output};

use hc_testkit::{Behaviour, ScriptedServer, loopback};

fn hc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hc-cli"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn answering(at: IpAddr) -> ScriptedServer {
    ScriptedServer::start(
        at,
        &["10.96.0.1".parse().unwrap()],
        Behaviour::Answer,
        Behaviour::Answer,
    )
}

#[test]
fn careless_input_is_refused_with_exit_2_and_says_why() {
    let long = "x".repeat(300);
    let tab = "kube\tdns";
    // (arguments, what the message must contain)
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        // An IPv6 literal whose last group looks like a port: never sent to ::0.1.83.153.
        (
            vec!["probe", "--ip", "::1:5399"],
            vec!["did you mean [::1]:5399?", "[::1:5399]"],
        ),
        (
            vec!["probe", "--target", "fd00::1:53"],
            vec!["did you mean [fd00::1]:53?"],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1:0"],
            vec!["port 0 is not a DNS port"],
        ),
        (
            vec!["probe", "--ip", "fe80::1%nosuchif0"],
            vec!["no interface named \"nosuchif0\""],
        ),
        // A cluster domain that makes no valid name is refused, not replaced by cluster.local.
        (
            vec![
                "run",
                "--once",
                "--target",
                "127.0.0.1",
                "--cluster-domain",
                "a..b",
            ],
            vec!["--cluster-domain", "two dots in a row"],
        ),
        (
            vec![
                "run",
                "--once",
                "--target",
                "127.0.0.1",
                "--cluster-domain",
                &long,
            ],
            vec!["--cluster-domain", "not a DNS domain"],
        ),
        // The root is `.`, never an empty string.
        (
            vec!["probe", "--ip", "127.0.0.1", "--name", ""],
            vec![
                "invalid query name \"\" for '--name <NAME>'",
                "the root is \".\"",
            ],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1", "--name", "a..b"],
            vec!["\"a..b\"", "empty label after \"a.\" (two dots in a row)"],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1", "--name", "kube dns.local"],
            vec!["\"kube dns.local\"", "a space at byte 4"],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1", "--name", tab],
            vec!["\"kube\\tdns\"", "a tab at byte 4"],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1", "--name", &long],
            vec!["... (300 bytes)", "label 1 is 300 bytes long, more than 63"],
        ),
        // Zone transfers over UDP.
        (
            vec!["probe", "--ip", "127.0.0.1", "--type", "AXFR"],
            vec!["--type AXFR needs --tcp", "asked over TCP only"],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1", "--type", "ixfr", "--both"],
            vec!["--type IXFR needs --tcp"],
        ),
        // Durations: bounded per flag, never an overflow.
        (
            vec!["probe", "--ip", "127.0.0.1", "--timeout", "300000000000y"],
            vec!["--timeout is at most 1h"],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1", "--timeout", "2h"],
            vec!["invalid value \"2h\" for '--timeout <DURATION>': --timeout is at most 1h"],
        ),
        (
            vec!["sweep", "--timeout", "61m"],
            vec!["--timeout is at most 1h"],
        ),
        (
            vec!["run", "--interval", "2d"],
            vec!["--interval is at most 1 day"],
        ),
        (
            vec!["probe", "--ip", "127.0.0.1", "--timeout", "0s"],
            vec!["must be greater than zero"],
        ),
        // The checks beside DNS health: bounded, and a way to turn them off that is not a typo.
        (
            vec!["run", "--api-dns-every", "500ms"],
            vec!["give 0 (off) or a duration from 1s to 1 day"],
        ),
        (
            vec!["controller", "--freshness-give-up", "2h"],
            vec![
                "invalid value \"2h\" for '--freshness-give-up <DURATION>': give a duration from 1s to 1h",
            ],
        ),
        // The safety timings: 0 allowed (act on a pod of any age), a day at most (no overflow).
        (
            vec!["controller", "--cooldown", "300000000000y"],
            vec!["'--cooldown <DURATION>': give a duration from 0s to 1 day"],
        ),
        (
            vec!["controller", "--grace-period", "2d"],
            vec!["give a duration from 0s to 1 day"],
        ),
        (
            vec!["controller", "--freshness-follow", "5000"],
            vec!["5000 is not in 0..=1000"],
        ),
    ];
    for (args, says) in cases {
        let o = hc(&args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}");
        for s in says {
            assert!(out.contains(s), "{args:?} must say {s:?}: {out}");
        }
        // A value is echoed at most once, and a long one cut short.
        if let Some(v) = args.last().filter(|v| v.len() > 64) {
            assert_eq!(out.matches(*v).count(), 0, "{args:?}: {out}");
            assert_eq!(out.matches(&v[..64]).count(), 1, "{args:?}: {out}");
        }
        assert_eq!(out.matches("os error").count(), 0, "{args:?}: {out}");
    }
}

#[test]
fn careless_but_clear_input_is_read_as_meant() {
    let server = answering(loopback());
    let addr = server.addr().to_string();
    // A Unicode name is asked in punycode (xn--bcher-kva.example.: dnsprobe's own tests), and
    // shown as typed.
    let o = hc(&["probe", "--ip", &addr, "--name", "bücher.example"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(" udp bücher.example. A -> 10.96.0.1"),
        "{}",
        text(&o)
    );
    // A numeric type keeps its number, in lines and in JSON.
    let o = hc(&["probe", "--ip", &addr, "--type", "TYPE65535"]);
    assert_eq!(o.status.code(), Some(1), "no records: {}", text(&o));
    assert!(
        text(&o).contains("kubernetes.default.svc.cluster.local. TYPE65535"),
        "{}",
        text(&o)
    );
    let o = hc(&["probe", "--ip", &addr, "--type", "type65535", "--json"]);
    assert!(text(&o).contains("\"type\": \"TYPE65535\""), "{}", text(&o));
    assert_eq!(server.queries(), 3);
    // A zone transfer over TCP is asked; over UDP nothing was sent.
    let o = hc(&["probe", "--ip", &addr, "--type", "AXFR"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(server.queries(), 3, "nothing sent for a refused AXFR");
    hc(&[
        "probe", "--ip", &addr, "--type", "AXFR", "--tcp", "--rcode", "NOERROR",
    ]);
    assert_eq!(server.queries(), 4);

    // An IPv6 zone: the scope is kept (on ::1 the kernel ignores it, so it answers).
    let v6 = answering(IpAddr::V6(Ipv6Addr::LOCALHOST));
    let port = v6.addr().port();
    let zoned = format!("[::1%lo]:{port}");
    let o = hc(&["probe", "--ip", &zoned]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("[::1%1]:{port} udp")),
        "{}",
        text(&o)
    );
    // A bracketed address that ends like a port is the address, with --port's port.
    let o = hc(&["probe", "--ip", "[::1]", "--port", &port.to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
