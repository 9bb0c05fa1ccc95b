//! Running probes: one attempt loop per (spec, transport), all on the caller's runtime.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use hickory_proto::op::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

use crate::classify::{answer_addresses, classify};
use crate::report::{Failure, ProbeReport};
use crate::sockets::{OwnSockets, SocketSource};
use crate::spec::{ProbeSpec, Transport};
use crate::wire::{Mismatch, accept_reply, build_query};

/// Runs probes, taking sockets from a [`SocketSource`] (by default, its own).
///
/// Cheap to clone; one `Prober` can run any number of probes concurrently.
#[derive(Clone)]
pub struct Prober {
    sockets: Arc<dyn SocketSource>,
    limit: Option<InFlightLimit>,
}

/// Probes a [`Prober`] keeps in flight at once by default. A DNS server's UDP receive buffer
/// (Linux: 208 KiB, about 160 queries) overflows under a larger burst, and the queries it drops
/// would be reported as timeouts that are the prober's own doing. Measured: 1,000 simultaneous
/// queries to one dnsmasq lose 7-30 %; bounded at 128, none.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 128;

/// A bound on attempts in flight, shareable between probers (e.g. one per network namespace,
/// all aimed at the same few servers). Cheap to clone.
#[derive(Debug, Clone)]
pub struct InFlightLimit(Arc<tokio::sync::Semaphore>);

impl InFlightLimit {
    /// At most `n` attempts in flight (at least 1).
    pub fn new(n: usize) -> Self {
        InFlightLimit(Arc::new(tokio::sync::Semaphore::new(n.max(1))))
    }
}

impl fmt::Debug for Prober {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prober")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Default for Prober {
    fn default() -> Self {
        Prober::new()
    }
}

impl Prober {
    /// A prober that opens its own sockets in the current network namespace.
    pub fn new() -> Self {
        Prober {
            sockets: Arc::new(OwnSockets),
            limit: Some(InFlightLimit::new(DEFAULT_MAX_IN_FLIGHT)),
        }
    }

    /// Shares `limit` with other probers instead of a limit of its own
    /// ([`DEFAULT_MAX_IN_FLIGHT`]); `None`: no limit at all.
    pub fn with_limit(mut self, limit: Option<InFlightLimit>) -> Self {
        self.limit = limit;
        self
    }

    /// A prober that takes its sockets from `source`, e.g. sockets opened in another network
    /// namespace.
    pub fn with_sockets(source: impl SocketSource + 'static) -> Self {
        Prober {
            sockets: Arc::new(source),
            limit: Some(InFlightLimit::new(DEFAULT_MAX_IN_FLIGHT)),
        }
    }

    /// Probes `spec` over each of its transports (UDP first), concurrently.
    pub async fn probe(&self, spec: &ProbeSpec) -> Vec<ProbeReport> {
        join_all(
            spec.transport
                .transports()
                .iter()
                .map(|t| self.probe_transport(spec, *t, None)),
        )
        .await
    }

    /// Probes every spec over each of its transports, all concurrently on the current task (at
    /// most the in-flight limit at once), and stops waiting at `deadline` from now: probes still
    /// running then are reported as timed out. [`Prober::deadline_for`] gives a deadline that
    /// lets every probe finish.
    /// Reports come in input order (per spec, UDP before TCP).
    pub async fn probe_many(&self, specs: &[ProbeSpec], deadline: Duration) -> Vec<ProbeReport> {
        let until = Instant::now() + deadline;
        join_all(specs.iter().flat_map(|spec| {
            spec.transport
                .transports()
                .iter()
                .map(move |t| self.probe_transport(spec, *t, Some(until)))
        }))
        .await
    }

    /// An overall deadline long enough for `specs` to run to completion under this prober's
    /// in-flight limit: every attempt, a TCP retry after truncation, queued in batches.
    pub fn deadline_for(&self, specs: &[ProbeSpec]) -> Duration {
        let probes: usize = specs.iter().map(|s| s.transport.transports().len()).sum();
        let longest = specs
            .iter()
            .map(|s| s.timeout * (s.attempts.get() + 1))
            .max()
            .unwrap_or_default();
        let batches = match &self.limit {
            Some(l) => probes.div_ceil(l.0.available_permits().max(1)).max(1),
            None => 1,
        };
        longest * u32::try_from(batches).unwrap_or(u32::MAX) + Duration::from_millis(500)
    }

    /// Probes `spec` over one transport, making up to `spec.attempts` attempts, none going past
    /// `deadline` when one is given.
    pub async fn probe_transport(
        &self,
        spec: &ProbeSpec,
        transport: Transport,
        deadline: Option<Instant>,
    ) -> ProbeReport {
        let mut report = ProbeReport::new(spec, transport);
        let mut last = None;
        for attempt in 1..=spec.attempts.get() {
            // Wait for room before the attempt's clock starts: time queued is not the server's.
            let _permit = match &self.limit {
                None => None,
                Some(l) => match deadline {
                    None => l.0.acquire().await.ok(),
                    Some(d) => match timeout_at(d, l.0.acquire()).await {
                        Ok(p) => p.ok(),
                        Err(_) => break,
                    },
                },
            };
            let started = Instant::now();
            if deadline.is_some_and(|d| started >= d) {
                break;
            }
            report.attempts = attempt;
            match self.attempt(spec, transport, deadline, &mut report).await {
                Ok(reply) => {
                    record_reply(&mut report, &reply, spec, started);
                    return report;
                }
                // A later timeout does not hide a more specific failure seen earlier (a refusal
                // can come back as silence when the kernel rate-limits its ICMP errors).
                Err(AttemptError::Timeout { .. })
                    if matches!(last, Some(AttemptError::Failed(_))) => {}
                Err(e) => last = Some(e),
            }
        }
        report.failure = Some(match last {
            Some(AttemptError::Failed(f)) => f,
            Some(AttemptError::Timeout {
                malformed: Some(detail),
            }) => Failure::Malformed {
                detail: format!("{detail} (no valid reply before the deadline)"),
            },
            Some(AttemptError::Timeout { malformed: None }) | None => Failure::Timeout {
                attempts: report.attempts,
                timeout: spec.timeout,
            },
        });
        report
    }

    /// One attempt: a query over `transport`, and over TCP again if the UDP reply is truncated.
    /// Each exchange gets `spec.timeout`, cut short by the overall deadline.
    async fn attempt(
        &self,
        spec: &ProbeSpec,
        transport: Transport,
        overall: Option<Instant>,
        report: &mut ProbeReport,
    ) -> Result<Message, AttemptError> {
        let deadline = cap(Instant::now() + spec.timeout, overall);
        let reply = self.exchange(spec, transport, deadline, report).await?;
        if transport == Transport::Udp && reply.metadata.truncation {
            report.truncated = true;
            if spec.tcp_fallback {
                report.transport_used = Transport::Tcp;
                // The TCP retry gets a full timeout of its own, as stub resolvers give it.
                let tcp_deadline = cap(Instant::now() + spec.timeout, overall);
                return self
                    .exchange(spec, Transport::Tcp, tcp_deadline, report)
                    .await;
            }
        }
        Ok(reply)
    }

    async fn exchange(
        &self,
        spec: &ProbeSpec,
        transport: Transport,
        deadline: Instant,
        report: &mut ProbeReport,
    ) -> Result<Message, AttemptError> {
        let query = build_query(spec);
        let bytes = query.to_vec().map_err(|e| {
            AttemptError::Failed(Failure::Io {
                detail: format!("cannot encode query: {e}"),
            })
        })?;
        let socket = self
            .sockets
            .open(transport, spec.target)
            .map_err(|e| AttemptError::Failed(io_failure(&e)))?;
        match transport {
            Transport::Udp => {
                udp_exchange(socket, spec.target, &query, &bytes, deadline, report).await
            }
            Transport::Tcp => {
                tcp_exchange(socket, spec.target, &query, &bytes, deadline, report).await
            }
        }
    }
}

/// Fills a report from an accepted reply, and classifies it.
fn record_reply(report: &mut ProbeReport, reply: &Message, spec: &ProbeSpec, started: Instant) {
    report.rtt = Some(started.elapsed());
    report.responder = Some(spec.target);
    report.rcode = Some(reply.metadata.response_code);
    report.addresses = answer_addresses(reply);
    report.answers = reply.answers.iter().map(|r| r.data.to_string()).collect();
    report.records = reply.answers.iter().map(|r| r.to_string()).collect();
    report.failure = classify(reply, &spec.expect).err();
}

fn cap(t: Instant, deadline: Option<Instant>) -> Instant {
    deadline.map_or(t, |d| t.min(d))
}

/// Probes `spec` once over TCP framing on an already established byte stream — a tunnel such
/// as a Kubernetes port-forward, where no socket of ours reaches the server. One attempt (a
/// stream is used once); `spec.target` only labels the report; the transport is TCP.
///
/// ```
/// # async fn run() {
/// let (client, _server) = tokio::io::duplex(4096);
/// let mut spec = dnsprobe::ProbeSpec::new("10.244.0.5:53".parse().unwrap());
/// spec.timeout = std::time::Duration::from_millis(10);
/// let report = dnsprobe::probe_over_stream(&spec, client).await;
/// assert_eq!(report.failure_kind(), Some(dnsprobe::FailureKind::Timeout)); // nobody answers
/// # }
/// ```
pub async fn probe_over_stream<S: AsyncRead + AsyncWrite + Unpin>(
    spec: &ProbeSpec,
    stream: S,
) -> ProbeReport {
    let mut report = ProbeReport::new(spec, Transport::Tcp);
    report.attempts = 1;
    let started = Instant::now();
    let query = build_query(spec);
    let result = match query.to_vec() {
        Ok(bytes) => {
            stream_exchange(stream, &query, &bytes, started + spec.timeout, &mut report).await
        }
        Err(e) => Err(AttemptError::Failed(Failure::Io {
            detail: format!("cannot encode query: {e}"),
        })),
    };
    match result {
        Ok(reply) => record_reply(&mut report, &reply, spec, started),
        Err(AttemptError::Failed(f)) => report.failure = Some(f),
        Err(AttemptError::Timeout { .. }) => {
            report.failure = Some(Failure::Timeout {
                attempts: 1,
                timeout: spec.timeout,
            });
        }
    }
    report
}

/// Probes `spec` with sockets of its own. See [`Prober::probe`].
pub async fn probe(spec: &ProbeSpec) -> Vec<ProbeReport> {
    Prober::new().probe(spec).await
}

/// Probes all `specs` concurrently with sockets of their own. See [`Prober::probe_many`].
pub async fn probe_many(specs: &[ProbeSpec], deadline: Duration) -> Vec<ProbeReport> {
    Prober::new().probe_many(specs, deadline).await
}

#[derive(Debug)]
enum AttemptError {
    /// Nothing accepted before the deadline; `malformed` holds the last parse error of a
    /// datagram that came from the target, if any.
    Timeout {
        malformed: Option<String>,
    },
    Failed(Failure),
}

fn io_failure(e: &io::Error) -> Failure {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => Failure::Refused,
        NetworkUnreachable | HostUnreachable => Failure::Unreachable {
            detail: e.to_string(),
        },
        _ => Failure::Io {
            detail: e.to_string(),
        },
    }
}

fn failed(e: io::Error) -> AttemptError {
    AttemptError::Failed(io_failure(&e))
}

/// Notes a dropped message; returns the parse error for malformed ones.
fn dropped(report: &mut ProbeReport, why: Mismatch, malformed: &mut Option<String>) {
    report.ignored += 1;
    if let Mismatch::Malformed(detail) = why {
        *malformed = Some(detail);
    }
}

/// Receive buffer for UDP replies. We advertise 1232 bytes (EDNS_PAYLOAD); 4096 is the largest
/// payload servers commonly send even when asked for less. A larger datagram is cut by the kernel
/// and fails to parse (dropped, `malformed` if nothing else comes). Sized for memory: a sweep
/// holds one buffer per concurrent probe (300 for 100 namespaces x 3 targets).
const UDP_BUFFER: usize = 4096;

async fn udp_exchange(
    socket: socket2::Socket,
    target: SocketAddr,
    query: &Message,
    bytes: &[u8],
    deadline: Instant,
    report: &mut ProbeReport,
) -> Result<Message, AttemptError> {
    socket.set_nonblocking(true).map_err(failed)?;
    // Connecting filters other sources in the kernel and turns ICMP port unreachable into
    // ECONNREFUSED; an unbound socket gets a fresh ephemeral port here.
    let socket = UdpSocket::from_std(socket.into()).map_err(failed)?;
    socket.connect(target).await.map_err(failed)?;
    socket.send(bytes).await.map_err(failed)?;
    let mut buf = vec![0u8; UDP_BUFFER];
    let mut malformed = None;
    loop {
        let (n, from) = match timeout_at(deadline, socket.recv_from(&mut buf)).await {
            Err(_elapsed) => return Err(AttemptError::Timeout { malformed }),
            Ok(Err(e)) => return Err(failed(e)),
            Ok(Ok(got)) => got,
        };
        if from != target {
            report.ignored += 1;
            continue;
        }
        match accept_reply(query, &buf[..n]) {
            Ok(reply) => return Ok(reply),
            Err(why) => dropped(report, why, &mut malformed),
        }
    }
}

async fn tcp_exchange(
    socket: socket2::Socket,
    target: SocketAddr,
    query: &Message,
    bytes: &[u8],
    deadline: Instant,
    report: &mut ProbeReport,
) -> Result<Message, AttemptError> {
    socket.set_nonblocking(true).map_err(failed)?;
    let socket = TcpSocket::from_std_stream(socket.into());
    let stream: TcpStream = match timeout_at(deadline, socket.connect(target)).await {
        Err(_) => return Err(AttemptError::Timeout { malformed: None }),
        Ok(r) => r.map_err(failed)?,
    };
    stream.set_nodelay(true).map_err(failed)?;
    stream_exchange(stream, query, bytes, deadline, report).await
}

/// One DNS-over-TCP exchange (RFC 7766 framing) over an established byte stream.
async fn stream_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    query: &Message,
    bytes: &[u8],
    deadline: Instant,
    report: &mut ProbeReport,
) -> Result<Message, AttemptError> {
    let len = u16::try_from(bytes.len()).map_err(|_| {
        AttemptError::Failed(Failure::Io {
            detail: "query longer than 65535 bytes".into(),
        })
    })?;
    // RFC 7766 §8: the length prefix and the message in one write, so they leave in one segment.
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    let mut malformed = None;
    let io = async {
        stream.write_all(&framed).await?;
        let mut buf = Vec::new();
        loop {
            let n = usize::from(stream.read_u16().await?);
            buf.resize(n, 0);
            stream.read_exact(&mut buf).await?;
            match accept_reply(query, &buf) {
                Ok(reply) => return Ok(reply),
                Err(Mismatch::Malformed(detail)) => {
                    // Framing is intact but the message is not: nothing after it can be trusted.
                    return Err(io::Error::new(io::ErrorKind::InvalidData, detail));
                }
                Err(why) => dropped(report, why, &mut malformed),
            }
        }
    };
    match timeout_at(deadline, io).await {
        Err(_) => Err(AttemptError::Timeout { malformed }),
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            report.ignored += 1;
            Err(AttemptError::Failed(Failure::Malformed {
                detail: e.to_string(),
            }))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(AttemptError::Failed(Failure::Io {
                detail: "the server closed the connection without a reply".into(),
            }))
        }
        Ok(Err(e)) => Err(failed(e)),
    }
}
