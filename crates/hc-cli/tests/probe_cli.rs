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

#[test]
fn dig_style_words_beside_the_flags() {
    let s = dnsmasq_on(loopback(), "10.96.0.1");
    let (addr, at) = (s.addr().to_string(), format!("@{}", s.addr()));
    let good = format!("OK   {addr} udp {NAME}. A -> 10.96.0.1 (");
    for args in [
        vec!["probe", &at],
        vec!["probe", &at, NAME, "A"],
        vec!["probe", "a", NAME, &at, "--expect", "10.96.0.1"],
        vec!["probe", NAME, "IN", "A", &at],
        vec![
            "probe",
            "-s",
            &addr,
            "-q",
            NAME,
            "-t",
            "A",
            "-e",
            "10.96.0.1",
        ],
    ] {
        let o = hc(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).starts_with(&good), "{args:?}: {}", stdout(&o));
    }
    // The server's address with --port (-p), the type as a word, JSON with -j.
    let ip_only = format!("@{}", s.addr().ip());
    let port = s.addr().port().to_string();
    let o = hc(&["probe", &ip_only, "-p", &port, NAME, "aaaa", "-T", "-j"]);
    let v = json(&o);
    assert_eq!(v[0]["target"], addr);
    assert_eq!(v[0]["transport"], "tcp");
    assert_eq!(v[0]["type"], "AAAA");
    // Careless mixes: named, exit 2, nothing sent to stdout.
    let cases: &[(&[&str], &str)] = &[
        (&["probe", &at, "a.example", "b.example"], "two query names"),
        (&["probe", &at, "A", "AAAA"], "two query types"),
        (&["probe", &at, "--name", NAME, NAME], "given twice"),
        (&["probe", &at, "--type", "A", "TXT"], "given twice"),
        (&["probe", "@", NAME], "invalid target"),
        (&["probe", "@kube-dns", NAME], "@kube-dns"),
        (&["probe", &at, "CH", "TXT"], "class CH"),
        (&["probe", NAME, "A"], "no server"),
        (
            &["probe", "--target", &addr, NAME, "A"],
            "write the server as @IP",
        ),
    ];
    for (args, needle) in cases {
        let o = hc(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn both_names_the_transport_difference_as_sweep_does() {
    let udp_dead = ScriptedServer::start(
        loopback(),
        &[ip("10.96.0.1")],
        Behaviour::Silent,
        Behaviour::Answer,
    );
    let tcp_dead = ScriptedServer::start(
        loopback(),
        &[ip("10.96.0.1")],
        Behaviour::Answer,
        Behaviour::Closed,
    );
    let good = dnsmasq_on(loopback(), "10.96.0.1");
    let [u, t, g] = [udp_dead.addr(), tcp_dead.addr(), good.addr()].map(|a| format!("@{a}"));
    let o = hc(&["probe", &u, &t, &g, "--both", "--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "6 probes, then 2 comparisons: {out}");
    let udp_blocked = format!(
        "FAIL udp-blocked: UDP to {} fails (timed out after 1 attempt",
        udp_dead.addr()
    );
    assert!(lines[6].starts_with(&udp_blocked), "{out}");
    assert!(lines[6].ends_with("while TCP works: a filter or conntrack problem on the UDP path"));
    let tcp_blocked = format!(
        "FAIL tcp-blocked: TCP to {} fails (connection refused) while UDP works",
        tcp_dead.addr()
    );
    assert_eq!(lines[7], tcp_blocked, "{out}");
    // Without --both there is nothing to compare.
    let o = hc(&["probe", &u, "--timeout", "300ms"]);
    assert!(!stdout(&o).contains("udp-blocked"), "{}", stdout(&o));
}

#[test]
fn long_answers_one_record_per_line() {
    let many: Vec<String> = (1..=6).map(|i| format!("10.244.{i}.17")).collect();
    let records: Vec<(&str, IpAddr)> = many.iter().map(|a| (NAME, ip(a))).collect();
    let s = Dnsmasq::start(loopback(), &records, "cluster.local");
    let o = hc(&["probe", &format!("@{}", s.addr())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains(" -> 6 records ("), "{out}");
    let mut shown: Vec<&str> = lines[1..].iter().map(|l| l.trim()).collect();
    shown.sort();
    assert_eq!(shown, many, "one record per line: {out}");
    assert!(lines[1..].iter().all(|l| l.starts_with("    ")), "{out}");
    // JSON is unchanged: the records in one array.
    let v = json(&hc(&["probe", &format!("@{}", s.addr()), "--json"]));
    assert_eq!(v[0]["answers"].as_array().unwrap().len(), 6);
}

#[test]
fn colour_follows_the_flag_then_the_environment() {
    let s = dnsmasq_on(loopback(), "10.96.0.1");
    let at = format!("@{}", s.addr());
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hc-cli"));
        c.args(args)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            c.env(k, v);
        }
        stdout(&c.output().unwrap()).contains("\x1b[32mOK")
    };
    assert!(!run(&["probe", &at], &[]), "not a terminal: no colour");
    assert!(run(
        &["probe", &at, "--color", "always"],
        &[("NO_COLOR", "1")]
    ));
    assert!(run(&["probe", &at], &[("CLICOLOR_FORCE", "1")]));
    assert!(!run(
        &["probe", &at],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(!run(
        &["probe", &at, "--color=never"],
        &[("CLICOLOR_FORCE", "1")]
    ));
    assert!(
        run(&["--color", "always", "probe", &at], &[]),
        "global flag"
    );
    let o = hc(&["probe", &at, "--color", "sometimes"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn completions_and_manual_pages() {
    let o = hc(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Bash itself completes with the script: the subcommands, then probe's flags.
    let script = std::env::temp_dir().join(format!("hc-cli-completion-{}", std::process::id()));
    std::fs::write(&script, &o.stdout).unwrap();
    let complete = |words: &str| {
        let line = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); \
             COMP_LINE=\"{words}\"; COMP_POINT=${{#COMP_LINE}}; \
             $(complete -p hc-cli | sed -E 's/.*-F ([^ ]+).*/\\1/') hc-cli \"${{COMP_WORDS[-1]}}\" \
             \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let o = Command::new("bash").args(["-c", &line]).output().unwrap();
        assert!(o.status.success(), "{line}: {o:?}");
        stdout(&o)
    };
    let subcommands = complete("hc-cli pro");
    assert_eq!(subcommands.trim(), "probe", "{subcommands}");
    let flags = complete("hc-cli probe --ta");
    assert!(flags.lines().any(|l| l == "--target"), "{flags}");
    std::fs::remove_file(&script).unwrap();
    let zsh = stdout(&hc(&["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef hc-cli"), "{zsh}");
    assert!(zsh.contains("--target"));
    let fish = stdout(&hc(&["completions", "fish"]));
    assert!(
        fish.contains("complete -c hc-cli") && fish.contains("-l target"),
        "{fish}"
    );
    assert_eq!(hc(&["completions", "tcsh"]).status.code(), Some(2));

    let page = stdout(&hc(&["man"]));
    assert!(page.contains(".TH hc-cli 1"), "{page}");
    let dir = std::env::temp_dir().join(format!("hc-cli-man-{}", std::process::id()));
    let o = hc(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for page in [
        "hc-cli.1",
        "hc-cli-probe.1",
        "hc-cli-sweep.1",
        "hc-cli-run.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".SH"), "{page}");
    }
    // groff (as `man` does) renders the probe page with its flags.
    let o = Command::new("groff")
        .args(["-man", "-Tutf8", "-P", "-c"])
        .arg(dir.join("hc-cli-probe.1"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run groff ({e}): apt-get install groff-base"));
    assert!(stdout(&o).contains("--target"), "{}", stdout(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_examples_do_not_wrap_at_80_columns() {
    let help = |sub: &[&str], cols: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_hc-cli"))
            .args(sub)
            .arg("--help")
            .env("COLUMNS", cols)
            .output()
            .unwrap();
        let text = stdout(&o);
        let after = text.split("\nExamples:\n").nth(1).map(str::to_owned);
        (text, after)
    };
    let commands: &[&[&str]] = &[
        &["probe"],
        &["sweep"],
        &["run"],
        &["controller"],
        &["status"],
        &["netns", "list"],
        &["completions"],
        &["man"],
    ];
    for sub in commands {
        let (narrow, examples) = help(sub, "80");
        let (_, wide) = help(sub, "200");
        let examples = examples.unwrap_or_else(|| panic!("{sub:?}: no Examples:\n{narrow}"));
        assert_eq!(
            Some(&examples),
            wide.as_ref(),
            "{sub:?}: the examples and notes wrap at 80 columns"
        );
        for l in examples.lines() {
            let n = l.chars().count();
            assert!(n <= 80, "{sub:?}: {n} columns: {l}");
        }
    }
}
