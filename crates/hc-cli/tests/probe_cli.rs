//! `hc-cli probe` as a user runs it: the built binary against real servers on loopback.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::{Command, Output};

use hc_testkit::{Behaviour, Dnsmasq, ScriptedServer, closed_port, loopback};
use serde_json::Value;

const NAME: &str = "kubernetes.default.svc.cluster.local";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dnsmasq_on(at: IpAddr, answer: &str) -> Dnsmasq {
    Dnsmasq::start(at, &[(NAME, ip(answer))], "cluster.local")
}

fn hc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hc-cli"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn json(o: &Output) -> Vec<Value> {
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn healthy_both_transports_exit_0_with_one_line_each() {
    let s = dnsmasq_on(loopback(), "10.96.0.1");
    let addr = s.addr().to_string();
    let o = hc(&[
        "probe",
        "--target",
        &addr,
        "--both",
        "--expect",
        "10.96.0.1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    // `--ip`, the old name of `--target`, still works.
    let old = hc(&["probe", "--ip", &addr, "--both", "--expect", "10.96.0.1"]);
    assert_eq!(old.status.code(), Some(0), "{}", stderr(&old));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("OK   {addr} udp {NAME}. A -> 10.96.0.1 (")),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("OK   {addr} tcp {NAME}. A -> 10.96.0.1 (")),
        "{out}"
    );
    assert!(lines[0].ends_with(" ms)"), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn wrong_answer_exit_1_in_plain_words() {
    let s = dnsmasq_on(loopback(), "10.96.0.99");
    let o = hc(&[
        "probe",
        "--ip",
        &s.addr().to_string(),
        "--expect",
        "10.96.0.1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(": answered 10.96.0.99, expected 10.96.0.1"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).starts_with("FAIL "));
}

#[test]
fn json_shape_per_target_and_transport() {
    let good = dnsmasq_on(loopback(), "10.96.0.1");
    let udp_dead = ScriptedServer::start(
        loopback(),
        &[ip("10.96.0.1")],
        Behaviour::Silent,
        Behaviour::Answer,
    );
    let o = hc(&[
        "probe",
        "--ip",
        &good.addr().to_string(),
        &udp_dead.addr().to_string(),
        "--both",
        "--timeout",
        "300ms",
        "--attempts",
        "2",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v.len(), 4);
    let keys = [
        "target",
        "transport",
        "name",
        "type",
        "healthy",
        "rcode",
        "answers",
        "rtt_ms",
        "attempts",
        "error",
    ];
    for obj in &v {
        for k in keys {
            assert!(obj.get(k).is_some(), "missing {k} in {obj}");
        }
        assert_eq!(obj["name"], format!("{NAME}."));
        assert_eq!(obj["type"], "A");
    }
    assert_eq!(v[0]["target"], good.addr().to_string());
    assert_eq!(v[0]["transport"], "udp");
    assert_eq!(v[0]["healthy"], true);
    assert_eq!(v[0]["rcode"], "NOERROR");
    assert_eq!(v[0]["answers"], serde_json::json!(["10.96.0.1"]));
    assert!(v[0]["rtt_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v[0]["error"], Value::Null);
    assert_eq!(v[1]["transport"], "tcp");
    assert_eq!(v[1]["healthy"], true);

    // The "UDP dead, TCP alive" server, exactly as such.
    assert_eq!(v[2]["target"], udp_dead.addr().to_string());
    assert_eq!(v[2]["transport"], "udp");
    assert_eq!(v[2]["healthy"], false);
    assert_eq!(v[2]["rcode"], Value::Null);
    assert_eq!(v[2]["rtt_ms"], Value::Null);
    assert_eq!(v[2]["attempts"], 2);
    assert_eq!(v[2]["error"]["kind"], "timeout");
    assert_eq!(
        v[2]["error"]["message"],
        "timed out after 2 attempts (300ms each)"
    );
    assert_eq!(v[3]["transport"], "tcp");
    assert_eq!(v[3]["healthy"], true);
}

#[test]
fn servfail_and_refused_lines() {
    let sf = ScriptedServer::start(
        loopback(),
        &[],
        Behaviour::Rcode(dnsprobe::hickory_proto::op::ResponseCode::ServFail),
        Behaviour::Closed,
    );
    let o = hc(&["probe", "--ip", &sf.addr().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(": SERVFAIL"), "{}", stdout(&o));

    let closed = closed_port(loopback()).to_string();
    let o = hc(&["probe", "--ip", &closed, "--tcp", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v[0]["error"]["kind"], "refused");
    assert_eq!(v[0]["error"]["message"], "connection refused");
}

#[test]
fn nxdomain_accepted_with_rcode_flag() {
    let s = dnsmasq_on(loopback(), "10.96.0.1");
    let addr = s.addr().to_string();
    let o = hc(&["probe", "--ip", &addr, "--name", "nope.cluster.local"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(": NXDOMAIN"));
    let o = hc(&[
        "probe",
        "--ip",
        &addr,
        "--name",
        "nope.cluster.local",
        "--rcode",
        "NXDOMAIN",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn port_flag_and_ipv6_forms() {
    let s = Dnsmasq::start(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        &[(NAME, ip("10.96.0.1"))],
        "cluster.local",
    );
    let port = s.addr().port().to_string();
    for form in [
        vec!["--ip", "::1", "--port", &port],
        vec!["--ip", "[::1]", "--port", &port],
    ] {
        let mut args = vec!["probe", "--json"];
        args.extend(form.iter().copied());
        let o = hc(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(
            json(&o)[0]["target"],
            SocketAddr::new(ip("::1"), s.addr().port()).to_string()
        );
    }
    let bracketed = format!("[::1]:{port}");
    let o = hc(&["probe", "--ip", &bracketed, "--port", "1"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "an explicit port wins over --port: {}",
        stdout(&o)
    );
}

#[test]
fn bad_usage_exits_2_naming_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (&["probe"], "--target"),
        (&["probe", "--ip", "kube-dns"], "invalid target"),
        (&["probe", "--ip", "10.0.0.1:0"], "port 0"),
        (
            &["probe", "--ip", "127.0.0.1", "--type", "BOGUS"],
            "unknown query type",
        ),
        (
            &["probe", "--ip", "127.0.0.1", "--rcode", "MAYBE"],
            "unknown response code",
        ),
        (
            &["probe", "--ip", "127.0.0.1", "--timeout", "soon"],
            "--timeout",
        ),
        (
            &["probe", "--ip", "127.0.0.1", "--timeout", "0s"],
            "greater than zero",
        ),
        (
            &["probe", "--ip", "127.0.0.1", "--attempts", "0"],
            "--attempts",
        ),
        (
            &["probe", "--ip", "127.0.0.1", "--tcp", "--both"],
            "cannot be used with",
        ),
        (
            &["probe", "--ip", "127.0.0.1", "--name", "a..b"],
            "invalid query name",
        ),
    ];
    for (args, needle) in cases {
        let o = hc(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn help_teaches() {
    let o = hc(&["probe", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    for needle in [
        "Examples:",
        "--both",
        "--expect",
        "Exit status",
        "wrong-answer",
    ] {
        assert!(h.contains(needle), "--help lacks {needle}");
    }
}
