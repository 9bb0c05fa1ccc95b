//! dnsprobe against a hostile server (hc_testkit::HostileServer, replies written byte by byte),
//! against sockets that cannot be had, and (root) against ICMP errors from a router in a network
//! namespace of the test's own. What counts as an answer, said by what the probe reports.
#![allow(clippy::unwrap_used)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dnsprobe::hickory_proto::rr::RecordType;
use dnsprobe::{
    AnswerExpectation, FailureKind, HealthBook, HealthState, ProbeReport, ProbeSpec, Prober,
    Thresholds, Transport, TransportMode,
};
use hc_testkit::{Behaviour, Hostile, HostileServer, ScriptedServer, loopback};

const API: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

/// Long enough that "at once" and "after the deadline" cannot be confused.
const LONG: Duration = Duration::from_secs(8);

fn spec(target: SocketAddr, transport: TransportMode, timeout: Duration) -> ProbeSpec {
    ProbeSpec::new(target)
        .with_transport(transport)
        .with_timeout(timeout)
}

async fn one(s: &ProbeSpec) -> (ProbeReport, Duration) {
    let started = Instant::now();
    let mut r = dnsprobe::probe(s).await;
    assert_eq!(r.len(), 1);
    (r.remove(0), started.elapsed())
}

fn at_once(took: Duration) -> bool {
    took < LONG / 4
}

#[tokio::test]
async fn records_a_strict_decoder_refuses_are_still_an_answer() {
    for hostile in [Hostile::LongCaaTag(API), Hostile::NonUtf8Alpn(API)] {
        let server = HostileServer::start(loopback(), hostile.clone());
        for t in [TransportMode::Udp, TransportMode::Tcp] {
            let s = spec(server.addr(), t, LONG)
                .with_answer(AnswerExpectation::Equals(vec![IpAddr::V4(API)]));
            let (r, took) = one(&s).await;
            assert!(r.healthy(), "{hostile:?} {t:?}: {r}");
            assert!(at_once(took), "{hostile:?} {t:?}: {took:?}");
            assert_eq!(r.ignored, 0);
            assert_eq!(r.answers.len(), 2, "{:?}", r.answers);
            // Kept raw, shown as dig shows data it cannot decode (RFC 3597).
            assert!(r.answers[0].starts_with("\\# "), "{:?}", r.answers);
            assert_eq!(r.answers[1], "10.96.0.1");
        }
    }
}

#[tokio::test]
async fn a_compression_loop_in_the_reply_is_malformed_at_once() {
    let server = HostileServer::start(loopback(), Hostile::CompressionLoop);
    for t in [TransportMode::Udp, TransportMode::Tcp] {
        let (r, took) = one(&spec(server.addr(), t, LONG)).await;
        assert_eq!(r.failure_kind(), Some(FailureKind::Malformed), "{t:?}: {r}");
        assert!(at_once(took), "{t:?}: {took:?}");
        assert!(r.to_string().contains("answer section"), "{r}");
    }
}

#[tokio::test]
async fn an_address_of_another_owner_is_no_answer() {
    let server = HostileServer::start(loopback(), Hostile::WrongOwner(API));
    for t in [TransportMode::Udp, TransportMode::Tcp] {
        // `--expect 10.96.0.1 --exact`: the address is there, but for evil.example.
        let s = spec(server.addr(), t, LONG)
            .with_answer(AnswerExpectation::Equals(vec![IpAddr::V4(API)]));
        let (r, _) = one(&s).await;
        assert_eq!(
            r.failure_kind(),
            Some(FailureKind::WrongAnswer),
            "{t:?}: {r}"
        );
        assert!(r.addresses.is_empty());
        assert!(
            r.records[0].starts_with("evil.example. "),
            "{:?}",
            r.records
        );
        // Without --expect: records, but no address for the name asked.
        let (r, _) = one(&spec(server.addr(), t, LONG)).await;
        assert_eq!(
            r.failure_kind(),
            Some(FailureKind::EmptyAnswer),
            "{t:?}: {r}"
        );
        assert!(r.to_string().contains("evil.example. A"), "{r}");
    }
}

#[tokio::test]
async fn a_cname_only_answer_gives_no_address() {
    for (hostile, to) in [
        (Hostile::DanglingCname, "gone.cluster.local."),
        (Hostile::CnameOutOfZone, "elsewhere.example."),
    ] {
        let server = HostileServer::start(loopback(), hostile);
        for t in [TransportMode::Udp, TransportMode::Tcp] {
            let (r, _) = one(&spec(server.addr(), t, LONG)).await;
            assert_eq!(
                r.failure_kind(),
                Some(FailureKind::EmptyAnswer),
                "{t:?}: {r}"
            );
            assert_eq!(
                r.failure.as_ref().unwrap().to_string(),
                format!(
                    "no address for the name asked: kubernetes.default.svc.cluster.local. is an alias (CNAME) of {to}, and the answer holds no A record for it"
                )
            );
            // Any answer is any answer.
            let any = spec(server.addr(), t, LONG).with_answer(AnswerExpectation::Any);
            assert!(one(&any).await.0.healthy());
        }
    }
}

#[tokio::test]
async fn only_replies_to_another_question_are_mismatched_not_a_timeout() {
    let server = HostileServer::start(loopback(), Hostile::OtherQuestion);
    for t in [TransportMode::Udp, TransportMode::Tcp] {
        let s = spec(server.addr(), t, Duration::from_millis(300));
        let (r, _) = one(&s).await;
        assert_eq!(
            r.failure_kind(),
            Some(FailureKind::Mismatched),
            "{t:?}: {r}"
        );
        let text = r.failure.as_ref().unwrap().to_string();
        assert!(
            text.contains("to evil.example. A"),
            "names the question: {text}"
        );
        assert!(text.contains("a reply with ID "), "names the ID: {text}");
        assert_eq!(r.ignored, 1);
        assert_eq!(r.result_label(), "mismatched");
    }
}

#[tokio::test]
async fn an_endless_stream_of_mismatched_frames_is_given_up_at_once() {
    let server = HostileServer::start(loopback(), Hostile::EndlessFrames);
    let (r, took) = one(&spec(server.addr(), TransportMode::Tcp, LONG)).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Mismatched), "{r}");
    assert!(at_once(took), "{took:?}");
    assert_eq!(r.ignored, 8);
    assert!(
        r.to_string().contains("8 messages on one TCP connection"),
        "{r}"
    );
    // Over UDP a burst of them is dropped one by one: the probe waits for its deadline (a
    // spoofer must not end it) and then says what came.
    let (r, _) = one(&spec(
        server.addr(),
        TransportMode::Udp,
        Duration::from_millis(300),
    ))
    .await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Mismatched), "{r}");
    assert!(r.ignored > 8, "{}", r.ignored);
}

#[tokio::test]
async fn a_udp_reply_larger_than_the_buffer_is_said_at_once() {
    let server = HostileServer::start(loopback(), Hostile::Oversize(6000));
    let s = spec(server.addr(), TransportMode::Udp, LONG).with_answer(AnswerExpectation::Any);
    let (r, took) = one(&s).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Malformed), "{r}");
    assert!(at_once(took), "{took:?}");
    assert!(
        r.to_string().contains("reply larger than 4096 bytes"),
        "{r}"
    );
    // Over TCP it fits.
    let s = spec(server.addr(), TransportMode::Tcp, LONG).with_answer(AnswerExpectation::Any);
    let (r, _) = one(&s).await;
    assert!(r.healthy(), "{r}");
}

#[tokio::test]
async fn truncation_notes_say_what_happened() {
    // TC over TCP too: no "fallback is off", and TCP did answer.
    let server = HostileServer::start(loopback(), Hostile::TruncatedEverywhere(API));
    let (r, _) = one(&spec(server.addr(), TransportMode::Udp, LONG)).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Truncated), "{r}");
    let text = r.to_string();
    assert!(text.contains("reply truncated over TCP"), "{text}");
    assert!(!text.contains("fallback is off"), "{text}");
    assert!(text.ends_with("[truncated, answered over tcp]"), "{text}");
    let (r, _) = one(&spec(server.addr(), TransportMode::Tcp, LONG)).await;
    assert!(r.to_string().contains("reply truncated over TCP"), "{r}");
    assert!(!r.truncated, "no truncated UDP reply");

    // The TCP retry times out: never "answered over tcp".
    let server = ScriptedServer::start(
        loopback(),
        &[IpAddr::V4(API)],
        Behaviour::Truncate,
        Behaviour::Silent,
    );
    let (r, _) = one(&spec(
        server.addr(),
        TransportMode::Udp,
        Duration::from_millis(200),
    ))
    .await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Timeout), "{r}");
    assert_eq!(r.transport_used, Transport::Udp);
    let text = r.to_string();
    assert!(text.ends_with("[truncated, no answer over tcp]"), "{text}");
}

#[tokio::test]
async fn no_socket_is_not_probed_and_leaves_the_target_s_state_alone() {
    let target: SocketAddr = "127.0.0.1:53".parse().unwrap();
    // EMFILE: the process is out of file descriptors. Nothing is sent anywhere.
    let prober =
        Prober::with_sockets(|_: Transport, _: SocketAddr| Err(io::Error::from_raw_os_error(24)));
    let s = ProbeSpec::new(target)
        .with_transport(TransportMode::Both)
        .with_attempts(3);
    let mut book = HealthBook::new(Thresholds::new(1, 1));
    book.track([(target, Transport::Udp), (target, Transport::Tcp)]);
    for r in prober.probe(&s).await {
        assert_eq!(r.failure_kind(), Some(FailureKind::NotProbed), "{r}");
        assert_eq!(
            r.attempts, 1,
            "not retried: the next socket fails the same way"
        );
        assert!(!FailureKind::NotProbed.is_transport());
        assert!(!FailureKind::NotProbed.counts_against_target());
        let text = r.failure.as_ref().unwrap().to_string();
        assert_eq!(text.matches("os error 24").count(), 1, "{text}");
        assert_eq!(
            book.record(&r),
            None,
            "a threshold of 1 would have made it down"
        );
        let e = book.get(target, r.transport).unwrap();
        assert_eq!(e.health.state, HealthState::Unknown);
        assert_eq!(e.health.consecutive_failures, 0);
        assert_eq!(e.last.as_ref(), Some(&r));
    }
}

#[tokio::test]
async fn zone_transfers_are_not_asked_over_udp() {
    let server = ScriptedServer::start(
        loopback(),
        &[IpAddr::V4(API)],
        Behaviour::Answer,
        Behaviour::Answer,
    );
    let s = spec(server.addr(), TransportMode::Both, LONG)
        .with_query_type(RecordType::AXFR)
        .with_answer(AnswerExpectation::Any);
    let r = dnsprobe::probe(&s).await;
    assert_eq!(
        r[0].failure_kind(),
        Some(FailureKind::NotProbed),
        "{}",
        r[0]
    );
    assert!(
        r[0].to_string().contains("AXFR is a zone transfer"),
        "{}",
        r[0]
    );
    assert_eq!(r[0].attempts, 0);
    assert!(r[1].healthy(), "over TCP it is asked: {}", r[1]);
    assert_eq!(server.queries(), 1);
}

#[tokio::test]
async fn huge_durations_do_not_overflow() {
    let server = ScriptedServer::start(
        loopback(),
        &[IpAddr::V4(API)],
        Behaviour::Answer,
        Behaviour::Answer,
    );
    let mut s = spec(server.addr(), TransportMode::Both, Duration::MAX);
    s.attempts = NonZeroU32::MAX;
    let prober = Prober::new();
    let deadline = prober.deadline_for(std::slice::from_ref(&s));
    assert_eq!(deadline, Duration::MAX);
    for r in prober.probe_many(std::slice::from_ref(&s), deadline).await {
        assert!(r.healthy(), "{r}");
    }
    for r in dnsprobe::probe_many(std::slice::from_ref(&s), Duration::MAX).await {
        assert!(r.healthy(), "{r}");
    }
    let (client, _server) = tokio::io::duplex(64);
    s.timeout = Duration::from_millis(1);
    assert_eq!(
        dnsprobe::probe_over_stream(&s, client).await.failure_kind(),
        Some(FailureKind::Timeout)
    );
}

/// Root only: a client namespace whose default route goes through a router namespace. The router
/// answers with ICMP errors: host unreachable (an `unreachable` route), administratively
/// prohibited (a `prohibit` route), net unreachable (no route), protocol unreachable (an
/// nftables reject). The client's own `unreachable` and `prohibit` routes fail at once too. Every
/// one is `unreachable`, long before the deadline, over UDP as over TCP.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn root_icmp_errors_are_unreachable_at_once() {
    use hc_testkit::{Netns, ip, unique_name};
    use std::process::Command;

    let client = Netns::new("hcc");
    let router = Netns::new("hcr");
    let (a, b) = (unique_name("hva"), unique_name("hvb"));
    ip(&[
        "-n",
        client.name(),
        "link",
        "add",
        &a,
        "type",
        "veth",
        "peer",
        "name",
        &b,
        "netns",
        router.name(),
    ]);
    ip(&[
        "-n",
        client.name(),
        "addr",
        "add",
        "192.0.2.1/30",
        "dev",
        &a,
    ]);
    ip(&[
        "-n",
        router.name(),
        "addr",
        "add",
        "192.0.2.2/30",
        "dev",
        &b,
    ]);
    ip(&["-n", client.name(), "link", "set", &a, "up"]);
    ip(&["-n", router.name(), "link", "set", &b, "up"]);
    ip(&[
        "-n",
        client.name(),
        "route",
        "add",
        "default",
        "via",
        "192.0.2.2",
    ]);
    let sysctl = |ns: &Netns, kv: &str| {
        let out = ns
            .command("sysctl")
            .args(["-q", "-w", kv])
            .output()
            .unwrap();
        assert!(out.status.success(), "sysctl {kv}: {out:?}");
    };
    sysctl(&router, "net.ipv4.ip_forward=1");
    // No rate limit on the router's ICMP errors: every probe gets its answer.
    sysctl(&router, "net.ipv4.icmp_ratelimit=0");
    let r = router.name();
    ip(&["-n", r, "route", "add", "unreachable", "198.51.100.1/32"]);
    ip(&["-n", r, "route", "add", "prohibit", "198.51.100.2/32"]);
    // 198.51.100.3: no route at all on the router.
    ip(&["-n", r, "route", "add", "198.51.100.4/32", "dev", &b]);
    let nft = "add table ip hc; add chain ip hc f { type filter hook forward priority 0 ; }; \
               add rule ip hc f ip daddr 198.51.100.4 reject with icmp type prot-unreachable";
    let out = Command::new("ip")
        .args(["netns", "exec", r, "nft", nft])
        .output()
        .unwrap();
    assert!(out.status.success(), "nft: {out:?} (install nftables)");
    let c = client.name();
    ip(&["-n", c, "route", "add", "unreachable", "203.0.113.1/32"]);
    ip(&["-n", c, "route", "add", "prohibit", "203.0.113.2/32"]);

    // (target, what the UDP failure says, what the TCP failure says)
    let cases = [
        (
            "198.51.100.1",
            "host unreachable (ICMP from 192.0.2.2)",
            "No route to host",
        ),
        (
            "198.51.100.2",
            "prohibited (administratively) (ICMP from 192.0.2.2)",
            "No route to host",
        ),
        (
            "198.51.100.3",
            "network unreachable (ICMP from 192.0.2.2)",
            "Network is unreachable",
        ),
        (
            "198.51.100.4",
            "protocol unreachable (ICMP from 192.0.2.2)",
            "protocol unreachable",
        ),
        ("203.0.113.1", "No route to host", "No route to host"),
        ("203.0.113.2", "prohibited", "prohibited"),
    ];
    for (addr, udp_says, tcp_says) in cases {
        let target = SocketAddr::new(addr.parse().unwrap(), 53);
        for (t, says) in [(Transport::Udp, udp_says), (Transport::Tcp, tcp_says)] {
            // The socket is made in the client namespace; the probe runs here.
            let socket = client.run(|| dnsprobe::new_socket(t, target).unwrap());
            let prober = Prober::with_sockets(dnsprobe::Preopened::new([socket]).unwrap());
            let s = ProbeSpec::new(target).with_timeout(LONG);
            let started = Instant::now();
            let r = prober.probe_transport(&s, t, None).await;
            let took = started.elapsed();
            assert_eq!(
                r.failure_kind(),
                Some(FailureKind::Unreachable),
                "{addr} {t}: {r}"
            );
            assert!(at_once(took), "{addr} {t}: after {took:?}");
            let text = r.failure.as_ref().unwrap().to_string();
            assert!(text.contains(says), "{addr} {t}: {text}");
            assert_eq!(text.matches("os error").count(), 1, "{text}");
        }
    }
}
