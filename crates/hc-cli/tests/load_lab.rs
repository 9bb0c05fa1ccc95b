//! What the agents cost, measured where it lands: DNS queries counted by nftables in the DNS
//! pods' namespaces, and Kubernetes API requests counted by the fake API server, with the agents
//! and controllers started exactly as the rendered manifests start them (shipped timing: rounds
//! of 15 s, 1 query/s). `HC_LOAD_SECONDS` sets the measuring window (60 s by default; the
//! figures in docs/performance.md were taken with 300). Root only.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::shipped::{Proc, Shipped};
use hc_agent::schedule::{AGENT_WATCHES, Budget, WATCH_RENEWAL, model};
use hc_testkit::Netns;

fn window() -> Duration {
    let s = std::env::var("HC_LOAD_SECONDS").map_or(60, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("HC_LOAD_SECONDS={v:?}: give whole seconds"))
    });
    Duration::from_secs(s)
}

/// Counts DNS queries arriving at a DNS pod, by the node they come from: UDP datagrams and TCP
/// connections (SYN) to port 53, from the node's pod range or its own address.
fn count_queries(ns: &Netns, nodes: usize) {
    let mut rules = String::new();
    let mut counters = String::new();
    for n in 0..nodes {
        counters.push_str(&format!("  counter n{n} {{}}\n"));
        let from = format!("ip saddr {{ 10.244.{n}.0/24, 192.168.100.{} }}", n + 1);
        rules.push_str(&format!(
            "    {from} udp dport 53 counter name n{n}\n    {from} tcp dport 53 tcp flags & (syn | ack) == syn counter name n{n}\n"
        ));
    }
    let table = format!(
        "table inet hcload {{\n{counters}  chain input {{\n    type filter hook input priority -10; policy accept;\n{rules}  }}\n}}\n"
    );
    hc_testkit::nft(ns, &table);
}

/// The queries counted so far at `ns`, per node.
fn counted(ns: &Netns, nodes: usize) -> Vec<u64> {
    (0..nodes)
        .map(|n| {
            let out = ns
                .command("nft")
                .args(["list", "counter", "inet", "hcload", &format!("n{n}")])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let packets = text
                .split_whitespace()
                .skip_while(|w| *w != "packets")
                .nth(1)
                .unwrap_or_else(|| panic!("no counter n{n}: {text}"));
            packets.parse().unwrap()
        })
        .collect()
}

fn at_servers(c: &Shipped, nodes: usize) -> Vec<u64> {
    let mut total = vec![0; nodes];
    for d in &c.lab.dns {
        for (t, x) in total.iter_mut().zip(counted(&d.pod.ns, nodes)) {
            *t += x;
        }
    }
    total
}

#[test]
fn root_queries_per_node_at_the_dns_servers_match_the_model() {
    // Two nodes with 55 pod namespaces each, two CoreDNS pods, no controller: the agents take
    // the default sample (every pod each minute here).
    let (nodes, dns, clients) = (2, 2, 55);
    let c = Shipped::with_clients(nodes, dns, clients, "deploy/base");
    for d in &c.lab.dns {
        count_queries(&d.pod.ns, nodes);
    }
    let agents: Vec<Proc> = (0..nodes).map(|n| c.agent_with(n, &[])).collect();
    // The first round starts within one interval (the jitter); let two go by.
    std::thread::sleep(Duration::from_secs(31));
    let w = window();
    let before = at_servers(&c, nodes);
    std::thread::sleep(w);
    let after = at_servers(&c, nodes);
    let l = model(&Budget::default(), nodes, dns, clients);
    let expected = l.per_node * w.as_secs_f64();
    for n in 0..nodes {
        let got = (after[n] - before[n]) as f64;
        eprintln!(
            "node-{n}: {got} queries in {w:?} at the DNS servers; the model: {expected:.1} ({:.3} q/s)",
            l.per_node
        );
        assert!(
            (got - expected).abs() <= 0.2 * expected,
            "node-{n}: {got} queries, the model says {expected:.1}\n{}",
            agents[n].log()
        );
    }
}

#[test]
fn root_twenty_agents_hold_watches_only() {
    let nodes = 20;
    let c = Shipped::new(nodes, 2, "deploy/base");
    let _agents: Vec<Proc> = (0..nodes).map(|n| c.agent_with(n, &[])).collect();
    // Both controller replicas, with the shipped timing too.
    let shipped = [
        ("HC_INTERVAL", "15s"),
        ("HC_WINDOW", "2m"),
        ("HC_GRACE_PERIOD", "60s"),
    ];
    let _a = c.controller(0, "controller-a", &shipped);
    let _b = c.controller(1, "controller-b", &shipped);
    // Start-up: every agent lists and watches, the controllers elect and publish the plan.
    std::thread::sleep(Duration::from_secs(20));
    let start = c.api.audit().len();
    let w = window();
    std::thread::sleep(w);
    let audit = c.api.audit();
    let mut by: BTreeMap<(&str, String, String), usize> = BTreeMap::new();
    for e in &audit[start..] {
        let who = if e.user.ends_with(":coredns-healthcheck") {
            "agents"
        } else if e.user.ends_with(":coredns-healthcheck-controller") {
            "controller"
        } else {
            "other"
        };
        *by.entry((who, e.verb.clone(), e.resource.clone()))
            .or_default() += 1;
    }
    eprintln!("API requests in {w:?} after start-up, 20 agents and 2 controller replicas:");
    for ((who, verb, res), n) in &by {
        eprintln!("  {who:<10} {verb:<6} {res:<16} {n}");
    }
    let count = |who: &str, verb: &str| -> usize {
        (by.iter())
            .filter(|((w, v, _), _)| *w == who && v == verb)
            .map(|(_, n)| n)
            .sum()
    };
    // Agents: no LIST, no Lease, nothing but watches renewed.
    for ((who, verb, res), n) in &by {
        if *who == "agents" {
            assert_eq!(verb, "watch", "agents sent {n} {verb} {res}");
        }
        assert!(
            !(*who == "agents" && res == "leases"),
            "agents touched the Lease"
        );
    }
    let renewals = (w.as_secs_f64() / WATCH_RENEWAL.as_secs_f64()).ceil() as usize;
    assert!(
        count("agents", "watch") <= nodes * AGENT_WATCHES * renewals,
        "{by:?}"
    );
    // The controller: no LIST after start-up; its Lease every 2 s per replica (a read, and the
    // holder's renewal); its watches.
    assert_eq!(count("controller", "list"), 0, "{by:?}");
    let lease = by
        .get(&("controller", "get".into(), "leases".into()))
        .copied()
        .unwrap_or(0);
    let per_replica = w.as_secs_f64() / 2.0;
    assert!(
        lease as f64 <= 2.0 * per_replica * 1.2 && lease as f64 >= per_replica,
        "{lease} Lease reads in {w:?}: {by:?}"
    );
}
