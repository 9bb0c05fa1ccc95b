//! Where probe sockets come from.
//!
//! By default a probe opens its own socket for every query. A caller can instead supply sockets
//! through a [`SocketSource`]: a closure or a [`Preopened`] pool. A socket keeps the network
//! namespace it was created in, so sockets opened inside a pod's network namespace (on a thread
//! that entered it) and handed to a probe make that probe run from the pod's point of view, while
//! the probe itself runs on an ordinary tokio worker.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use socket2::{Domain, Protocol, Socket, Type};

use crate::spec::Transport;

/// Supplies one fresh, unconnected socket per query.
///
/// The probe takes the socket, makes it non-blocking, binds it to an ephemeral port if it is not
/// bound yet, and connects it to the target. `open` is called on the async runtime: it must not
/// block for long. When opening is expensive (entering a namespace), open the sockets ahead of
/// time and hand them over in a [`Preopened`] pool.
///
/// Any `Fn(Transport, SocketAddr) -> io::Result<Socket>` closure is a source:
///
/// ```
/// use dnsprobe::{socket2::{Domain, Socket, Type}, Prober, Transport};
///
/// let prober = Prober::with_sockets(|transport, target: std::net::SocketAddr| {
///     let ty = match transport { Transport::Udp => Type::DGRAM, Transport::Tcp => Type::STREAM };
///     // Here one could set an fwmark, bind to a device, or be inside another namespace.
///     Socket::new(Domain::for_address(target), ty, None)
/// });
/// # drop(prober);
/// ```
pub trait SocketSource: Send + Sync {
    /// A new socket for one query over `transport` to `target`.
    fn open(&self, transport: Transport, target: SocketAddr) -> io::Result<Socket>;
}

impl<F> SocketSource for F
where
    F: Fn(Transport, SocketAddr) -> io::Result<Socket> + Send + Sync,
{
    fn open(&self, transport: Transport, target: SocketAddr) -> io::Result<Socket> {
        self(transport, target)
    }
}

/// The default source: a new socket in the caller's own network namespace for every query, so
/// every query leaves from a fresh ephemeral port chosen (randomly, on Linux) by the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnSockets;

impl SocketSource for OwnSockets {
    fn open(&self, transport: Transport, target: SocketAddr) -> io::Result<Socket> {
        new_socket(transport, target)
    }
}

/// A new unconnected socket of the right family and type for `transport` to `target`.
pub fn new_socket(transport: Transport, target: SocketAddr) -> io::Result<Socket> {
    let (ty, proto) = match transport {
        Transport::Udp => (Type::DGRAM, Protocol::UDP),
        Transport::Tcp => (Type::STREAM, Protocol::TCP),
    };
    Socket::new(Domain::for_address(target), ty, Some(proto))
}

/// A pool of sockets opened ahead of time, handed out one per query: UDP sockets to UDP queries,
/// TCP sockets to TCP queries. When the pool has none of the kind needed, the query fails with an
/// I/O error that says so (open one socket per transport and attempt, plus one TCP socket per UDP
/// probe that may fall back to TCP after truncation).
///
/// A pool can also hold the errors met while opening ([`Preopened::from_results`]): each is
/// handed, in turn, to the query that would have used the socket, so the probe reports it.
pub struct Preopened {
    udp: Mutex<Vec<io::Result<Socket>>>,
    tcp: Mutex<Vec<io::Result<Socket>>>,
}

impl Preopened {
    /// A pool of `sockets`, sorted by their type (datagram or stream).
    pub fn new(sockets: impl IntoIterator<Item = Socket>) -> io::Result<Self> {
        let (mut udp, mut tcp) = (Vec::new(), Vec::new());
        for s in sockets {
            match s.r#type()? {
                Type::DGRAM => udp.push(Ok(s)),
                Type::STREAM => tcp.push(Ok(s)),
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("socket of type {other:?} is neither UDP nor TCP"),
                    ));
                }
            }
        }
        // Handed out from the end: reverse so they go in the order given.
        udp.reverse();
        tcp.reverse();
        Ok(Preopened {
            udp: Mutex::new(udp),
            tcp: Mutex::new(tcp),
        })
    }

    /// A pool for `transport` only, of sockets or of the errors met opening them, handed out in
    /// the order given.
    pub fn from_results(
        transport: Transport,
        results: impl IntoIterator<Item = io::Result<Socket>>,
    ) -> Self {
        let mut pool: Vec<io::Result<Socket>> = results.into_iter().collect();
        pool.reverse();
        let (udp, tcp) = match transport {
            Transport::Udp => (pool, Vec::new()),
            Transport::Tcp => (Vec::new(), pool),
        };
        Preopened {
            udp: Mutex::new(udp),
            tcp: Mutex::new(tcp),
        }
    }

    /// How many (UDP, TCP) entries are left.
    pub fn remaining(&self) -> (usize, usize) {
        (lock(&self.udp).len(), lock(&self.tcp).len())
    }
}

type Pool = Vec<io::Result<Socket>>;

fn lock(m: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    // A poisoned pool still holds valid sockets.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl fmt::Debug for Preopened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (udp, tcp) = self.remaining();
        f.debug_struct("Preopened")
            .field("udp", &udp)
            .field("tcp", &tcp)
            .finish()
    }
}

impl SocketSource for Preopened {
    fn open(&self, transport: Transport, _target: SocketAddr) -> io::Result<Socket> {
        let pool = match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
        };
        lock(pool).pop().unwrap_or_else(|| {
            Err(io::Error::other(format!(
                "the pre-opened socket pool has no {transport} socket left"
            )))
        })
    }
}
