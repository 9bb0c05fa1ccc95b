//! The lab itself works: a pod resolves through the Service VIP and each DNS pod, over UDP and
//! TCP, with Debian's `dig` as the client (root only; CI runs as root).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use hc_testkit::{LAB_API_IP, Lab};

fn dig(lab: &Lab, pod: usize, server: &str, tcp: bool) -> String {
    let mut c = lab.pods[pod].ns.command("dig");
    c.args([
        "+short",
        "+tries=1",
        "+time=2",
        &format!("@{server}"),
        "kubernetes.default.svc.cluster.local",
        "A",
    ]);
    if tcp {
        c.arg("+tcp");
    }
    let out = c.output().expect("dig (dnsutils) is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn root_pods_resolve_through_the_vip_and_each_dns_pod() {
    let lab = Lab::new(2, 2);
    for pod in 0..2 {
        for server in lab.targets() {
            for tcp in [false, true] {
                // Twice: the VIP alternates between the DNS pods.
                for _ in 0..2 {
                    assert_eq!(
                        dig(&lab, pod, &server.ip().to_string(), tcp),
                        LAB_API_IP.to_string(),
                        "pod {pod} -> {server} tcp={tcp}"
                    );
                }
            }
        }
    }
    // From the node itself, through the output DNAT.
    let out = lab
        .node
        .command("dig")
        .args([
            "+short",
            "+tries=1",
            "+time=2",
            "@10.96.0.10",
            "kubernetes.default.svc.cluster.local",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        LAB_API_IP.to_string()
    );
}

#[test]
fn root_names_are_removed_on_drop() {
    let names: Vec<String> = {
        let lab = Lab::new(1, 1);
        vec![
            lab.node.name().to_owned(),
            lab.pods[0].ns.name().to_owned(),
            lab.dns[0].pod.ns.name().to_owned(),
        ]
    };
    let list = String::from_utf8(
        std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for n in names {
        assert!(!list.contains(&n), "{n} left behind");
        assert!(!std::path::Path::new(&format!("/etc/netns/{n}")).exists());
    }
}

fn dig_in(ns: &hc_testkit::Netns, server: &str, tcp: bool) -> String {
    let mut c = ns.command("dig");
    c.args([
        "+short",
        "+tries=1",
        "+time=1",
        &format!("@{server}"),
        "kubernetes.default.svc.cluster.local",
        "A",
    ]);
    if tcp {
        c.arg("+tcp");
    }
    let out = c.output().expect("dig (dnsutils) is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every node of a cluster lab, and its first pod, gets the API's address from each of
/// `servers`, over UDP and TCP.
fn every_node_resolves(lab: &hc_testkit::ClusterLab, servers: &[String]) {
    let api = LAB_API_IP.to_string();
    for node in &lab.nodes {
        for s in servers {
            for tcp in [false, true] {
                let from_node = dig_in(&node.ns, s, tcp);
                assert_eq!(from_node, api, "{} -> {s} tcp={tcp}", node.name);
                let from_pod = dig_in(&node.pods[0].ns, s, tcp);
                assert_eq!(from_pod, api, "pod on {} -> {s} tcp={tcp}", node.name);
            }
        }
    }
}

#[test]
fn root_a_cluster_of_nodes_reaches_every_dns_pod_and_faults_stay_where_injected() {
    use hc_testkit::ClusterLab;
    let lab = ClusterLab::new(3, 2, 1);
    let api = LAB_API_IP.to_string();
    let servers: Vec<String> = std::iter::once("10.96.0.10".to_owned())
        .chain(lab.dns.iter().map(|d| d.pod.ip.to_string()))
        .collect();
    every_node_resolves(&lab, &servers);
    // A DNS pod on another node, from a pod: routed across the underlay.
    assert_ne!(lab.dns[1].node, 0);
    // Node 2 cut off: it reaches nothing, the others everything.
    lab.break_node(2);
    assert_ne!(dig_in(&lab.nodes[2].ns, &servers[1], false), api);
    assert_ne!(dig_in(&lab.nodes[2].pods[0].ns, &servers[0], true), api);
    assert_eq!(dig_in(&lab.nodes[1].ns, &servers[1], false), api);
    // Node 1's Service NAT broken: the VIP fails there, the pods answer directly.
    lab.break_service(1);
    assert_ne!(dig_in(&lab.nodes[1].ns, "10.96.0.10", false), api);
    assert_ne!(dig_in(&lab.nodes[1].pods[0].ns, "10.96.0.10", true), api);
    assert_eq!(dig_in(&lab.nodes[1].ns, &servers[2], false), api);
    assert_eq!(dig_in(&lab.nodes[0].ns, "10.96.0.10", false), api);
}

fn dig_name(ns: &hc_testkit::Netns, server: &str, name: &str) -> (String, String) {
    let out = ns
        .command("dig")
        .args(["+tries=1", "+time=1", &format!("@{server}"), name, "A"])
        .output()
        .expect("dig (dnsutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = (text.lines())
        .find_map(|l| l.split("status: ").nth(1))
        .map_or("no reply", |s| s.split(',').next().unwrap_or(""))
        .to_owned();
    let answer = (text.lines())
        .find(|l| l.starts_with(name) && l.split_whitespace().nth(3) == Some("A"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("")
        .to_owned();
    (status, answer)
}

#[test]
fn root_a_dual_stack_lab_resolves_over_ipv6_through_the_vip_and_each_dns_pod() {
    use hc_testkit::{LAB_DNS_VIP6, LabOptions, lab_v6};
    let lab = Lab::with(2, 1, LabOptions::default().ipv6());
    let api = LAB_API_IP.to_string();
    assert_eq!(lab.pods[0].ip6, Some(lab_v6(lab.pods[0].ip)));
    let t6 = lab.targets6();
    assert_eq!(t6.len(), 3);
    assert_eq!(t6[0].ip(), LAB_DNS_VIP6);
    for server in &t6 {
        for tcp in [false, true] {
            for _ in 0..2 {
                assert_eq!(
                    dig_in(&lab.pods[0].ns, &server.ip().to_string(), tcp),
                    api,
                    "{server} tcp={tcp}"
                );
            }
        }
    }
    // From the node, and IPv4 still works beside it.
    assert_eq!(dig_in(&lab.node, &LAB_DNS_VIP6.to_string(), false), api);
    assert_eq!(dig_in(&lab.pods[0].ns, "10.96.0.10", false), api);
}

#[test]
fn root_a_node_local_cache_answers_from_the_node_and_its_faults_are_its_own() {
    use hc_testkit::{LAB_NODELOCAL_IP, LabOptions};
    let mut lab = Lab::with(1, 1, LabOptions::default().nodelocal());
    let cache = LAB_NODELOCAL_IP.to_string();
    let name = "kubernetes.default.svc.cluster.local.";
    let api = LAB_API_IP.to_string();
    // A pod reaches the cache on the node; a miss goes upstream and comes back NXDOMAIN.
    assert_eq!(
        dig_name(&lab.pods[0].ns, &cache, name),
        ("NOERROR".into(), api.clone())
    );
    assert_eq!(
        dig_name(&lab.pods[0].ns, &cache, "nope.default.svc.cluster.local.").0,
        "NXDOMAIN"
    );
    // The upstream cut: what the cache holds still answers, a miss does not.
    lab.break_nodelocal_upstream();
    assert_eq!(
        dig_name(&lab.pods[0].ns, &cache, name),
        ("NOERROR".into(), api.clone())
    );
    assert_ne!(
        dig_name(&lab.pods[0].ns, &cache, "other.default.svc.cluster.local.").0,
        "NXDOMAIN"
    );
    // CoreDNS itself still answers directly.
    assert_eq!(
        dig_in(&lab.pods[0].ns, &lab.dns[0].pod.ip.to_string(), false),
        api
    );
    // The cache killed: its address refuses; CoreDNS still answers.
    lab.kill_nodelocal();
    assert_eq!(dig_name(&lab.pods[0].ns, &cache, name).0, "no reply");
    assert_eq!(dig_in(&lab.pods[0].ns, "10.96.0.10", false), api);
}

#[test]
fn root_a_dual_stack_cluster_routes_ipv6_between_nodes_and_through_the_vip() {
    use hc_testkit::{ClusterLab, LabOptions, underlay_v6};
    let lab = ClusterLab::with(2, 2, 1, LabOptions::default().ipv6());
    let vip6 = lab.vip6().unwrap().ip().to_string();
    assert_eq!(lab.nodes[1].ip6, Some(underlay_v6(lab.nodes[1].ip)));
    let servers: Vec<String> = std::iter::once(vip6)
        .chain(lab.dns.iter().map(|d| d.pod.ip6.unwrap().to_string()))
        .collect();
    every_node_resolves(&lab, &servers);
}
