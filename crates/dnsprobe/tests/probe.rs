//! dnsprobe against real servers on loopback: dnsmasq (Debian's, not ours) for real answers,
//! and a scripted hickory-proto server for misbehaviour a real server will not produce on demand.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dnsprobe::hickory_proto::op::ResponseCode;
use dnsprobe::{
    AnswerExpectation, FailureKind, Preopened, ProbeReport, ProbeSpec, Prober, Transport,
    TransportMode, new_socket, parse_name,
};
use hc_testkit::{Behaviour, Dnsmasq, ScriptedServer, closed_port, loopback};

const API: &str = "10.96.0.1";
const NAME: &str = "kubernetes.default.svc.cluster.local";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dnsmasq() -> Dnsmasq {
    Dnsmasq::start(loopback(), &[(NAME, ip(API))], "cluster.local")
}

fn spec(target: SocketAddr) -> ProbeSpec {
    let mut s = ProbeSpec::new(target);
    s.timeout = Duration::from_millis(400);
    s
}

async fn one(s: &ProbeSpec) -> ProbeReport {
    let mut r = dnsprobe::probe(s).await;
    assert_eq!(r.len(), 1);
    r.remove(0)
}

#[tokio::test]
async fn healthy_answer_over_udp_and_tcp_from_dnsmasq() {
    let server = dnsmasq();
    let mut s = spec(server.addr());
    s.transport = TransportMode::Both;
    s.expect.answer = AnswerExpectation::Equals(vec![ip(API)]);
    let reports = dnsprobe::probe(&s).await;
    assert_eq!(reports.len(), 2);
    for (r, t) in reports.iter().zip([Transport::Udp, Transport::Tcp]) {
        assert!(r.healthy(), "{t}: {:?}", r.failure);
        assert_eq!(r.transport, t);
        assert_eq!(r.transport_used, t);
        assert_eq!(r.rcode, Some(ResponseCode::NoError));
        assert_eq!(r.addresses, vec![ip(API)]);
        assert_eq!(r.answers, vec![API.to_owned()]);
        assert_eq!(r.records.len(), 1);
        assert!(r.records[0].contains("10.96.0.1"), "{:?}", r.records);
        assert!(r.rtt.is_some());
        assert_eq!(r.attempts, 1);
        assert_eq!(r.responder, Some(server.addr()));
        assert_eq!(r.result_label(), "ok");
        assert!(!r.truncated);
    }
}

#[tokio::test]
async fn wrong_answer_names_both_sides() {
    let server = Dnsmasq::start(loopback(), &[(NAME, ip("10.96.0.99"))], "cluster.local");
    let mut s = spec(server.addr());
    s.expect.answer = AnswerExpectation::Contains(vec![ip(API)]);
    let r = one(&s).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::WrongAnswer));
    assert_eq!(
        r.failure.unwrap().to_string(),
        "answered 10.96.0.99, expected 10.96.0.1"
    );
    assert_eq!(r.addresses, vec![ip("10.96.0.99")]);
    assert!(
        r.rtt.is_some(),
        "an answer that is wrong still has a round-trip time"
    );
}

#[tokio::test]
async fn nxdomain_from_dnsmasq_fails_unless_accepted() {
    let server = dnsmasq();
    let mut s = spec(server.addr());
    s.name = parse_name("nope.default.svc.cluster.local").unwrap();
    let r = one(&s).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Rcode));
    assert_eq!(r.rcode, Some(ResponseCode::NXDomain));
    assert_eq!(r.failure.unwrap().to_string(), "NXDOMAIN");

    s.expect.rcodes = vec![ResponseCode::NXDomain];
    let r = one(&s).await;
    assert!(r.healthy(), "{:?}", r.failure);
}

#[tokio::test]
async fn servfail_is_an_answer_and_not_retried() {
    let server = ScriptedServer::start(
        loopback(),
        &[ip(API)],
        Behaviour::Rcode(ResponseCode::ServFail),
        Behaviour::Closed,
    );
    let mut s = spec(server.addr());
    s.attempts = NonZeroU32::new(3).unwrap();
    let r = one(&s).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Rcode));
    assert_eq!(r.result_label(), "rcode");
    assert_eq!(r.failure.unwrap().to_string(), "SERVFAIL");
    assert_eq!(r.attempts, 1);
    assert_eq!(server.queries(), 1);
}

#[tokio::test]
async fn silence_times_out_after_every_attempt() {
    let server =
        ScriptedServer::start(loopback(), &[ip(API)], Behaviour::Silent, Behaviour::Silent);
    let mut s = spec(server.addr());
    s.timeout = Duration::from_millis(150);
    s.attempts = NonZeroU32::new(2).unwrap();
    s.transport = TransportMode::Both;
    for r in dnsprobe::probe(&s).await {
        assert_eq!(
            r.failure_kind(),
            Some(FailureKind::Timeout),
            "{}",
            r.transport
        );
        assert_eq!(r.attempts, 2);
        assert_eq!(r.rtt, None);
        assert_eq!(
            r.failure.unwrap().to_string(),
            "timed out after 2 attempts (150ms each)"
        );
    }
    assert_eq!(server.queries(), 4, "2 UDP + 2 TCP queries, each a new one");
}

#[tokio::test]
async fn closed_port_is_refused_on_both_transports() {
    let mut s = spec(closed_port(loopback()));
    s.transport = TransportMode::Both;
    s.attempts = NonZeroU32::new(4).unwrap(); // see killed_dnsmasq_is_refused
    s.timeout = Duration::from_millis(250);
    for r in dnsprobe::probe(&s).await {
        assert_eq!(
            r.failure_kind(),
            Some(FailureKind::Refused),
            "{}",
            r.transport
        );
        assert_eq!(r.failure.unwrap().to_string(), "connection refused");
    }
}

#[tokio::test]
async fn killed_dnsmasq_is_refused() {
    let mut server = dnsmasq();
    let s = spec(server.addr());
    assert!(one(&s).await.healthy());
    server.kill();
    // ICMP port unreachable is rate-limited by the kernel (icmp_msgs_per_sec, randomized burst):
    // a few attempts make the refusal visible however busy the machine is.
    let mut s = s;
    s.attempts = NonZeroU32::new(4).unwrap();
    s.timeout = Duration::from_millis(250);
    let r = one(&s).await;
    assert_eq!(
        r.failure_kind(),
        Some(FailureKind::Refused),
        "{:?}",
        r.failure
    );
}

#[tokio::test]
async fn udp_dead_while_tcp_answers_is_reported_per_transport() {
    let server =
        ScriptedServer::start(loopback(), &[ip(API)], Behaviour::Silent, Behaviour::Answer);
    let mut s = spec(server.addr());
    s.transport = TransportMode::Both;
    let r = dnsprobe::probe(&s).await;
    assert_eq!(r[0].transport, Transport::Udp);
    assert_eq!(r[0].failure_kind(), Some(FailureKind::Timeout));
    assert_eq!(r[1].transport, Transport::Tcp);
    assert!(r[1].healthy(), "{:?}", r[1].failure);
    assert_eq!(r[1].addresses, vec![ip(API)]);
}

#[tokio::test]
async fn truncated_udp_reply_from_dnsmasq_is_retried_over_tcp() {
    // 120 A records do not fit in 1232 bytes: dnsmasq truncates over UDP, answers in full over TCP.
    let many: Vec<String> = (1..=120).map(|i| format!("10.97.0.{i}")).collect();
    let records: Vec<(&str, IpAddr)> = many.iter().map(|a| ("big.cluster.local", ip(a))).collect();
    let server = Dnsmasq::start(loopback(), &records, "cluster.local");
    let mut s = spec(server.addr());
    s.name = parse_name("big.cluster.local").unwrap();
    let r = one(&s).await;
    assert!(r.healthy(), "{:?}", r.failure);
    assert!(r.truncated);
    assert_eq!(r.transport, Transport::Udp);
    assert_eq!(r.transport_used, Transport::Tcp);
    assert_eq!(r.addresses.len(), 120);

    s.tcp_fallback = false;
    let r = one(&s).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Truncated));
    assert!(r.truncated);
    assert_eq!(r.transport_used, Transport::Udp);
}

#[tokio::test]
async fn truncated_then_tcp_from_scripted_server() {
    let server = ScriptedServer::start(
        loopback(),
        &[ip(API)],
        Behaviour::Truncate,
        Behaviour::Answer,
    );
    let r = one(&spec(server.addr())).await;
    assert!(r.healthy(), "{:?}", r.failure);
    assert!(r.truncated);
    assert_eq!(r.transport_used, Transport::Tcp);
    assert_eq!(server.queries(), 2);
}

async fn survives(behaviour: Behaviour, transport: TransportMode) -> ProbeReport {
    let server = ScriptedServer::start(loopback(), &[ip(API)], behaviour.clone(), behaviour);
    let mut s = spec(server.addr());
    s.transport = transport;
    s.expect.answer = AnswerExpectation::Equals(vec![ip(API)]);
    one(&s).await
}

#[tokio::test]
async fn spoofed_id_is_dropped_and_the_real_reply_accepted() {
    for t in [TransportMode::Udp, TransportMode::Tcp] {
        let r = survives(Behaviour::SpoofIdFirst, t).await;
        assert!(r.healthy(), "{t:?}: {:?}", r.failure);
        assert_eq!(r.ignored, 1, "{t:?}");
        assert_eq!(r.addresses, vec![ip(API)]);
    }
}

#[tokio::test]
async fn reply_to_another_question_is_dropped() {
    for t in [TransportMode::Udp, TransportMode::Tcp] {
        let r = survives(Behaviour::OtherQuestionFirst, t).await;
        assert!(r.healthy(), "{t:?}: {:?}", r.failure);
        assert_eq!(r.ignored, 1, "{t:?}");
    }
}

#[tokio::test]
async fn garbage_datagram_is_dropped() {
    let r = survives(Behaviour::GarbageFirst, TransportMode::Udp).await;
    assert!(r.healthy(), "{:?}", r.failure);
    assert_eq!(r.ignored, 1);
}

#[tokio::test]
async fn only_garbage_is_malformed() {
    let r = survives(Behaviour::GarbageOnly, TransportMode::Udp).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Malformed));
    // Over TCP a malformed message cannot be skipped: framing can no longer be trusted.
    let r = survives(Behaviour::GarbageOnly, TransportMode::Tcp).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Malformed));
}

#[tokio::test]
async fn reply_from_another_port_is_not_accepted() {
    let server = ScriptedServer::start(
        loopback(),
        &[ip(API)],
        Behaviour::FromOtherPort,
        Behaviour::Closed,
    );
    let mut s = spec(server.addr());
    s.timeout = Duration::from_millis(200);
    let r = one(&s).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Timeout));
    assert_eq!(server.queries(), 1);
}

#[tokio::test]
async fn ipv6_loopback() {
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let server = Dnsmasq::start(v6, &[(NAME, ip(API))], "cluster.local");
    let mut s = spec(server.addr());
    s.transport = TransportMode::Both;
    for r in dnsprobe::probe(&s).await {
        assert!(r.healthy(), "{}: {:?}", r.transport, r.failure);
        assert!(r.target.is_ipv6());
        assert_eq!(r.addresses, vec![ip(API)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_targets_at_once_in_input_order() {
    let a = dnsmasq();
    let b = ScriptedServer::start(
        loopback(),
        &[ip("10.96.0.2")],
        Behaviour::Answer,
        Behaviour::Answer,
    );
    let silent = ScriptedServer::start(loopback(), &[], Behaviour::Silent, Behaviour::Silent);
    let mut specs = Vec::new();
    for i in 0..300 {
        let target = match i % 3 {
            0 => a.addr(),
            1 => b.addr(),
            _ => silent.addr(),
        };
        let mut s = spec(target);
        // The per-attempt timeout is longer than the overall deadline: the deadline must win.
        s.timeout = Duration::from_secs(30);
        if i % 7 == 0 {
            s.transport = TransportMode::Both;
        }
        specs.push(s);
    }
    let started = std::time::Instant::now();
    let reports = dnsprobe::probe_many(&specs, Duration::from_millis(700)).await;
    // Not a performance assertion: a generous sanity bound that the overall deadline applies.
    assert!(started.elapsed() < Duration::from_secs(20));
    let expected: usize = specs.iter().map(|s| s.transport.transports().len()).sum();
    assert_eq!(reports.len(), expected);
    let mut it = reports.iter();
    for (i, s) in specs.iter().enumerate() {
        for t in s.transport.transports() {
            let r = it.next().unwrap();
            assert_eq!((r.target, r.transport), (s.target, *t), "order at spec {i}");
            if s.target == silent.addr() {
                assert_eq!(r.failure_kind(), Some(FailureKind::Timeout));
            } else {
                assert!(r.healthy(), "spec {i} {t}: {:?}", r.failure);
            }
        }
    }
}

#[tokio::test]
async fn sockets_from_the_caller() {
    let server = dnsmasq();
    let s = spec(server.addr());

    // A closure source: every query asks it for a socket.
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = opened.clone();
    let prober = Prober::with_sockets(move |t: Transport, target: SocketAddr| {
        counter.fetch_add(1, Ordering::SeqCst);
        new_socket(t, target)
    });
    let r = prober.probe(&s).await;
    assert!(r[0].healthy(), "{:?}", r[0].failure);
    assert_eq!(opened.load(Ordering::SeqCst), 1);

    // A pool of one pre-opened UDP socket serves one probe, then says it is empty: the next
    // probe is not probed (nothing was sent: it says nothing of the server).
    let pool = Preopened::new([new_socket(Transport::Udp, server.addr()).unwrap()]).unwrap();
    let prober = Prober::with_sockets(pool);
    assert!(prober.probe(&s).await[0].healthy());
    let r = prober.probe(&s).await.remove(0);
    assert_eq!(r.failure_kind(), Some(FailureKind::NotProbed));
    assert_eq!(r.attempts, 1);
    assert!(
        r.failure
            .unwrap()
            .to_string()
            .contains("no udp socket left"),
        "the error says why"
    );
}

/// Root only (CI runs as root): sockets opened inside a namespace probe from that namespace.
/// dnsmasq listens on 127.0.0.1 inside a fresh namespace; the same address in the test's own
/// namespace has nothing on that port. Probing with sockets from the namespace must succeed,
/// probing with our own must be refused: the socket, not the thread, decides.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn root_sockets_opened_in_another_network_namespace_probe_from_there() {
    use hc_testkit::Netns;
    let ns = Netns::new("hcp");
    let lo = ip("127.0.0.1");
    let port = hc_testkit::free_port(lo); // free here too, so our own probe is refused
    let server = Dnsmasq::start_in(&ns, lo, port, &[(NAME, ip(API))], "cluster.local");
    let target = server.addr();
    let sockets = ns.run(|| {
        vec![
            new_socket(Transport::Udp, target).unwrap(),
            new_socket(Transport::Tcp, target).unwrap(),
        ]
    });
    let mut s = spec(target);
    s.transport = TransportMode::Both;
    let from_ns = Prober::with_sockets(Preopened::new(sockets).unwrap())
        .probe(&s)
        .await;
    for r in &from_ns {
        assert!(
            r.healthy(),
            "{} from the namespace: {:?}",
            r.transport,
            r.failure
        );
    }
    s.attempts = NonZeroU32::new(3).unwrap();
    for r in dnsprobe::probe(&s).await {
        assert_eq!(
            r.failure_kind(),
            Some(FailureKind::Refused),
            "{} from here",
            r.transport
        );
    }
}

#[test]
fn deadline_for_covers_every_batch_of_the_in_flight_limit() {
    let mut s = spec("127.0.0.1:53".parse().unwrap());
    s.timeout = Duration::from_secs(1);
    let specs = vec![s.clone(); 300];
    // 300 probes, 128 at a time: 3 batches of (1 attempt + a TCP retry) x 1 s, + 0.5 s.
    assert_eq!(
        Prober::new().deadline_for(&specs),
        Duration::from_millis(6500)
    );
    let unlimited = Prober::new().with_limit(None);
    assert_eq!(unlimited.deadline_for(&specs), Duration::from_millis(2500));
    s.transport = TransportMode::Both;
    assert_eq!(
        Prober::new().deadline_for(&vec![s; 100]),
        Duration::from_millis(4500),
        "200 probes: 2 batches"
    );
}

#[tokio::test]
async fn the_in_flight_limit_queues_without_charging_the_timeout() {
    // Five probes, one at a time, each answered after 150 ms by a server with a 300 ms timeout
    // per attempt: every one succeeds although the last waits ~600 ms for its turn.
    let server = ScriptedServer::start(
        loopback(),
        &[ip(API)],
        Behaviour::Delay(Duration::from_millis(150)),
        Behaviour::Closed,
    );
    let mut s = spec(server.addr());
    s.timeout = Duration::from_millis(300);
    let specs = vec![s; 5];
    let prober = Prober::new().with_limit(Some(dnsprobe::InFlightLimit::new(1)));
    let reports = prober.probe_many(&specs, prober.deadline_for(&specs)).await;
    assert!(
        reports.iter().all(|r| r.healthy()),
        "{:?}",
        reports.iter().map(|r| &r.failure).collect::<Vec<_>>()
    );
}

/// A and AAAA back to back from one socket, as glibc asks: dnsmasq answers both (an empty
/// NOERROR for the AAAA it has no record for); a server that never answers AAAA loses one, and
/// the report says which, while the A answer still makes the probe healthy.
#[tokio::test]
async fn parallel_a_and_aaaa_from_one_socket_tell_a_lost_answer() {
    let server = dnsmasq();
    let s = spec(server.addr()).with_parallel_a_aaaa(true);
    let r = one(&s).await;
    assert!(r.healthy(), "{r}");
    assert_eq!(r.parallel, Some(dnsprobe::Parallel::Both), "{r}");
    assert_eq!(r.addresses, vec![ip(API)]);

    let silent_aaaa = ScriptedServer::start(
        loopback(),
        &[ip(API)],
        Behaviour::SilentFor(dnsprobe::hickory_proto::rr::RecordType::AAAA),
        Behaviour::Answer,
    );
    let mut s = spec(silent_aaaa.addr()).with_parallel_a_aaaa(true);
    s.timeout = Duration::from_secs(2);
    let r = one(&s).await;
    assert!(r.healthy(), "{r}");
    let lost = r.parallel.unwrap();
    assert_eq!(lost.lost_label(), "aaaa");
    assert!(lost.one_lost());
    assert_eq!(silent_aaaa.queries(), 2, "two questions, one socket");
    assert!(r.to_string().contains("the AAAA answer was lost"), "{r}");
    // The round-trip time is the A answer's, not the wait for the lost one (the bound only tells
    // one from the other: the wait is the whole 2 s timeout).
    assert!(r.rtt.unwrap() < Duration::from_millis(1500), "{r}");
    // And it survives JSON (the `serde` feature).
    #[cfg(feature = "serde")]
    {
        let json = dnsprobe::JsonReport::from(&r);
        assert_eq!(json.parallel_lost.as_deref(), Some("aaaa"));
        assert_eq!(json.into_report(&s).unwrap().parallel, r.parallel);
    }

    // An AAAA query's companion is A; the lost one is then the query's own answer: a timeout.
    let silent_a = ScriptedServer::start(
        loopback(),
        &[ip(API), ip("fd00::1")],
        Behaviour::SilentFor(dnsprobe::hickory_proto::rr::RecordType::A),
        Behaviour::Answer,
    );
    let s = spec(silent_a.addr())
        .with_query_type(dnsprobe::hickory_proto::rr::RecordType::AAAA)
        .with_parallel_a_aaaa(true);
    let r = one(&s).await;
    assert!(r.healthy(), "{r}");
    assert_eq!(r.parallel.map(dnsprobe::Parallel::lost_label), Some("a"));
    let s = spec(silent_a.addr()).with_parallel_a_aaaa(true);
    let r = one(&s).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Timeout), "{r}");
    assert_eq!(r.parallel.map(dnsprobe::Parallel::lost_label), Some("a"));

    // Without the option, one question only.
    let before = silent_aaaa.queries();
    let r = one(&spec(silent_aaaa.addr())).await;
    assert!(r.healthy() && r.parallel.is_none(), "{r}");
    assert_eq!(silent_aaaa.queries(), before + 1);
}
