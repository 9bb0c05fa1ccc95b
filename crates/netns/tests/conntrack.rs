//! The conntrack statistics read for real from a lab node's namespace (entered on a thread of
//! its own): datagrams with a bad UDP checksum sent from a pod make the node's `invalid` counter
//! grow by exactly their number. Insert failures and a full table cannot be provoked on demand
//! (the race needs two CPUs to create the same entry at once; `nf_conntrack_max` is read-only
//! outside the initial namespace): their arithmetic is tested on tables in `src/conntrack.rs`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::path::Path;

use dnsprobe::socket2::{Domain, Protocol, SockAddr, Socket, Type};
use hc_testkit::Lab;

/// A UDP datagram to port 53 whose checksum is wrong.
fn bad_checksum_datagrams(n: usize) {
    let mut pkt = vec![0u8; 8 + 12];
    pkt[0..2].copy_from_slice(&40000u16.to_be_bytes());
    pkt[2..4].copy_from_slice(&53u16.to_be_bytes());
    pkt[4..6].copy_from_slice(&20u16.to_be_bytes());
    pkt[6..8].copy_from_slice(&0xdeadu16.to_be_bytes());
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).unwrap();
    let to = SockAddr::from("10.96.0.10:53".parse::<std::net::SocketAddr>().unwrap());
    for _ in 0..n {
        s.send_to(&pkt, &to).unwrap();
    }
}

#[test]
fn root_invalid_packets_grow_the_node_counter_read_from_its_namespace() {
    let lab = Lab::new(1, 1);
    let node = lab.node.path();
    let node = Path::new(&node);
    let before = hc_netns::read_stats(Some(node))
        .unwrap()
        .expect("the lab node tracks connections");
    lab.pods[0].ns.run(|| bad_checksum_datagrams(3));
    let mut after = before.clone();
    // The datagrams cross a veth and a bridge: give the kernel a moment, bounded.
    for _ in 0..50 {
        after = hc_netns::read_stats(Some(node)).unwrap().unwrap();
        if after.growth_since(&before).of("invalid") >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let g = after.growth_since(&before);
    assert_eq!(g.of("invalid"), 3, "{before:?} -> {after:?}");
    assert_eq!(g.of("insert_failed"), 0);
    // A pod's namespace has statistics of its own, untouched by the node's.
    let pod = lab.pods[0].ns.path();
    let own = hc_netns::read_stats(Some(Path::new(&pod)))
        .unwrap()
        .unwrap();
    assert_eq!(own.get("invalid"), Some(0), "{own:?}");
}
