//! `hc-cli sweep` in the lab against netfilter faults injected for real: an nftables rule on
//! the node that drops UDP and rejects TCP DNS of one pod, an iptables-nft REJECT inside a pod,
//! a UDP conntrack entry left towards a replaced DNS pod, and a pod whose AAAA questions are lost
//! while its A questions are answered. Each asserts the exact finding codes, and that the other
//! namespaces stay healthy. Root only; sweeps are restricted to the lab's namespaces.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use hc_testkit::{Lab, Netns, nft};
use serde_json::Value;

fn sweep(lab: &Lab, glob: &str, extra: &[&str]) -> (i32, Vec<Value>) {
    lab.sweep(env!("CARGO_BIN_EXE_hc-cli"), glob, extra)
}

fn entry<'a>(v: &'a [Value], name: &str) -> &'a Value {
    v.iter()
        .find(|e| e["netns"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not swept: {v:#?}"))
}

fn host(v: &[Value]) -> &Value {
    v.iter().find(|e| e["netns"]["host"] == true).unwrap()
}

/// The findings of an entry as (code, message).
fn findings(e: &Value) -> Vec<(String, String)> {
    (e["findings"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The distinct codes of an entry, sorted.
fn codes(e: &Value) -> Vec<String> {
    let mut c: Vec<String> = findings(e).into_iter().map(|(c, _)| c).collect();
    c.sort();
    c.dedup();
    c
}

/// The messages of an entry's findings with `code`.
fn messages(e: &Value, code: &str) -> Vec<String> {
    (findings(e).into_iter())
        .filter(|(c, _)| c == code)
        .map(|(_, m)| m)
        .collect()
}

/// The handle nft gives the rule whose line contains `needle` in `chain` of `ns`.
fn handle(ns: &Netns, family_table_chain: &[&str], needle: &str) -> String {
    let mut args = vec!["-a", "list", "chain"];
    args.extend_from_slice(family_table_chain);
    let o = ns.command("nft").args(&args).output().unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    let line = (text.lines())
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no rule with {needle:?}:\n{text}"));
    line.rsplit("# handle ").next().unwrap().trim().to_owned()
}

fn assert_healthy(v: &[Value], names: &[&str]) {
    for n in names {
        let e = entry(v, n);
        assert_eq!(e["healthy"], true, "{e:#}");
    }
}

#[test]
fn root_nftables_rules_on_the_node_are_named_for_the_pod_they_cut_off() {
    let lab = Lab::new(2, 2);
    let victim = &lab.pods[0];
    nft(
        &lab.node,
        &format!(
            "table inet fw {{
  chain forward {{ type filter hook forward priority 0; policy accept;
    ip saddr {ip} udp dport 53 counter drop comment \"no dns for p0\"
    ip saddr {ip} tcp dport 53 counter reject with tcp reset
  }}
}}
",
            ip = victim.ip
        ),
    );
    let udp = handle(&lab.node, &["inet", "fw", "forward"], "udp dport 53");
    let tcp = handle(&lab.node, &["inet", "fw", "forward"], "tcp dport 53");
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    let e = entry(&v, victim.ns.name());
    assert_eq!(
        codes(e),
        ["dns-unreachable", "nftables-drop", "timeout"],
        "{e:#}"
    );
    let named = messages(e, "nftables-drop");
    assert_eq!(named.len(), 2, "one finding per rule: {named:#?}");
    let drop = format!(
        "table inet fw, chain forward, handle {udp} (comment \"no dns for p0\") in the node's namespace drops UDP DNS to "
    );
    let reject = format!(
        "table inet fw, chain forward, handle {tcp} in the node's namespace rejects TCP DNS to "
    );
    assert!(named.iter().any(|m| m.starts_with(&drop)), "{named:#?}");
    assert!(named.iter().any(|m| m.starts_with(&reject)), "{named:#?}");
    for m in &named {
        assert!(m.contains("its counter grew by"), "{m}");
        assert!(m.ends_with("(`nft -a list chain inet fw forward`)"), "{m}");
    }
    assert_healthy(&v, &[lab.pods[1].ns.name(), lab.node.name()]);
}

#[test]
fn root_iptables_nft_reject_inside_a_pod_is_named() {
    let lab = Lab::new(1, 2);
    let victim = &lab.pods[1];
    let out = victim
        .ns
        .command("iptables-nft")
        .args(["-A", "OUTPUT", "-p", "udp", "--dport", "53"])
        .args(["-m", "comment", "--comment", "dns off", "-j", "REJECT"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run iptables-nft ({e}): install iptables"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = handle(&victim.ns, &["ip", "filter", "OUTPUT"], "udp dport 53");
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1);
    let e = entry(&v, victim.ns.name());
    assert_eq!(
        codes(e),
        ["nftables-drop", "refused", "udp-blocked"],
        "{e:#}"
    );
    let named = messages(e, "nftables-drop");
    assert_eq!(named.len(), 1, "{named:#?}");
    assert!(
        named[0].starts_with(&format!(
            "table ip filter, chain OUTPUT, handle {h} (comment \"dns off\") in this namespace rejects UDP DNS to "
        )),
        "{named:#?}"
    );
    assert!(
        named[0].ends_with(
            "(`nft -a list chain ip filter OUTPUT`; `iptables-nft -t filter -S OUTPUT`)"
        ),
        "{named:#?}"
    );
    assert_healthy(&v, &[lab.pods[0].ns.name(), lab.node.name()]);
}

/// `dig` from `ns` to the Service, from a fixed source port, one try of `secs` seconds: whether
/// it got an answer.
fn dig_from_port(ns: &Netns, port: u16, secs: u32) -> bool {
    let o = ns
        .command("dig")
        .args(["-b", &format!("0.0.0.0#{port}"), "@10.96.0.10"])
        .args(["+tries=1", &format!("+time={secs}"), "+short"])
        .arg("kubernetes.default.svc.cluster.local")
        .output()
        .unwrap_or_else(|e| panic!("cannot run dig ({e}): install dnsutils"));
    String::from_utf8_lossy(&o.stdout).trim() == "10.96.0.1"
}

#[test]
fn root_conntrack_entry_left_towards_a_replaced_dns_pod() {
    let mut lab = Lab::new(1, 2);
    let client = lab.pods[0].ns.name().to_owned();
    let old = lab.dns[0].pod.ip;
    assert!(dig_from_port(&lab.pods[0].ns, 40053, 1), "the lab answers");
    let new = lab.replace_dns_pod(0);
    // The fault is real: the same source port still goes to the old pod, a new one does not.
    assert!(!dig_from_port(&lab.pods[0].ns, 40053, 1), "stale entry");
    assert!(
        dig_from_port(&lab.pods[0].ns, 40054, 1),
        "new flows reach {new}"
    );
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 1, "{v:#?}");
    let h = host(&v);
    assert_eq!(codes(h), ["conntrack-stale-endpoint"], "{h:#}");
    let m = &messages(h, "conntrack-stale-endpoint")[0];
    assert!(
        m.starts_with(&format!(
            "1 UDP conntrack entry for 10.96.0.10:53 still leads to {old}:53, which is no longer a DNS endpoint"
        )),
        "{m}"
    );
    assert!(m.contains(&format!("{}:40053", lab.pods[0].ip)), "{m}");
    assert!(m.contains(&format!("--reply-src {old}")), "{m}");
    assert_eq!(h["findings"][0]["target"], "10.96.0.10:53");
    // The pods' own probes use fresh ports: they resolve.
    assert_healthy(&v, &[&client, lab.pods[1].ns.name()]);
}

#[test]
fn root_lost_aaaa_answer_of_parallel_questions() {
    let lab = Lab::new(1, 2);
    let victim = &lab.pods[1];
    // On the node's path, as the race drops it: the QTYPE of the lab's query, 58 bytes into
    // the UDP header (8 + 12 + 38 for the name): this pod's AAAA questions are dropped, its A
    // questions pass.
    nft(
        &lab.node,
        &format!(
            "table inet fault {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    ip saddr {} udp dport 53 @th,464,16 28 counter drop\n  }}\n}}\n",
            victim.ip
        ),
    );
    let (code, v) = sweep(&lab, &lab.client_glob(), &["--parallel-a-aaaa"]);
    assert_eq!(code, 1);
    let e = entry(&v, victim.ns.name());
    assert_eq!(codes(e), ["parallel-answer-lost"], "{e:#}");
    let lost = messages(e, "parallel-answer-lost");
    assert_eq!(lost.len(), 2, "the Service and the DNS pod: {lost:#?}");
    assert!(
        lost.iter().any(|m| m.contains("to 10.96.0.10:53")),
        "{lost:#?}"
    );
    assert!(
        lost.iter().all(|m| m.contains("the AAAA answer was lost")),
        "{lost:#?}"
    );
    for p in e["probes"].as_array().unwrap() {
        assert_eq!(p["healthy"], true, "the A answers came: {p:#}");
        assert_eq!(p["parallel_lost"], "aaaa", "{p:#}");
    }
    let ok = entry(&v, lab.pods[0].ns.name());
    assert_eq!(ok["healthy"], true, "{ok:#}");
    assert!(
        (ok["probes"].as_array().unwrap().iter()).all(|p| p["parallel_lost"] == "none"),
        "{ok:#}"
    );
    // Without the option nothing is sent in parallel, and nothing is lost.
    let (code, v) = sweep(&lab, &lab.client_glob(), &[]);
    assert_eq!(code, 0, "{v:#?}");
}
