//! The server answers like CoreDNS over UDP and TCP, and its fault switch breaks UDP only.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dnsprobe::{AnswerExpectation, ProbeSpec, TransportMode};

#[tokio::test(flavor = "current_thread")]
async fn answers_then_drops_udp_only() {
    let (udp, tcp) = hc_demo::DemoServer::bind("127.0.0.1".parse().unwrap()).unwrap();
    let server = hc_demo::DemoServer::start(udp, tcp).await.unwrap();
    let spec = ProbeSpec::new(server.addr)
        .with_transport(TransportMode::Both)
        .with_timeout(Duration::from_millis(300))
        .with_answer(AnswerExpectation::Contains(vec![hc_demo::API_IP.into()]));
    let kinds =
        |r: &[dnsprobe::ProbeReport]| r.iter().map(|r| r.result_label()).collect::<Vec<_>>();
    assert_eq!(kinds(&dnsprobe::probe(&spec).await), ["ok", "ok"]);
    server.set_drop_udp(true);
    assert_eq!(kinds(&dnsprobe::probe(&spec).await), ["timeout", "ok"]);
    server.set_drop_udp(false);
    assert_eq!(kinds(&dnsprobe::probe(&spec).await), ["ok", "ok"]);
}
