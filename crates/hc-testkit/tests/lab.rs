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
fn pods_resolve_through_the_vip_and_each_dns_pod() {
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
fn names_are_removed_on_drop() {
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
