//! `hc-cli sweep` and `hc-cli netns list` run inside the node namespace of a lab built by the
//! test (bridge, veths, dnsmasq DNS pods behind an nftables VIP), with each fault injected for
//! real. Root only; CI runs as root. Sweeps are always restricted to the lab's namespaces.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::process::Output;

use hc_testkit::{Lab, ip};
use serde_json::Value;

fn run_in_node(lab: &Lab, args: &[String]) -> Output {
    lab.node
        .command(env!("CARGO_BIN_EXE_hc-cli"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn sweep(lab: &Lab, glob: &str, extra: &[&str]) -> (i32, Vec<Value>) {
    lab.sweep(env!("CARGO_BIN_EXE_hc-cli"), glob, extra)
}

fn entry<'a>(v: &'a [Value], ns_name: &str) -> &'a Value {
    v.iter()
        .find(|e| e["netns"]["name"] == ns_name)
        .unwrap_or_else(|| panic!("{ns_name} not swept: {v:#?}"))
}

/// (code, target) of every finding of a namespace.
fn findings(v: &[Value], ns_name: &str) -> Vec<(String, Option<String>)> {
    entry(v, ns_name)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["target"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn codes(v: &[Value], ns_name: &str) -> Vec<String> {
    findings(v, ns_name).into_iter().map(|(c, _)| c).collect()
}

#[test]
fn root_healthy_lab_sweeps_clean() {
    let lab = Lab::new(2, 2);
    let (code, v) = sweep(&lab, &lab.glob(), &[]);
    assert_eq!(code, 0, "{v:#?}");
    assert_eq!(v.len(), 1 + 2 + 2, "host + 2 DNS pods + 2 clients: {v:#?}");
    assert_eq!(
        v[0]["netns"]["host"], true,
        "the node's own namespace comes first"
    );
    for e in &v {
        assert_eq!(e["healthy"], true, "{e:#}");
        assert_eq!(e["findings"].as_array().unwrap().len(), 0);
        let probes = e["probes"].as_array().unwrap();
        assert_eq!(
            probes.len(),
            3,
            "one UDP probe per target, no TCP follow-up: {e:#}"
        );
        for p in probes {
            assert_eq!(p["transport"], "udp");
            assert_eq!(p["answers"], serde_json::json!(["10.96.0.1"]));
        }
        for k in [
            "inode",
            "pid",
            "process",
            "name",
            "path",
            "pod_uid",
            "container_id",
        ] {
            assert!(e["netns"].get(k).is_some(), "netns.{k} missing");
        }
    }
    // The lab's node namespace is where hc-cli runs: it is the host entry, never a pod.
    let node: Vec<&Value> = v
        .iter()
        .filter(|e| e["netns"]["name"] == lab.node.name())
        .collect();
    assert_eq!(node.len(), 1);
    assert_eq!(node[0]["netns"]["host"], true);
}

#[test]
fn root_human_output_one_line_per_namespace() {
    let lab = Lab::new(1, 2);
    lab.pods[1].write_resolv_conf("nameserver 10.96.0.99\n");
    let mut args: Vec<String> = vec!["sweep".into(), "--target".into(), "10.96.0.10".into()];
    for a in [
        "--dns-service",
        "10.96.0.10",
        "--timeout",
        "400ms",
        "--netns-glob",
        &lab.client_glob(),
    ] {
        args.push(a.into());
    }
    let o = run_in_node(&lab, &args);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("OK   host ("), "{out}");
    assert!(
        lines[1].starts_with(&format!("OK   {}", lab.pods[0].ns.name())),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "FAIL {}: resolv-conf-nameserver: ",
            lab.pods[1].ns.name()
        )),
        "{out}"
    );
    assert!(
        lines[2].contains("names nameserver 10.96.0.99, expected 10.96.0.10"),
        "{out}"
    );
}

#[test]
fn root_wrong_nameserver_in_resolv_conf() {
    let lab = Lab::new(1, 2);
    lab.pods[0].write_resolv_conf("search default.svc.cluster.local\nnameserver 10.96.0.99\n");
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v, lab.pods[0].ns.name()), ["resolv-conf-nameserver"]);
    assert_eq!(entry(&v, lab.pods[0].ns.name())["healthy"], false);
    assert_eq!(entry(&v, lab.pods[1].ns.name())["healthy"], true);
}

#[test]
fn root_default_route_deleted() {
    let lab = Lab::new(1, 2);
    ip(&["-n", lab.pods[0].ns.name(), "route", "del", "default"]);
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    let f = findings(&v, lab.pods[0].ns.name());
    assert!(
        f.contains(&("no-route".into(), Some("10.96.0.10:53".into()))),
        "{f:?}"
    );
    assert!(f.iter().any(|(c, _)| c == "no-default-route"), "{f:?}");
    assert!(
        f.contains(&("unreachable".into(), Some("10.96.0.10:53".into()))),
        "{f:?}"
    );
    // The DNS pod is on the pod subnet: still reachable without a default route.
    assert!(
        !f.iter().any(|(_, t)| t.as_deref() == Some("10.244.0.2:53")),
        "{f:?}"
    );
    assert_eq!(entry(&v, lab.pods[1].ns.name())["healthy"], true);
}

#[test]
fn root_host_side_veth_down() {
    let lab = Lab::new(1, 2);
    lab.set_host_veth(0, &["down"]);
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    let c = codes(&v, lab.pods[0].ns.name());
    assert!(c.contains(&"veth-peer-down".to_owned()), "{c:?}");
    assert!(c.contains(&"dns-unreachable".to_owned()), "{c:?}");
    assert!(!c.contains(&"veth-detached".to_owned()), "{c:?}");
    assert_eq!(entry(&v, lab.pods[1].ns.name())["healthy"], true);
}

#[test]
fn root_veth_detached_from_the_bridge() {
    let lab = Lab::new(1, 2);
    lab.set_host_veth(0, &["nomaster"]);
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    let c = codes(&v, lab.pods[0].ns.name());
    assert!(c.contains(&"veth-detached".to_owned()), "{c:?}");
    assert!(!c.contains(&"veth-peer-down".to_owned()), "{c:?}");
    assert_eq!(entry(&v, lab.pods[1].ns.name())["healthy"], true);
}

#[test]
fn root_udp_dropped_at_one_dns_pod_while_tcp_works() {
    let lab = Lab::new(2, 2);
    lab.drop_udp_at_dns_pod(0);
    let blocked = format!("{}:53", lab.dns[0].pod.ip);
    let other = format!("{}:53", lab.dns[1].pod.ip);
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    for pod in &lab.pods {
        let f = findings(&v, pod.ns.name());
        assert!(
            f.contains(&("udp-blocked".into(), Some(blocked.clone()))),
            "{f:?}"
        );
        assert!(
            !f.iter()
                .any(|(c, t)| c == "dns-unreachable" && t.as_deref() == Some(&blocked)),
            "{f:?}"
        );
        assert!(
            !f.iter().any(|(_, t)| t.as_deref() == Some(&other)),
            "the other DNS pod is fine: {f:?}"
        );
        // The TCP follow-up to the blocked pod answered.
        let probes = entry(&v, pod.ns.name())["probes"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            probes
                .iter()
                .any(|p| p["target"] == blocked && p["transport"] == "tcp" && p["healthy"] == true)
        );
    }
}

#[test]
fn root_dns_server_killed() {
    let mut lab = Lab::new(2, 2);
    lab.dns[1].server.kill();
    let dead = format!("{}:53", lab.dns[1].pod.ip);
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    for pod in &lab.pods {
        let f = findings(&v, pod.ns.name());
        assert!(
            f.contains(&("dns-unreachable".into(), Some(dead.clone()))),
            "{f:?}"
        );
        // No path fault: the route, links and veth are fine.
        assert!(
            !f.iter()
                .any(|(c, _)| c.starts_with("veth") || c.contains("route") || c == "link-down"),
            "{f:?}"
        );
    }
}

#[test]
fn root_netns_list_finds_the_lab_by_name() {
    let lab = Lab::new(1, 1);
    let o = run_in_node(&lab, &["netns".into(), "list".into(), "--json".into()]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = v.as_array().unwrap();
    for name in [
        lab.pods[0].ns.name(),
        lab.dns[0].pod.ns.name(),
        lab.node.name(),
    ] {
        let e = v
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        for k in [
            "inode",
            "pid",
            "process",
            "name",
            "path",
            "pod_uid",
            "container_id",
        ] {
            assert!(e.get(k).is_some(), "{k} missing in {e}");
        }
    }
    // The DNS pod runs dnsmasq: its namespace has a process.
    let d = v
        .iter()
        .find(|e| e["name"] == lab.dns[0].pod.ns.name())
        .unwrap();
    assert_eq!(d["process"], "dnsmasq");
    // The client pod has no process: name only.
    let p = v
        .iter()
        .find(|e| e["name"] == lab.pods[0].ns.name())
        .unwrap();
    assert_eq!(p["pid"], Value::Null);
    let human = run_in_node(&lab, &["netns".into(), "list".into()]);
    assert!(
        String::from_utf8(human.stdout)
            .unwrap()
            .contains(lab.pods[0].ns.name())
    );
}

#[test]
fn root_bad_usage_exits_2() {
    let lab = Lab::new(0, 1);
    let o = run_in_node(
        &lab,
        &[
            "netns".into(),
            "list".into(),
            "--proc-root".into(),
            "/nonexistent".into(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent"));
    let o = run_in_node(
        &lab,
        &[
            "sweep".into(),
            "--target".into(),
            "10.96.0.10".into(),
            "--netns".into(),
            "no-such-ns-hc".into(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no network namespace named \"no-such-ns-hc\"")
    );
    let o = run_in_node(&lab, &["sweep".into(), "--netns-glob".into(), "x".into()]);
    assert_eq!(o.status.code(), Some(2), "no target");
}

/// A proc root whose processes live in the lab's pod namespaces, each pod's files chosen by the
/// test: `/proc/PID/{ns/net, comm, cgroup, root}`.
struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    fn new() -> FakeProc {
        FakeProc {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Process `pid` in the namespace named `ns`; its container root's `etc/resolv.conf` made by
    /// `resolv`, its comm and cgroup by `comm` and `cgroup`.
    fn process(
        &self,
        pid: u32,
        ns: &str,
        resolv: impl FnOnce(&std::path::Path),
        comm: impl FnOnce(&std::path::Path),
        cgroup: impl FnOnce(&std::path::Path),
    ) {
        let p = self.dir.path().join(pid.to_string());
        std::fs::create_dir_all(p.join("ns")).unwrap();
        std::os::unix::fs::symlink(format!("/run/netns/{ns}"), p.join("ns/net")).unwrap();
        let root = self.dir.path().join("roots").join(pid.to_string());
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(&root, p.join("root")).unwrap();
        resolv(&root.join("etc/resolv.conf"));
        comm(&p.join("comm"));
        cgroup(&p.join("cgroup"));
    }
}

fn fifo(p: &std::path::Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

fn text(t: &'static str) -> impl FnOnce(&std::path::Path) {
    move |p| std::fs::write(p, t).unwrap()
}

fn link(to: &'static str) -> impl FnOnce(&std::path::Path) {
    move |p| std::os::unix::fs::symlink(to, p).unwrap()
}

#[test]
fn root_hostile_pod_files_neither_freeze_nor_bloat_the_sweep() {
    let lab = Lab::new(1, 5);
    let fake = FakeProc::new();
    let ok = "nameserver 10.96.0.10\n";
    let names: Vec<String> = lab.pods.iter().map(|p| p.ns.name().to_owned()).collect();
    for p in &lab.pods {
        p.remove_resolv_conf();
    }
    // A FIFO (and a FIFO for comm): a plain open would block forever.
    fake.process(1001, &names[0], fifo, fifo, text("0::/\n"));
    // /dev/zero as a device node in the container (and the node's for cgroup): a plain read
    // would never end.
    let zero = |p: &std::path::Path| {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        mknod(
            p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 5),
        )
        .unwrap();
    };
    fake.process(1002, &names[1], zero, text("sh\n"), link("/dev/zero"));
    // 10 MiB.
    let huge = |p: &std::path::Path| std::fs::write(p, vec![b'#'; 10 << 20]).unwrap();
    fake.process(1003, &names[2], huge, text("sh\n"), text("0::/\n"));
    // An absolute symlink, to a file the node has and the container does not: resolved in the
    // container's root, it is not found (the node's file is never read).
    fake.process(
        1004,
        &names[3],
        link("/etc/hostname"),
        text("sh\n"),
        text("0::/\n"),
    );
    // A good one.
    fake.process(1005, &names[4], text(ok), text("sh\n"), text("0::/\n"));

    let mut cmd = lab.node.command("/usr/bin/time");
    cmd.args([
        "-f",
        "peak-rss-kib %M",
        env!("CARGO_BIN_EXE_hc-cli"),
        "sweep",
    ])
    .args(["--target", "10.96.0.10", "--dns-service", "10.96.0.10"])
    .args(["--expect", "10.96.0.1", "--timeout", "400ms", "--json"])
    .args(["--netns-glob", &lab.client_glob()])
    .arg("--proc-root")
    .arg(fake.dir.path())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("GNU time (/usr/bin/time) measures the peak RSS: apt-get install time");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("the sweep froze on a pod's files");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let peak: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB: a file was read whole"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_name = |n: &str| -> String {
        let ns = v
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["netns"]["name"] == n)
            .unwrap_or_else(|| panic!("{n} not swept: {v}"));
        ns.to_string()
    };
    for (i, why) in ["a FIFO", "a device", "larger than 64 KiB", "No such file"]
        .iter()
        .enumerate()
    {
        let ns = by_name(&names[i]);
        assert!(
            ns.contains("resolv-conf-missing") && ns.contains(why),
            "{ns}"
        );
    }
    let good = by_name(&names[4]);
    assert!(!good.contains("resolv-conf"), "{good}");
    eprintln!("peak RSS of the sweep: {peak} KiB");
}
