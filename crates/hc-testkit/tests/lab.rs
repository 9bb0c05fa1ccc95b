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

#[test]
fn root_a_cluster_of_nodes_reaches_every_dns_pod_and_faults_stay_where_injected() {
    use hc_testkit::ClusterLab;
    let lab = ClusterLab::new(3, 2, 1);
    let api = LAB_API_IP.to_string();
    let servers: Vec<String> = std::iter::once("10.96.0.10".to_owned())
        .chain(lab.dns.iter().map(|d| d.pod.ip.to_string()))
        .collect();
    for node in &lab.nodes {
        for s in &servers {
            for tcp in [false, true] {
                assert_eq!(
                    dig_in(&node.ns, s, tcp),
                    api,
                    "{} -> {s} tcp={tcp}",
                    node.name
                );
                assert_eq!(
                    dig_in(&node.pods[0].ns, s, tcp),
                    api,
                    "pod on {} -> {s} tcp={tcp}",
                    node.name
                );
            }
        }
    }
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
