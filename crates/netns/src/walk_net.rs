//! The walk's queries on the wire: A and AAAA of one name to one nameserver from one UDP socket
//! opened inside the namespace, at once or one after the other, as glibc's `send_dg` sends them.
//! Replies are matched by ID and question; only the header is read (response code, answer
//! count): the walk needs nothing more.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dnsprobe::hickory_proto::op::{Header, Message, MessageType, Query};
use dnsprobe::hickory_proto::rr::{Name, RecordType};
use dnsprobe::hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use crate::walk::{Ask, Exchange, Heard};

/// The socket of the last send, and the nameserver it is connected to.
type Last = Option<(IpAddr, Arc<UdpSocket>)>;

/// Sends a walk's queries from inside one namespace. Cheap to clone: clones share the socket
/// of the last send, which a retry (`fresh: false`) reuses.
#[derive(Clone)]
pub(crate) struct Sender {
    netns: PathBuf,
    timeout: Duration,
    current: Arc<Mutex<Last>>,
}

impl Sender {
    pub(crate) fn new(netns: PathBuf, timeout: Duration) -> Self {
        Sender {
            netns,
            timeout,
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// One send; a socket that cannot be opened or used loses both queries.
    pub(crate) async fn ask(&self, ask: Ask) -> Exchange {
        let lost = Exchange {
            a: Heard::Lost,
            aaaa: (!ask.sequential).then_some(Heard::Lost),
        };
        let Ok(name) = Name::from_ascii(&ask.name) else {
            return lost;
        };
        let Some(socket) = self.socket(&ask).await else {
            return lost;
        };
        let a = query(&name, RecordType::A);
        let aaaa = query(&name, RecordType::AAAA);
        let deadline = Instant::now() + self.timeout;
        if ask.sequential {
            let first = exchange(&socket, &[&a], deadline).await;
            if first[0] == Heard::Lost {
                return Exchange {
                    a: Heard::Lost,
                    aaaa: None,
                };
            }
            let second = exchange(&socket, &[&aaaa], deadline).await;
            return Exchange {
                a: first[0],
                aaaa: Some(second[0]),
            };
        }
        let both = exchange(&socket, &[&a, &aaaa], deadline).await;
        Exchange {
            a: both[0],
            aaaa: Some(both[1]),
        }
    }

    /// The socket of the previous send to this nameserver, or a new one opened inside the
    /// namespace (on a dedicated thread) and connected to it.
    async fn socket(&self, ask: &Ask) -> Option<Arc<UdpSocket>> {
        let last = (self.current.lock())
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if !ask.fresh
            && let Some((ns, s)) = last
            && ns == ask.nameserver
        {
            return Some(s);
        }
        let target = SocketAddr::new(ask.nameserver, dnsprobe::DEFAULT_PORT);
        let path = self.netns.clone();
        let opened = tokio::task::spawn_blocking(move || {
            crate::run_in(&path, || {
                dnsprobe::new_socket(dnsprobe::Transport::Udp, target)
            })
        })
        .await
        .ok()?
        .ok()?
        .ok()?;
        opened.set_nonblocking(true).ok()?;
        let bind: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .ok()?;
        opened.bind(&bind.into()).ok()?;
        let socket = Arc::new(UdpSocket::from_std(opened.into()).ok()?);
        socket.connect(target).await.ok()?;
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((ask.nameserver, socket.clone()));
        Some(socket)
    }
}

/// A query as a stub resolver sends it: random ID, RD on, no EDNS (glibc adds it only with
/// `options edns0`).
fn query(name: &Name, t: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), t));
    m
}

/// Sends `queries` at once on `socket` and waits until each has its reply or `deadline`.
async fn exchange(socket: &UdpSocket, queries: &[&Message], deadline: Instant) -> Vec<Heard> {
    let mut heard = vec![Heard::Lost; queries.len()];
    let sent = Instant::now();
    // A query that cannot be sent (a local filter's EPERM, ...) is lost; the others still wait.
    let mut out = 0;
    for q in queries {
        if let Ok(bytes) = q.to_vec()
            && socket.send(&bytes).await.is_ok()
        {
            out += 1;
        }
    }
    let mut buf = vec![0u8; 4096];
    while out > 0 && heard.contains(&Heard::Lost) {
        let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            // An ICMP error (refused, unreachable), or the deadline: the rest is lost.
            Ok(Err(_)) | Err(_) => break,
        };
        let Some((i, h)) = matched(queries, &buf[..n], sent.elapsed()) else {
            continue;
        };
        heard[i] = h;
    }
    heard
}

/// Which of `queries` the datagram answers (a response with its ID and question), and what.
fn matched(queries: &[&Message], bytes: &[u8], rtt: Duration) -> Option<(usize, Heard)> {
    let mut d = BinDecoder::new(bytes);
    let header = Header::read(&mut d).ok()?;
    if header.metadata.message_type != MessageType::Response || header.counts.queries != 1 {
        return None;
    }
    let question = Query::read(&mut d).ok()?;
    let i = queries.iter().position(|q| {
        q.metadata.id == header.metadata.id
            && q.queries.first().is_some_and(|mine| {
                mine.name == question.name && mine.query_type == question.query_type
            })
    })?;
    Some((
        i,
        Heard::Reply {
            rcode: header.metadata.response_code,
            answers: header.counts.answers,
            rtt,
        },
    ))
}
