use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// How the scripted server treats a query on one transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer with the configured addresses (A for IPv4 ones, AAAA for IPv6 ones).
    Answer,
    /// Answer with these addresses instead.
    AnswerWith(Vec<IpAddr>),
    /// Reply with this response code and no records.
    Rcode(ResponseCode),
    /// Never reply (TCP: accept, read, keep the connection open).
    Silent,
    /// Do not listen at all on this transport (refused).
    Closed,
    /// UDP: a reply with TC set and no records. TCP: same as `Answer`.
    Truncate,
    /// First a reply with a wrong ID, then the real one.
    SpoofIdFirst,
    /// First a reply to another question (same ID), then the real one.
    OtherQuestionFirst,
    /// First a garbage datagram, then the real reply.
    GarbageFirst,
    /// Only garbage.
    GarbageOnly,
    /// UDP: the real reply, sent from another port only (must be ignored).
    FromOtherPort,
    /// Answer after this delay.
    Delay(Duration),
    /// Never reply to questions of this type; answer the others (a lost AAAA answer of a
    /// glibc-style parallel A/AAAA lookup).
    SilentFor(RecordType),
}

/// A DNS server on loopback whose behaviour is scripted per transport; stops on drop.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    _background: crate::background::Background,
}

#[derive(Debug)]
struct Script {
    addrs: Vec<IpAddr>,
    udp: Behaviour,
    tcp: Behaviour,
}

impl ScriptedServer {
    /// Starts on `ip` (a free port, same for UDP and TCP) answering every query with `addrs`
    /// unless its behaviour says otherwise.
    pub fn start(ip: IpAddr, addrs: &[IpAddr], udp: Behaviour, tcp: Behaviour) -> ScriptedServer {
        let port = crate::free_port(ip);
        let addr = SocketAddr::new(ip, port);
        let script = Arc::new(Script {
            addrs: addrs.to_vec(),
            udp,
            tcp,
        });
        let queries = Arc::new(AtomicUsize::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let q = queries.clone();
        let background = crate::background::Background::spawn(move || async move {
            let udp = if script.udp == Behaviour::Closed {
                None
            } else {
                Some(UdpSocket::bind(addr).await.unwrap())
            };
            let tcp = if script.tcp == Behaviour::Closed {
                None
            } else {
                Some(TcpListener::bind(addr).await.unwrap())
            };
            ready_tx.send(()).unwrap();
            // Both serve forever; the runtime (and they) stop when the server is dropped.
            tokio::join!(
                serve_udp(udp, script.clone(), q.clone()),
                serve_tcp(tcp, script, q)
            );
        });
        ready_rx.recv().unwrap();
        ScriptedServer {
            addr,
            queries,
            _background: background,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queries received so far (both transports).
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

fn answer(query: &Message, addrs: &[IpAddr], rcode: ResponseCode) -> Message {
    let mut m = Message::response(query.metadata.id, query.metadata.op_code);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.add_queries(query.queries.clone());
    if rcode == ResponseCode::NoError
        && let Some(q) = query.queries.first()
    {
        for ip in addrs {
            let data = match (ip, q.query_type) {
                (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            m.add_answer(Record::from_rdata(q.name.clone(), 5, data));
        }
    }
    m
}

/// The messages to send, in order, for `query` under `behaviour`; `None` = stay silent.
fn replies(query: &Message, script: &Script, behaviour: &Behaviour, udp: bool) -> Vec<Vec<u8>> {
    let good = || {
        answer(query, &script.addrs, ResponseCode::NoError)
            .to_vec()
            .unwrap()
    };
    match behaviour {
        Behaviour::Answer | Behaviour::Delay(_) | Behaviour::FromOtherPort => vec![good()],
        Behaviour::AnswerWith(addrs) => {
            vec![
                answer(query, addrs, ResponseCode::NoError)
                    .to_vec()
                    .unwrap(),
            ]
        }
        Behaviour::Rcode(rc) => vec![answer(query, &[], *rc).to_vec().unwrap()],
        Behaviour::Silent | Behaviour::Closed => vec![],
        Behaviour::SilentFor(t) if query.queries.first().is_some_and(|q| q.query_type == *t) => {
            vec![]
        }
        Behaviour::SilentFor(_) => vec![good()],
        Behaviour::Truncate if udp => {
            let mut m = answer(query, &[], ResponseCode::NoError);
            m.metadata.truncation = true;
            vec![m.to_vec().unwrap()]
        }
        Behaviour::Truncate => vec![good()],
        Behaviour::SpoofIdFirst => {
            let mut m = answer(
                query,
                &["10.66.66.66".parse().unwrap()],
                ResponseCode::NoError,
            );
            m.metadata.id = query.metadata.id.wrapping_add(1);
            vec![m.to_vec().unwrap(), good()]
        }
        Behaviour::OtherQuestionFirst => {
            let mut m = answer(
                query,
                &["10.66.66.66".parse().unwrap()],
                ResponseCode::NoError,
            );
            if let Some(q) = m.queries.first_mut() {
                q.name = Name::from_ascii("evil.example.").unwrap();
            }
            for a in &mut m.answers {
                a.name = Name::from_ascii("evil.example.").unwrap();
            }
            vec![m.to_vec().unwrap(), good()]
        }
        Behaviour::GarbageFirst => vec![b"\x12\x34garbage, not DNS".to_vec(), good()],
        Behaviour::GarbageOnly => vec![b"\x12\x34garbage, not DNS".to_vec()],
    }
}

async fn serve_udp(socket: Option<UdpSocket>, script: Arc<Script>, queries: Arc<AtomicUsize>) {
    let Some(socket) = socket else { return };
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if query.metadata.message_type != MessageType::Query {
            continue;
        }
        queries.fetch_add(1, Ordering::SeqCst);
        let out = replies(&query, &script, &script.udp, true);
        let behaviour = script.udp.clone();
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Behaviour::Delay(d) = behaviour {
                tokio::time::sleep(d).await;
            }
            if behaviour == Behaviour::FromOtherPort {
                let other = UdpSocket::bind(SocketAddr::new(from.ip(), 0))
                    .await
                    .unwrap();
                for m in out {
                    let _ = other.send_to(&m, from).await;
                }
                return;
            }
            for m in out {
                let _ = socket.send_to(&m, from).await;
            }
        });
    }
}

async fn serve_tcp(listener: Option<TcpListener>, script: Arc<Script>, queries: Arc<AtomicUsize>) {
    let Some(listener) = listener else { return };
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let script = script.clone();
        let queries = queries.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let mut buf = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(query) = Message::from_vec(&buf) else {
                    return;
                };
                queries.fetch_add(1, Ordering::SeqCst);
                if let Behaviour::Delay(d) = script.tcp {
                    tokio::time::sleep(d).await;
                }
                for m in replies(&query, &script, &script.tcp, false) {
                    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&m);
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}
