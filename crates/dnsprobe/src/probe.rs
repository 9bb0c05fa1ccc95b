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
use crate::report::{Failure, Parallel, ProbeReport};
use crate::sockets::{OwnSockets, SocketSource};
use crate::spec::{ProbeSpec, Transport};
use crate::wire::{Mismatch, accept_reply, build_query, rdata_text, record_text};

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
        let until = after(Instant::now(), deadline);
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
    /// Saturates instead of overflowing: a huge timeout gives [`Duration::MAX`], which
    /// [`Prober::probe_many`] takes as "no overall deadline" in practice.
    pub fn deadline_for(&self, specs: &[ProbeSpec]) -> Duration {
        let probes: usize = specs.iter().map(|s| s.transport.transports().len()).sum();
        let longest = specs
            .iter()
            .map(|s| s.timeout.saturating_mul(s.attempts.get().saturating_add(1)))
            .max()
            .unwrap_or_default();
        let batches = match &self.limit {
            Some(l) => probes.div_ceil(l.0.available_permits().max(1)).max(1),
            None => 1,
        };
        longest
            .saturating_mul(u32::try_from(batches).unwrap_or(u32::MAX))
            .saturating_add(Duration::from_millis(500))
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
        if let Err(e) = spec.check_transport(transport) {
            report.failure = Some(Failure::NotProbed {
                detail: e.to_string(),
            });
            return report;
        }
        let mut last: Option<AttemptError> = None;
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
                Ok((reply, answered)) => {
                    record_reply(&mut report, &reply, spec, answered - started);
                    return report;
                }
                // Not probed: nothing was sent, and the next socket would fail the same way. An
                // earlier attempt's failure, if any, is the one that says something of the target.
                Err(e @ AttemptError::Failed(Failure::NotProbed { .. })) => {
                    last = last.or(Some(e));
                    break;
                }
                // A later timeout does not hide a more specific failure seen earlier (a refusal
                // can come back as silence when the kernel rate-limits its ICMP errors), nor
                // silence what was heard before.
                Err(e) => {
                    if last.as_ref().is_none_or(|l| e.rank() >= l.rank()) {
                        last = Some(e);
                    }
                }
            }
        }
        report.failure = Some(match last {
            Some(AttemptError::Failed(f)) => f,
            Some(AttemptError::Timeout {
                dropped: Some(Dropped::Malformed(detail)),
            }) => Failure::Malformed {
                detail: format!("{detail} (no valid reply before the deadline)"),
            },
            Some(AttemptError::Timeout {
                dropped: Some(Dropped::Mismatched(detail)),
            }) => Failure::Mismatched {
                detail: format!("{detail}, and no reply to this query before the deadline"),
            },
            Some(AttemptError::Timeout { dropped: None }) | None => Failure::Timeout {
                attempts: report.attempts,
                timeout: spec.timeout,
            },
        });
        report
    }

    /// One attempt: a query over `transport`, and over TCP again if the UDP reply is truncated.
    /// Each exchange gets `spec.timeout`, cut short by the overall deadline. Returns the reply
    /// and when it came.
    async fn attempt(
        &self,
        spec: &ProbeSpec,
        transport: Transport,
        overall: Option<Instant>,
        report: &mut ProbeReport,
    ) -> Result<(Message, Instant), AttemptError> {
        let deadline = cap(after(Instant::now(), spec.timeout), overall);
        let (reply, answered) = if transport == Transport::Udp && spec.parallel_a_aaaa {
            self.parallel_exchange(spec, deadline, report).await?
        } else {
            let reply = self.exchange(spec, transport, deadline, report).await?;
            (reply, Instant::now())
        };
        if transport == Transport::Udp && reply.metadata.truncation {
            report.truncated = true;
            if spec.tcp_fallback {
                // The TCP retry gets a full timeout of its own, as stub resolvers give it.
                let tcp_deadline = cap(after(Instant::now(), spec.timeout), overall);
                let reply = self
                    .exchange(spec, Transport::Tcp, tcp_deadline, report)
                    .await?;
                report.transport_used = Transport::Tcp;
                return Ok((reply, Instant::now()));
            }
        }
        Ok((reply, answered))
    }

    /// The query and its companion question (A and AAAA) sent back to back from one connected
    /// UDP socket, as glibc's resolver sends them; waits for both until `deadline` and notes in
    /// `report.parallel` (first attempt only) which answers came. Returns the query's reply and
    /// when it came, or why it did not.
    async fn parallel_exchange(
        &self,
        spec: &ProbeSpec,
        deadline: Instant,
        report: &mut ProbeReport,
    ) -> Result<(Message, Instant), AttemptError> {
        let first = build_query(spec);
        let companion = spec.clone().with_query_type(spec.companion_type());
        let mut second = build_query(&companion);
        while second.metadata.id == first.metadata.id {
            second = build_query(&companion);
        }
        let encode = |m: &Message| {
            m.to_vec().map_err(|e| {
                AttemptError::Failed(Failure::Io {
                    detail: format!("cannot encode query: {e}"),
                })
            })
        };
        let (one, two) = (encode(&first)?, encode(&second)?);
        let socket = self
            .sockets
            .open(Transport::Udp, spec.target)
            .map_err(not_probed)?;
        let socket = udp_socket(socket, spec.target)?;
        let mut got: (Option<(Message, Instant)>, bool) = (None, false);
        let outcome = parallel_receive(
            &socket,
            spec.target,
            [&first, &second],
            [&one, &two],
            deadline,
            report,
            &mut got,
        )
        .await;
        if report.parallel.is_none() {
            report.parallel = Some(match (&got.0, got.1) {
                (Some(_), true) => Parallel::Both,
                (Some(_), false) => Parallel::Lost(companion.query_type),
                (None, true) => Parallel::Lost(spec.query_type),
                (None, false) => Parallel::Neither,
            });
        }
        outcome?;
        got.0.ok_or(AttemptError::Timeout { dropped: None })
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
            .map_err(not_probed)?;
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

/// Fills a report from an accepted reply that came `rtt` after the attempt started, and
/// classifies it.
fn record_reply(report: &mut ProbeReport, reply: &Message, spec: &ProbeSpec, rtt: Duration) {
    report.rtt = Some(rtt);
    report.responder = Some(spec.target);
    report.rcode = Some(reply.metadata.response_code);
    report.addresses = answer_addresses(reply);
    report.answers = reply.answers.iter().map(|r| rdata_text(&r.data)).collect();
    report.records = reply.answers.iter().map(record_text).collect();
    report.failure = match classify(reply, &spec.expect) {
        Ok(()) => None,
        // TC on a reply that came over TCP: no fallback could help.
        Err(Failure::Truncated) if report.transport_used == Transport::Tcp => {
            Some(Failure::TruncatedOverTcp)
        }
        Err(f) => Some(f),
    };
}

fn cap(t: Instant, deadline: Option<Instant>) -> Instant {
    deadline.map_or(t, |d| t.min(d))
}

/// The farthest a deadline is set: about 30 years, tokio's own "far future". A longer duration
/// (`--timeout 300000000000y`) is capped rather than overflowing `Instant + Duration`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `from + d`, capped at [`FAR_FUTURE`]; never panics.
fn after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d.min(FAR_FUTURE)).unwrap_or(from)
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
            let deadline = after(started, spec.timeout);
            stream_exchange(stream, &query, &bytes, deadline, &mut report).await
        }
        Err(e) => Err(AttemptError::Failed(Failure::Io {
            detail: format!("cannot encode query: {e}"),
        })),
    };
    match result {
        Ok(reply) => record_reply(&mut report, &reply, spec, started.elapsed()),
        Err(AttemptError::Failed(f)) => report.failure = Some(f),
        Err(AttemptError::Timeout {
            dropped: Some(Dropped::Mismatched(detail)),
        }) => {
            report.failure = Some(Failure::Mismatched {
                detail: format!("{detail}, and no reply to this query before the deadline"),
            });
        }
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
    /// Nothing accepted before the deadline; `dropped` says what the last message dropped was,
    /// if one came from the target.
    Timeout {
        dropped: Option<Dropped>,
    },
    Failed(Failure),
}

impl AttemptError {
    /// How much an attempt's outcome says: a failure, then a timeout after hearing something,
    /// then silence. A later attempt's outcome replaces an earlier one's only when it says as
    /// much.
    fn rank(&self) -> u8 {
        match self {
            AttemptError::Timeout { dropped: None } => 0,
            AttemptError::Timeout { dropped: Some(_) } => 1,
            AttemptError::Failed(_) => 2,
        }
    }
}

/// A message from the target that was dropped, as evidence for the final failure.
#[derive(Debug)]
enum Dropped {
    /// Its header or question did not parse.
    Malformed(String),
    /// A reply to something else (described).
    Mismatched(String),
}

/// A socket that could not be had or set up: the probe did not start (not the target's fault).
fn not_probed(e: io::Error) -> AttemptError {
    AttemptError::Failed(Failure::NotProbed {
        detail: format!("no socket: {e}"),
    })
}

/// A socket error on the path to the target, as a failure: ICMP errors and their local
/// equivalents (an `unreachable` or `prohibit` route) are `unreachable`, a port unreachable or a
/// TCP RST is `refused`, anything else `io`. The OS error is stated once, in its own words.
fn path_failure(e: &io::Error) -> Failure {
    #[cfg(target_os = "linux")]
    if let Some(code) = e.raw_os_error() {
        use nix::errno::Errno;
        let why = match Errno::from_raw(code) {
            // A local `prohibit` route (older kernels: also ICMP administratively prohibited).
            Errno::EACCES => Some("prohibited"),
            // ICMP protocol unreachable.
            Errno::ENOPROTOOPT | Errno::EPROTO => Some("protocol unreachable"),
            // ICMP host unknown, host isolated.
            Errno::EHOSTDOWN | Errno::ENONET => Some("host unreachable"),
            _ => None,
        };
        if let Some(why) = why {
            return Failure::Unreachable {
                detail: format!("{why}: {e}"),
            };
        }
    }
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
    AttemptError::Failed(path_failure(&e))
}

/// Notes a dropped message as the evidence for a later failure.
fn dropped(report: &mut ProbeReport, why: Mismatch, last: &mut Option<Dropped>) {
    report.ignored = report.ignored.saturating_add(1);
    *last = Some(match why {
        Mismatch::Malformed(detail) => Dropped::Malformed(detail),
        other => Dropped::Mismatched(other.to_string()),
    });
}

/// Receive buffer for UDP replies. We advertise 1232 bytes (EDNS_PAYLOAD); 4096 is the largest
/// payload servers commonly send even when asked for less. The buffer is one byte larger, so a
/// datagram that does not fit is seen at once (the kernel cuts it): if it is the reply to the
/// query, the probe fails as `malformed` saying so. Sized for memory: a sweep holds one buffer per
/// concurrent probe (300 for 100 namespaces x 3 targets).
const UDP_BUFFER: usize = 4096;

/// Mismatched messages one TCP connection may carry before the probe gives up on it: a server
/// that streams replies to other questions would otherwise keep a core busy until the deadline.
const MAX_MISMATCHED_FRAMES: u32 = 8;

/// Makes a socket from a source ready for tokio; a failure here means the probe never started.
fn udp_socket(socket: socket2::Socket, target: SocketAddr) -> Result<UdpSocket, AttemptError> {
    socket.set_nonblocking(true).map_err(not_probed)?;
    #[cfg(target_os = "linux")]
    receive_icmp_errors(&socket, target);
    #[cfg(not(target_os = "linux"))]
    let _ = target;
    UdpSocket::from_std(socket.into()).map_err(not_probed)
}

/// IP_RECVERR / IPV6_RECVERR: without them Linux reports only "hard" ICMP errors (port and
/// protocol unreachable, prohibited) on a connected UDP socket, and drops host and net
/// unreachable, which a probe would then see as a timeout after its whole deadline. Best effort:
/// a socket that refuses the option only loses the early answer.
/// The option is chosen by the target's family (the socket's, as a source must make it): one
/// system call per probe.
#[cfg(target_os = "linux")]
fn receive_icmp_errors(socket: &socket2::Socket, target: SocketAddr) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = match target {
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvErr, &true),
        SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4RecvErr, &true),
    };
}

/// An error on a connected UDP socket, as a failure, told by the ICMP error behind it when the
/// socket's error queue holds one (Linux): which error, and which router sent it. Recent kernels
/// report an ICMP "administratively prohibited" as EHOSTUNREACH; the queue tells them apart.
fn udp_failure(socket: &UdpSocket, e: &io::Error) -> Failure {
    #[cfg(target_os = "linux")]
    if let Some(icmp) = icmp::last_error(socket) {
        return icmp.failure(e);
    }
    let _ = socket;
    path_failure(e)
}

async fn udp_exchange(
    socket: socket2::Socket,
    target: SocketAddr,
    query: &Message,
    bytes: &[u8],
    deadline: Instant,
    report: &mut ProbeReport,
) -> Result<Message, AttemptError> {
    // Connecting filters other sources in the kernel and turns ICMP errors into socket errors;
    // an unbound socket gets a fresh ephemeral port here.
    let socket = udp_socket(socket, target)?;
    socket.connect(target).await.map_err(failed)?;
    if let Err(e) = socket.send(bytes).await {
        return Err(AttemptError::Failed(udp_failure(&socket, &e)));
    }
    let mut buf = vec![0u8; UDP_BUFFER + 1];
    let mut last = None;
    // No cap on datagrams that answer something else, unlike a TCP connection's frames: over
    // UDP anyone can send them from the target's address, and giving up after N would let a
    // spoofer fail a probe whose real answer is still on its way (RFC 5452 keeps waiting). The
    // deadline bounds the work, one buffer and the last description bound the memory.
    loop {
        let (n, from) = match timeout_at(deadline, socket.recv_from(&mut buf)).await {
            Err(_elapsed) => return Err(AttemptError::Timeout { dropped: last }),
            Ok(Err(e)) => return Err(AttemptError::Failed(udp_failure(&socket, &e))),
            Ok(Ok(got)) => got,
        };
        // Address and port; not an IPv6 scope, which the kernel reports only for addresses that
        // need one (`[::1%lo]` answers from plain `[::1]`).
        if from.ip() != target.ip() || from.port() != target.port() {
            report.ignored = report.ignored.saturating_add(1);
            continue;
        }
        let oversize = n > UDP_BUFFER;
        match accept_reply(query, &buf[..n.min(UDP_BUFFER)]) {
            Ok(_) | Err(Mismatch::Broken(_)) if oversize => {
                return Err(AttemptError::Failed(Failure::Malformed {
                    detail: format!(
                        "reply larger than {UDP_BUFFER} bytes (the receive buffer), though the query allowed at most {}",
                        crate::spec::EDNS_PAYLOAD
                    ),
                }));
            }
            Ok(reply) => return Ok(reply),
            Err(Mismatch::Broken(detail)) => {
                return Err(AttemptError::Failed(Failure::Malformed { detail }));
            }
            Err(why) => dropped(report, why, &mut last),
        }
    }
}

/// Sends both questions and collects the replies into `got` (the first's reply and when, and
/// whether the second's came) until both came or `deadline`. `Err` for a failure of the path
/// (an ICMP error), or a timeout with what was dropped, when the first's reply did not come.
async fn parallel_receive(
    socket: &UdpSocket,
    target: SocketAddr,
    queries: [&Message; 2],
    bytes: [&[u8]; 2],
    deadline: Instant,
    report: &mut ProbeReport,
    got: &mut (Option<(Message, Instant)>, bool),
) -> Result<(), AttemptError> {
    socket.connect(target).await.map_err(failed)?;
    if let Err(e) = socket.send(bytes[0]).await {
        return Err(AttemptError::Failed(udp_failure(socket, &e)));
    }
    // A companion the local firewall refuses (EPERM) is a lost one: the query's answer may
    // still come.
    let _ = socket.send(bytes[1]).await;
    let mut buf = vec![0u8; UDP_BUFFER + 1];
    let mut last = None;
    while got.0.is_none() || !got.1 {
        let (n, from) = match timeout_at(deadline, socket.recv_from(&mut buf)).await {
            Err(_elapsed) if got.0.is_some() => return Ok(()),
            Err(_elapsed) => return Err(AttemptError::Timeout { dropped: last }),
            Ok(Err(e)) => return Err(AttemptError::Failed(udp_failure(socket, &e))),
            Ok(Ok(x)) => x,
        };
        if from.ip() != target.ip() || from.port() != target.port() {
            report.ignored = report.ignored.saturating_add(1);
            continue;
        }
        let data = &buf[..n.min(UDP_BUFFER)];
        match accept_reply(queries[0], data) {
            Ok(reply) if n <= UDP_BUFFER => got.0 = Some((reply, Instant::now())),
            Ok(_) | Err(Mismatch::Broken(_)) if n > UDP_BUFFER => {
                return Err(AttemptError::Failed(Failure::Malformed {
                    detail: format!("reply larger than {UDP_BUFFER} bytes (the receive buffer)"),
                }));
            }
            Err(Mismatch::Broken(detail)) => {
                return Err(AttemptError::Failed(Failure::Malformed { detail }));
            }
            Ok(_) => {}
            Err(why) => match accept_reply(queries[1], data) {
                Ok(_) | Err(Mismatch::Broken(_)) => got.1 = true,
                Err(_) => dropped(report, why, &mut last),
            },
        }
    }
    Ok(())
}

async fn tcp_exchange(
    socket: socket2::Socket,
    target: SocketAddr,
    query: &Message,
    bytes: &[u8],
    deadline: Instant,
    report: &mut ProbeReport,
) -> Result<Message, AttemptError> {
    socket.set_nonblocking(true).map_err(not_probed)?;
    let socket = TcpSocket::from_std_stream(socket.into());
    let stream: TcpStream = match timeout_at(deadline, socket.connect(target)).await {
        Err(_) => return Err(AttemptError::Timeout { dropped: None }),
        Ok(r) => r.map_err(failed)?,
    };
    stream.set_nodelay(true).map_err(failed)?;
    stream_exchange(stream, query, bytes, deadline, report).await
}

/// A read or write error on a DNS-over-TCP stream, as a failure.
fn stream_failure(e: io::Error) -> AttemptError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        AttemptError::Failed(Failure::Io {
            detail: "the server closed the connection without a reply".into(),
        })
    } else {
        failed(e)
    }
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
    let mut last = None;
    let io = async {
        stream.write_all(&framed).await.map_err(stream_failure)?;
        let mut buf = Vec::new();
        let mut mismatched = 0u32;
        loop {
            let n = usize::from(stream.read_u16().await.map_err(stream_failure)?);
            buf.resize(n, 0);
            stream.read_exact(&mut buf).await.map_err(stream_failure)?;
            match accept_reply(query, &buf) {
                Ok(reply) => return Ok(reply),
                // Framing is intact but the message is not: nothing after it can be trusted.
                Err(Mismatch::Malformed(detail) | Mismatch::Broken(detail)) => {
                    report.ignored = report.ignored.saturating_add(1);
                    return Err(AttemptError::Failed(Failure::Malformed { detail }));
                }
                Err(why) => {
                    let what = why.to_string();
                    dropped(report, why, &mut last);
                    mismatched += 1;
                    if mismatched >= MAX_MISMATCHED_FRAMES {
                        return Err(AttemptError::Failed(Failure::Mismatched {
                            detail: format!(
                                "{mismatched} messages on one TCP connection answered something else (the last: {what}); gave up on it"
                            ),
                        }));
                    }
                }
            }
        }
    };
    match timeout_at(deadline, io).await {
        Err(_) => Err(AttemptError::Timeout { dropped: last }),
        Ok(result) => result,
    }
}

/// The ICMP error behind a socket error, from the socket's error queue (IP_RECVERR).
#[cfg(target_os = "linux")]
mod icmp {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    use tokio::net::UdpSocket;

    use crate::report::Failure;

    /// `SO_EE_ORIGIN_ICMP`, `SO_EE_ORIGIN_ICMP6`: the error came in an ICMP message.
    const ORIGIN_ICMP: u8 = 2;
    const ORIGIN_ICMP6: u8 = 3;

    /// One ICMP error: its type and code, and who sent it.
    #[derive(Debug)]
    pub(super) struct IcmpError {
        v6: bool,
        kind: u8,
        code: u8,
        from: Option<IpAddr>,
    }

    /// The oldest ICMP error queued on `socket`, if any; never blocks.
    pub(super) fn last_error(socket: &UdpSocket) -> Option<IcmpError> {
        let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
        let mut data = [0u8; 64];
        let mut iov = [io::IoSliceMut::new(&mut data)];
        let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
        let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)
            .ok()?;
        for c in msg.cmsgs().ok()? {
            let (v6, ee, from) = match c {
                ControlMessageOwned::Ipv4RecvErr(ee, from) => (
                    false,
                    ee,
                    from.map(|a| IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))),
                ),
                ControlMessageOwned::Ipv6RecvErr(ee, from) => (
                    true,
                    ee,
                    from.map(|a| IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr))),
                ),
                _ => continue,
            };
            if ee.ee_origin == ORIGIN_ICMP || ee.ee_origin == ORIGIN_ICMP6 {
                return Some(IcmpError {
                    v6,
                    kind: ee.ee_type,
                    code: ee.ee_code,
                    from,
                });
            }
        }
        None
    }

    impl IcmpError {
        /// What the ICMP error says, in words; `None` for a type this probe does not expect.
        fn words(&self) -> Option<&'static str> {
            Some(match (self.v6, self.kind, self.code) {
                (false, 3, 0 | 6 | 11) => "network unreachable",
                (false, 3, 1 | 7 | 12) => "host unreachable",
                (false, 3, 2) => "protocol unreachable",
                (false, 3, 3) => "port unreachable",
                (false, 3, 4) => "fragmentation needed",
                (false, 3, 9 | 10 | 13) => "prohibited (administratively)",
                (false, 3, 14 | 15) => "prohibited (precedence)",
                (true, 1, 0) => "no route to destination",
                (true, 1, 1) => "prohibited (administratively)",
                (true, 1, 2) => "beyond the scope of the source address",
                (true, 1, 3) => "address unreachable",
                (true, 1, 4) => "port unreachable",
                (true, 1, 5) => "prohibited (source address failed policy)",
                (true, 1, 6) => "prohibited (reject route)",
                (true, 2, _) => "packet too big",
                _ => return None,
            })
        }

        /// The failure, with the OS error stated once.
        pub(super) fn failure(&self, e: &io::Error) -> Failure {
            let Some(words) = self.words() else {
                return super::path_failure(e);
            };
            if words == "port unreachable" {
                return Failure::Refused;
            }
            let from = self
                .from
                .map(|ip| format!(" from {ip}"))
                .unwrap_or_default();
            let detail = format!("{words} (ICMP{from}): {e}");
            match words {
                "fragmentation needed" | "packet too big" => Failure::Io { detail },
                _ => Failure::Unreachable { detail },
            }
        }
    }
}
