//! The paths a pod's DNS takes beyond the Service: a node-local cache in front of CoreDNS, the
//! C library's own walk through resolv.conf, and IPv6. `hc-cli sweep` and `hc-cli run --once`
//! run inside the node namespace of a lab (`hc_testkit::Lab`) with each fault injected for real.
//! Root only; CI runs as root. Sweeps are always restricted to the lab's namespaces.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use hc_testkit::{LAB_NODELOCAL_IP, Lab, LabOptions, ip, nft};
use serde_json::Value;

const API: &str = "10.96.0.1";

/// Runs `hc-cli ARGS --json` in the lab's node namespace: the exit code and the JSON.
fn hc(lab: &Lab, args: &[String]) -> (i32, Value) {
    lab.run_json(env!("CARGO_BIN_EXE_hc-cli"), args)
}

/// `hc-cli sweep` of `targets` from the node and the lab's client pods.
fn sweep(
    lab: &Lab,
    targets: &[SocketAddr],
    dns_service: &str,
    extra: &[&str],
) -> (i32, Vec<Value>) {
    let mut args: Vec<String> = vec!["sweep".into()];
    for t in targets {
        args.extend(["--target".into(), t.to_string()]);
    }
    let fixed = [
        "--expect",
        API,
        "--dns-service",
        dns_service,
        "--timeout",
        "400ms",
    ];
    args.extend(fixed.iter().chain(extra).map(|s| s.to_string()));
    args.extend(["--netns-glob".into(), lab.client_glob()]);
    let (code, v) = hc(lab, &args);
    (code, v.as_array().unwrap().clone())
}

fn entry<'a>(v: &'a [Value], ns_name: &str) -> &'a Value {
    v.iter()
        .find(|e| e["netns"]["name"] == ns_name)
        .unwrap_or_else(|| panic!("{ns_name} not swept: {v:#?}"))
}

fn host(v: &[Value]) -> &Value {
    v.iter().find(|e| e["netns"]["host"] == true).unwrap()
}

/// (code, target) of every finding of one namespace's entry.
fn findings(e: &Value) -> Vec<(String, Option<String>)> {
    (e["findings"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["target"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn codes(e: &Value) -> Vec<String> {
    findings(e).into_iter().map(|(c, _)| c).collect()
}

/// The probes of one entry to `target`: (name, transport, healthy).
fn probes_to(e: &Value, target: &str) -> Vec<(String, String, bool)> {
    (e["probes"].as_array().unwrap().iter())
        .filter(|p| p["target"] == target)
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["transport"].as_str().unwrap().to_owned(),
                p["healthy"] == true,
            )
        })
        .collect()
}

fn cache() -> String {
    format!("{LAB_NODELOCAL_IP}:53")
}

/// A lab with a node-local cache; client pod 0 uses the cache, pod 1 the VIP, pod 2 a
/// link-local address the node does not bind.
fn nodelocal_lab() -> Lab {
    let lab = Lab::with(1, 3, LabOptions::default().nodelocal());
    let search =
        "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n";
    lab.pods[0].write_resolv_conf(&format!("nameserver {LAB_NODELOCAL_IP}\n{search}"));
    lab.pods[2].write_resolv_conf(&format!("nameserver 169.254.99.99\n{search}"));
    lab
}

#[test]
fn root_a_pod_using_the_node_local_cache_is_right_and_probes_it() {
    let lab = nodelocal_lab();
    let (code, v) = sweep(&lab, &lab.targets(), "10.96.0.10", &[]);
    assert_eq!(code, 1, "pod 2 names an address nobody serves: {v:#?}");
    // The cache's address is right: the node binds it on nodelocaldns.
    let p0 = entry(&v, lab.pods[0].ns.name());
    assert_eq!(p0["healthy"], true, "{p0:#}");
    assert_eq!(
        probes_to(p0, &cache()),
        [(
            "kubernetes.default.svc.cluster.local.".into(),
            "udp".into(),
            true
        )]
    );
    assert_eq!(entry(&v, lab.pods[1].ns.name())["healthy"], true);
    // An address only the pod's file names is wrong, and never queried.
    let p2 = entry(&v, lab.pods[2].ns.name());
    assert_eq!(codes(p2), ["resolv-conf-nameserver"]);
    assert!(probes_to(p2, "169.254.99.99:53").is_empty(), "{p2:#}");
    // The node probes the cache, and once a name it cannot hold: its upstream answers NXDOMAIN.
    let h = host(&v);
    assert_eq!(h["healthy"], true, "{h:#}");
    let to_cache = probes_to(h, &cache());
    assert_eq!(to_cache.len(), 2, "{h:#}");
    assert!(to_cache.iter().all(|(_, t, ok)| t == "udp" && *ok), "{h:#}");
    assert!(to_cache[1].0.starts_with("hc-miss-"), "{to_cache:?}");
}

#[test]
fn root_the_node_local_cache_down_while_coredns_answers() {
    let mut lab = nodelocal_lab();
    lab.pods[2].write_resolv_conf("nameserver 10.96.0.10\n");
    lab.kill_nodelocal();
    let (code, v) = sweep(&lab, &lab.targets(), "10.96.0.10", &[]);
    assert_eq!(code, 1);
    let want = [
        ("refused".to_owned(), Some(cache())),
        ("dns-unreachable".to_owned(), Some(cache())),
        ("nodelocal-cache-down".to_owned(), Some(cache())),
    ];
    assert_eq!(findings(entry(&v, lab.pods[0].ns.name())), want);
    // From the node too, where the cache's address is local (`ip route get` says lo): no
    // interface is blamed.
    assert_eq!(findings(host(&v)), want);
    let msg = host(&v)["findings"][2]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("CoreDNS at 10.244.0.2:53 answers"), "{msg}");
    // The pods that use the VIP are fine.
    assert_eq!(entry(&v, lab.pods[1].ns.name())["healthy"], true);
    assert_eq!(entry(&v, lab.pods[2].ns.name())["healthy"], true);
}

#[test]
fn root_the_node_local_cache_answers_what_it_holds_but_its_upstream_is_cut() {
    let lab = nodelocal_lab();
    lab.pods[2].write_resolv_conf("nameserver 10.96.0.10\n");
    // A first sweep fills the cache with the probe name.
    let (code, _) = sweep(&lab, &lab.targets(), "10.96.0.10", &[]);
    assert_eq!(code, 0);
    lab.break_nodelocal_upstream();
    let (code, v) = sweep(&lab, &lab.targets(), "10.96.0.10", &[]);
    assert_eq!(code, 1);
    // The node asked the miss: the cache answers what it holds, not what it must ask for.
    assert_eq!(
        findings(host(&v)),
        [("nodelocal-upstream-failing".to_owned(), Some(cache()))]
    );
    for p in &lab.pods {
        assert_eq!(
            entry(&v, p.ns.name())["healthy"],
            true,
            "held names still answer"
        );
    }
    // The agent: the first pod using the cache asks the miss in place of its one query.
    let mut args: Vec<String> = [
        "run",
        "--once",
        "--sweep-netns",
        "--timeout",
        "400ms",
        "--attempts",
        "1",
    ]
    .map(String::from)
    .to_vec();
    for t in lab.targets() {
        args.extend(["--target".into(), t.to_string()]);
    }
    args.extend(
        [
            "--expect",
            API,
            "--dns-service",
            "10.96.0.10",
            "--netns-glob",
        ]
        .map(String::from),
    );
    args.push(lab.client_glob());
    let (code, v) = hc(&lab, &args);
    assert_eq!(code, 1, "{v:#}");
    let ns = v["namespaces"].as_array().unwrap();
    let p0 = entry(ns, lab.pods[0].ns.name());
    // The agent walked this pod's client path too (the first of its share): the short name's
    // first search name is a miss. When the cache says nothing for it, glibc gives up
    // (`client-lookup-failed`); when it answers SERVFAIL, glibc goes on to the next name,
    // which the cache holds. Which one dnsmasq does depends on its upstream retries.
    let own: Vec<(String, Option<String>)> = (findings(p0).into_iter())
        .filter(|(c, _)| !c.starts_with("client-"))
        .collect();
    assert_eq!(
        own,
        [("nodelocal-upstream-failing".to_owned(), Some(cache()))],
        "{p0:#}"
    );
    let failed = codes(p0).contains(&"client-lookup-failed".to_owned());
    assert_eq!(failed, p0["client"]["result"] == "failed", "{p0:#}");
    let asked: Vec<String> = probes_to(p0, &cache()).into_iter().map(|p| p.0).collect();
    assert!(asked[0].starts_with("hc-miss-"), "{asked:?}");
    assert_eq!(
        asked[1], "kubernetes.default.svc.cluster.local.",
        "the follow-up: a held name"
    );
    assert_eq!(entry(ns, lab.pods[1].ns.name())["healthy"], true);
}

#[test]
fn root_the_client_path_as_glibc_walks_it() {
    let lab = Lab::new(1, 4);
    let ns5 = "nameserver 10.96.0.10\noptions ndots:5\n";
    // Pod 1: two search domains before the Service's: 8 queries instead of 4 (a warning).
    lab.pods[1].write_resolv_conf(&format!(
        "search default.svc.cluster.local a.cluster.local b.cluster.local svc.cluster.local cluster.local\n{ns5}"
    ));
    // Pod 2: the node drops the second packet of each of its UDP flows to port 53, as the
    // conntrack race of parallel A and AAAA from one socket does (silently, on the node):
    // glibc waits its 5 s timeout before asking again.
    let ok = (lab.node.command("sysctl"))
        .args(["-qw", "net.netfilter.nf_conntrack_acct=1"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "sysctl nf_conntrack_acct in {}", lab.node.name());
    nft(
        &lab.node,
        &format!(
            "table inet race {{\n  chain pre {{ type filter hook prerouting priority -150; policy accept;\n    ip saddr {} udp dport 53 ct original packets 2 drop\n  }}\n}}\n",
            lab.pods[2].ip
        ),
    );
    // Pod 3: a search list without the Service domain: the short name does not resolve.
    lab.pods[3].write_resolv_conf(&format!("search default.svc.cluster.local\n{ns5}"));
    let (code, v) = sweep(&lab, &lab.targets()[..1], "10.96.0.10", &["--client-path"]);
    assert_eq!(code, 1, "pod 3: {v:#?}");
    let client = |i: usize| entry(&v, lab.pods[i].ns.name())["client"].clone();
    let p0 = entry(&v, lab.pods[0].ns.name());
    assert_eq!(
        (p0["healthy"].clone(), codes(p0)),
        (Value::Bool(true), vec![])
    );
    let c = client(0);
    assert_eq!(c["name"], "kubernetes.default");
    assert_eq!(c["result"], "answered");
    assert_eq!(c["answered_by"], "kubernetes.default.svc.cluster.local.");
    assert_eq!(
        (c["queries"].clone(), c["lost"].clone()),
        (4.into(), 0.into())
    );
    assert!(c["wait_ms"].as_f64().unwrap() < 400.0, "{c:#}");
    // Search amplification: a warning; the namespace stays healthy.
    let p1 = entry(&v, lab.pods[1].ns.name());
    assert_eq!(p1["healthy"], true);
    assert_eq!(codes(p1), ["search-amplification"]);
    assert_eq!(p1["findings"][0]["severity"], "warning");
    assert_eq!(client(1)["queries"], 8);
    // The lost packet: a glibc client waits at least one 5 s timeout; a warning.
    let p2e = entry(&v, lab.pods[2].ns.name());
    assert_eq!(codes(p2e), ["client-lookup-slow"], "{p2e:#}");
    assert_eq!(p2e["healthy"], true);
    let c = client(2);
    assert_eq!(c["result"], "answered");
    assert!(c["lost"].as_u64().unwrap() >= 1, "{c:#}");
    assert!(c["wait_ms"].as_f64().unwrap() >= 5000.0, "{c:#}");
    // Not found through the search list: an error.
    let p3 = entry(&v, lab.pods[3].ns.name());
    assert_eq!(codes(p3), ["client-lookup-failed"]);
    assert_eq!(client(3)["result"], "not-found");
    // Without --client-path nothing is walked.
    let (_, v) = sweep(&lab, &lab.targets()[..1], "10.96.0.10", &[]);
    assert!(entry(&v, lab.pods[0].ns.name()).get("client").is_none());
}

#[test]
fn root_ipv6_targets_are_probed_swept_and_diagnosed() {
    let lab = Lab::with(2, 2, LabOptions::default().ipv6());
    let t6 = lab.targets6();
    let vip6 = t6[0].to_string();
    for p in &lab.pods {
        p.write_resolv_conf(&format!(
            "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver {}\noptions ndots:5\n",
            t6[0].ip()
        ));
    }
    let (code, v) = sweep(&lab, &t6, &t6[0].ip().to_string(), &["--client-path"]);
    assert_eq!(code, 0, "{v:#?}");
    for e in &v {
        for p in e["probes"].as_array().unwrap() {
            assert_eq!(p["answers"], serde_json::json!([API]), "{e:#}");
        }
    }
    assert_eq!(
        entry(&v, lab.pods[0].ns.name())["client"]["result"],
        "answered"
    );
    // The agent's mode: each pod asks the IPv6 nameserver its resolv.conf names.
    let mut args: Vec<String> = ["run", "--once", "--sweep-netns", "--timeout", "400ms"]
        .map(String::from)
        .to_vec();
    args.extend([
        "--target".into(),
        vip6.clone(),
        "--expect".into(),
        API.into(),
    ]);
    args.extend(["--netns-glob".into(), lab.client_glob()]);
    let (code, v) = hc(&lab, &args);
    assert_eq!(code, 0, "{v:#}");
    for n in v["namespaces"].as_array().unwrap() {
        assert_eq!(probes_to(n, &vip6).len(), 1, "{n:#}");
    }
    // Faults: pod 0 loses its IPv6 default route; UDP is dropped at DNS pod 0 (both families).
    ip(&["-n", lab.pods[0].ns.name(), "-6", "route", "del", "default"]);
    lab.drop_udp_at_dns_pod(0);
    let (code, v) = sweep(&lab, &t6, &t6[0].ip().to_string(), &[]);
    assert_eq!(code, 1);
    let blocked = t6[1].to_string();
    let f0 = findings(entry(&v, lab.pods[0].ns.name()));
    assert!(
        f0.contains(&("no-route".into(), Some(vip6.clone()))),
        "{f0:?}"
    );
    assert!(
        f0.contains(&("unreachable".into(), Some(vip6.clone()))),
        "{f0:?}"
    );
    let nodefault: Vec<&Value> = (entry(&v, lab.pods[0].ns.name())["findings"].as_array())
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "no-default-route")
        .collect();
    assert_eq!(nodefault.len(), 1);
    assert!(
        nodefault[0]["message"]
            .as_str()
            .unwrap()
            .contains("ip -6 route show default"),
        "{nodefault:?}"
    );
    // The DNS pods are on the pod subnet: reachable without a default route; pod 1 is fine
    // but for DNS pod 0's UDP.
    for i in 0..2 {
        let f = findings(entry(&v, lab.pods[i].ns.name()));
        assert!(
            f.contains(&("udp-blocked".into(), Some(blocked.clone()))),
            "{f:?}"
        );
        assert!(
            !f.iter()
                .any(|(_, t)| t.as_deref() == Some(&t6[2].to_string())),
            "{f:?}"
        );
    }
    let f1 = codes(entry(&v, lab.pods[1].ns.name()));
    assert!(!f1.iter().any(|c| c.contains("route")), "{f1:?}");
}
