//! The demo's DNS server: hickory-server's authoritative in-memory zone `cluster.local.`
//! answering `kubernetes.default.svc.cluster.local. A 10.96.0.1`, over TCP directly and over UDP
//! through a relay that can drop every datagram — the fault the demo injects: UDP dead, TCP alive.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// The answer the demo's cluster DNS gives.
pub(crate) const API_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

fn catalog() -> anyhow::Result<Catalog> {
    let origin = Name::from_str("cluster.local.")?;
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        Name::from_str("ns.dns.cluster.local.")?,
        Name::from_str("hostmaster.cluster.local.")?,
        1,
        7200,
        1800,
        86400,
        30,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), 30, RData::SOA(soa)), 1);
    zone.upsert_mut(
        Record::from_rdata(
            Name::from_str("kubernetes.default.svc.cluster.local.")?,
            5,
            RData::A(A(API_IP)),
        ),
        1,
    );
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    Ok(catalog)
}

/// A running demo server; `drop_udp` switches the fault.
pub(crate) struct DemoServer {
    pub(crate) addr: SocketAddr,
    drop_udp: Arc<AtomicBool>,
    _server: Server<Catalog>,
}

impl DemoServer {
    /// Serves on `udp` (the public socket, relayed) and `tcp`, both bound by the caller (possibly
    /// inside another network namespace, where they stay).
    pub(crate) async fn start(
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> anyhow::Result<DemoServer> {
        let addr = tcp.local_addr()?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        // hickory serves UDP on an inner socket next to the public one (same namespace): the
        // relay in front of it is where UDP can be dropped.
        let inner =
            std::net::UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).context("inner UDP socket")?;
        inner.set_nonblocking(true)?;
        let inner_addr = inner.local_addr()?;
        let mut server = Server::new(catalog()?);
        server.register_socket(UdpSocket::from_std(inner)?);
        server.register_listener(TcpListener::from_std(tcp)?, Duration::from_secs(5), 4096);
        let drop_udp = Arc::new(AtomicBool::new(false));
        let public = Arc::new(UdpSocket::from_std(udp)?);
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
    pub(crate) fn bind(
        ip: std::net::IpAddr,
    ) -> anyhow::Result<(std::net::UdpSocket, std::net::TcpListener)> {
        for _ in 0..50 {
            let tcp = std::net::TcpListener::bind(SocketAddr::new(ip, 0))?;
            let port = tcp.local_addr()?.port();
            if let Ok(udp) = std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
                return Ok((udp, tcp));
            }
        }
        anyhow::bail!("no port free for both UDP and TCP on {ip}")
    }

    /// Starts or stops dropping UDP.
    pub(crate) fn set_drop_udp(&self, on: bool) {
        self.drop_udp.store(on, Ordering::SeqCst);
    }
}
