//! A CoreDNS-like server: hickory-server's authoritative in-memory zone `cluster.local.`
//! answering `kubernetes.default.svc.cluster.local. A 10.96.0.1`, over TCP directly and over UDP
//! through a relay that can drop every datagram — the fault to show: UDP dead, TCP alive.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// The answer the server gives for `kubernetes.default.svc.cluster.local`.
pub const API_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A socket could not be bound or set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The zone could not be built.
    #[error("the zone: {0}")]
    Zone(String),
    /// A part of the tour failed (the agent, the metrics server, the sweep).
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl DemoError {
    pub(crate) fn other(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        DemoError::Other(Box::new(e))
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> DemoError {
    move |source| DemoError::Io { what, source }
}

fn name(s: &str) -> Result<Name, DemoError> {
    Name::from_str(s).map_err(|e| DemoError::Zone(e.to_string()))
}

fn catalog() -> Result<Catalog, DemoError> {
    let origin = name("cluster.local.")?;
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        name("ns.dns.cluster.local.")?,
        name("hostmaster.cluster.local.")?,
        1,
        7200,
        1800,
        86400,
        30,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), 30, RData::SOA(soa)), 1);
    zone.upsert_mut(
        Record::from_rdata(
            name("kubernetes.default.svc.cluster.local.")?,
            5,
            RData::A(A(API_IP)),
        ),
        1,
    );
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    Ok(catalog)
}

/// A running server; [`DemoServer::set_drop_udp`] switches the fault. Stops on drop.
pub struct DemoServer {
    /// Where it answers, over UDP and TCP.
    pub addr: SocketAddr,
    drop_udp: Arc<AtomicBool>,
    _server: Server<Catalog>,
}

impl DemoServer {
    /// Serves on `udp` (the public socket, relayed) and `tcp`, both bound by the caller (possibly
    /// inside another network namespace, where they stay), on the caller's tokio runtime.
    pub async fn start(
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> Result<DemoServer, DemoError> {
        let addr = tcp.local_addr().map_err(io("the TCP listener"))?;
        udp.set_nonblocking(true).map_err(io("the UDP socket"))?;
        tcp.set_nonblocking(true).map_err(io("the TCP listener"))?;
        // hickory serves UDP on an inner socket next to the public one (same namespace): the
        // relay in front of it is where UDP can be dropped.
        let inner = std::net::UdpSocket::bind(SocketAddr::new(addr.ip(), 0))
            .map_err(io("the inner UDP socket"))?;
        inner
            .set_nonblocking(true)
            .map_err(io("the inner UDP socket"))?;
        let inner_addr = inner.local_addr().map_err(io("the inner UDP socket"))?;
        let mut server = Server::new(catalog()?);
        server.register_socket(UdpSocket::from_std(inner).map_err(io("the inner UDP socket"))?);
        let tcp = TcpListener::from_std(tcp).map_err(io("the TCP listener"))?;
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        let drop_udp = Arc::new(AtomicBool::new(false));
        let public = Arc::new(UdpSocket::from_std(udp).map_err(io("the UDP socket"))?);
        let dropping = drop_udp.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, client)) = public.recv_from(&mut buf).await else {
                    continue;
                };
                if dropping.load(Ordering::SeqCst) {
                    continue;
                }
                let query = buf[..n].to_vec();
                let public = public.clone();
                tokio::spawn(async move {
                    let Ok(s) = UdpSocket::bind(SocketAddr::new(inner_addr.ip(), 0)).await else {
                        return;
                    };
                    if s.send_to(&query, inner_addr).await.is_err() {
                        return;
                    }
                    let mut reply = vec![0u8; 4096];
                    if let Ok(Ok((m, _))) =
                        tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut reply)).await
                    {
                        let _ = public.send_to(&reply[..m], client).await;
                    }
                });
            }
        });
        Ok(DemoServer {
            addr,
            drop_udp,
            _server: server,
        })
    }

    /// Binds both sockets on `ip`, on one port free for both.
    pub fn bind(
        ip: std::net::IpAddr,
    ) -> Result<(std::net::UdpSocket, std::net::TcpListener), DemoError> {
        for _ in 0..50 {
            let tcp =
                std::net::TcpListener::bind(SocketAddr::new(ip, 0)).map_err(io("binding TCP"))?;
            let port = tcp.local_addr().map_err(io("binding TCP"))?.port();
            if let Ok(udp) = std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
                return Ok((udp, tcp));
            }
        }
        Err(DemoError::Io {
            what: "binding UDP and TCP on one port",
            source: std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("no port free for both on {ip}"),
            ),
        })
    }

    /// Starts or stops dropping UDP.
    pub fn set_drop_udp(&self, on: bool) {
        self.drop_udp.store(on, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for DemoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoServer")
            .field("addr", &self.addr)
            .field("drop_udp", &self.drop_udp.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}
