//! A hostile DNS server: replies written byte by byte, for what no well-behaved server (and no
//! DNS library's encoder) produces on demand — compression loops, records of other owners,
//! answers to other questions, endless TCP streams, oversize datagrams, records a strict decoder
//! refuses although real servers serve them, CNAME-only answers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What the hostile server answers to every query, on UDP and TCP alike (unless said).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hostile {
    /// The reply to the query, whose one answer record's owner name is a compression pointer to
    /// itself.
    CompressionLoop,
    /// The reply to the query, whose answer is `evil.example. A <ip>`: an address owned by
    /// another name.
    WrongOwner(Ipv4Addr),
    /// A reply with the query's ID to another question (`evil.example. A`, answering
    /// 10.66.66.66), and nothing else.
    OtherQuestion,
    /// TCP: replies with the query's ID to another question, framed, written without end until
    /// the client goes away. UDP: a burst of 64 of them.
    EndlessFrames,
    /// The reply to the query padded with TXT records to this many bytes (a UDP datagram larger
    /// than a probe's receive buffer when over 4096).
    Oversize(usize),
    /// The reply to the query holding `CAA 0 abcdefghijklmnop "x"` (a 16-character tag: RFC 8659
    /// allows 15, servers serve it, dig reads it) and then `A <ip>`.
    LongCaaTag(Ipv4Addr),
    /// The reply to the query holding an HTTPS record whose ALPN id is not UTF-8, then `A <ip>`.
    NonUtf8Alpn(Ipv4Addr),
    /// The reply to the query holding only a CNAME to `gone.cluster.local.`, which it does not
    /// resolve (a dangling alias).
    DanglingCname,
    /// The reply to the query holding only a CNAME to a name out of the zone
    /// (`elsewhere.example.`), and no address.
    CnameOutOfZone,
    /// The reply to the query with the TC bit set, over TCP too.
    TruncatedEverywhere(Ipv4Addr),
}

/// A hostile DNS server on loopback (UDP and TCP on one port); stops on drop.
#[derive(Debug)]
pub struct HostileServer {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    frames: Arc<AtomicUsize>,
    _background: crate::background::Background,
}

impl HostileServer {
    /// Starts on `ip` (a free port, the same for UDP and TCP).
    pub fn start(ip: IpAddr, hostile: Hostile) -> HostileServer {
        let addr = SocketAddr::new(ip, crate::free_port(ip));
        let queries = Arc::new(AtomicUsize::new(0));
        let frames = Arc::new(AtomicUsize::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (q, f) = (queries.clone(), frames.clone());
        let background = crate::background::Background::spawn(move || async move {
            let udp = UdpSocket::bind(addr).await.unwrap();
            let tcp = TcpListener::bind(addr).await.unwrap();
            ready_tx.send(()).unwrap();
            let hostile = Arc::new(hostile);
            tokio::join!(
                serve_udp(udp, hostile.clone(), q.clone()),
                serve_tcp(tcp, hostile, q, f)
            );
        });
        ready_rx.recv().unwrap();
        HostileServer {
            addr,
            queries,
            frames,
            _background: background,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queries received (both transports).
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// TCP frames written for [`Hostile::EndlessFrames`] so far.
    pub fn frames(&self) -> usize {
        self.frames.load(Ordering::SeqCst)
    }
}

/// A query's ID and its question section, as bytes (name, type, class), if it has one.
struct Asked<'a> {
    id: [u8; 2],
    flags: u8,
    question: &'a [u8],
}

fn asked(query: &[u8]) -> Option<Asked<'_>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || query[4..6] != [0, 1] {
        return None;
    }
    // The question's name: uncompressed labels up to the root.
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        i += 1 + len;
    }
    let end = i + 1 + 4;
    Some(Asked {
        id: [query[0], query[1]],
        flags: query[2] & 0x01, // RD
        question: query.get(12..end)?,
    })
}

/// The wire form of `name` (uncompressed, as hickory encodes a name on its own).
fn wire_name(name: &str) -> Vec<u8> {
    use hickory_proto::serialize::binary::BinEncodable as _;
    let name = hickory_proto::rr::Name::from_ascii(name).expect("a valid fixture name");
    name.to_bytes().expect("a valid name encodes")
}

/// A resource record: `owner` bytes (a name, or a pointer), type, class IN, TTL 5, `rdata`.
fn record(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut out = owner.to_vec();
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&5u32.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
    out
}

/// Pointer to the question's name (offset 12).
const QNAME: [u8; 2] = [0xC0, 12];

/// A reply: header (QR, RD copied, RA, `tc`), `question`, and `answers` (already encoded).
fn reply(id: [u8; 2], rd: u8, tc: bool, question: &[u8], answers: &[Vec<u8>]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.push(0x80 | rd | if tc { 0x02 } else { 0 });
    out.push(0x80); // RA, NOERROR
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for a in answers {
        out.extend_from_slice(a);
    }
    out
}

fn evil_question() -> Vec<u8> {
    let mut q = wire_name("evil.example.");
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

/// The messages to send for `query`, in order.
fn replies(query: &[u8], hostile: &Hostile) -> Vec<Vec<u8>> {
    let Some(Asked {
        id,
        flags: rd,
        question,
    }) = asked(query)
    else {
        return vec![];
    };
    let one = |answers: &[Vec<u8>]| vec![reply(id, rd, false, question, answers)];
    match hostile {
        Hostile::CompressionLoop => {
            // The answer's owner sits right after the question: point it at itself.
            let at = (12 + question.len()) as u16;
            let owner = (0xC000 | at).to_be_bytes();
            one(&[record(&owner, 1, &[10, 96, 0, 1])])
        }
        Hostile::WrongOwner(ip) => one(&[record(&wire_name("evil.example."), 1, &ip.octets())]),
        Hostile::OtherQuestion | Hostile::EndlessFrames => {
            let q = evil_question();
            let answer = record(&QNAME, 1, &[10, 66, 66, 66]);
            vec![reply(id, rd, false, &q, &[answer])]
        }
        Hostile::Oversize(size) => {
            let mut answers = Vec::new();
            let mut total = 12 + question.len();
            while total < *size {
                let chunk = (*size - total).clamp(1, 255);
                let mut txt = vec![chunk as u8];
                txt.extend(std::iter::repeat_n(b'x', chunk));
                let r = record(&QNAME, 16, &txt);
                total += r.len();
                answers.push(r);
            }
            one(&answers)
        }
        Hostile::LongCaaTag(ip) => {
            let mut caa = vec![0, 16];
            caa.extend_from_slice(b"abcdefghijklmnop");
            caa.push(b'x');
            one(&[record(&QNAME, 257, &caa), record(&QNAME, 1, &ip.octets())])
        }
        Hostile::NonUtf8Alpn(ip) => {
            // priority 1, target ".", key 1 (alpn), length 3: one id of 2 bytes, not UTF-8.
            let https = [0, 1, 0, 0, 1, 0, 3, 2, 0xff, 0xfe];
            one(&[record(&QNAME, 65, &https), record(&QNAME, 1, &ip.octets())])
        }
        Hostile::DanglingCname => one(&[record(&QNAME, 5, &wire_name("gone.cluster.local."))]),
        Hostile::CnameOutOfZone => one(&[record(&QNAME, 5, &wire_name("elsewhere.example."))]),
        Hostile::TruncatedEverywhere(ip) => vec![reply(
            id,
            rd,
            true,
            question,
            &[record(&QNAME, 1, &ip.octets())],
        )],
    }
}

async fn serve_udp(socket: UdpSocket, hostile: Arc<Hostile>, queries: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        let out = replies(&buf[..n], &hostile);
        let burst = if *hostile == Hostile::EndlessFrames {
            64
        } else {
            1
        };
        for m in &out {
            for _ in 0..burst {
                let _ = socket.send_to(m, from).await;
            }
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    hostile: Arc<Hostile>,
    queries: Arc<AtomicUsize>,
    frames: Arc<AtomicUsize>,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let (hostile, queries, frames) = (hostile.clone(), queries.clone(), frames.clone());
        tokio::spawn(async move {
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let mut buf = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                queries.fetch_add(1, Ordering::SeqCst);
                let out = replies(&buf, &hostile);
                let endless = *hostile == Hostile::EndlessFrames;
                loop {
                    for m in &out {
                        let mut framed = (m.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(m);
                        if stream.write_all(&framed).await.is_err() {
                            return;
                        }
                        frames.fetch_add(1, Ordering::SeqCst);
                    }
                    if !endless {
                        break;
                    }
                }
            }
        });
    }
}
