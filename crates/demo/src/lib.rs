//! # hc_demo
//!
//! The stage of `hc-cli demo`, usable for anyone's drill of their DNS alerting:
//!
//! - [`DemoServer`]: a CoreDNS-like authoritative server (hickory-server, zone `cluster.local.`,
//!   `kubernetes.default.svc.cluster.local. A 10.96.0.1`) on sockets you bind, whose UDP can be
//!   switched off while TCP keeps answering — the failure an HTTP liveness probe cannot see.
//! - [`Stage`] (Linux, root): two throwaway network namespaces, one healthy with the server
//!   inside, one broken; removed on drop.
//! - [`tour`] (Linux): `hc-cli demo` itself — the real agent round ([`hc_agent::Agent`])
//!   against the server, a scripted UDP outage and its recovery, an excerpt of `/metrics` and
//!   `/status` read over HTTP while the outage is on, and as root a sweep of the [`Stage`] with
//!   the fault it planted named and its diagnosis one finding per line.
//!
//! The server runs on the caller's tokio runtime (I/O and time drivers enabled).
//!
//! ```no_run
//! # async fn run() -> Result<(), hc_demo::DemoError> {
//! let (udp, tcp) = hc_demo::DemoServer::bind("127.0.0.1".parse().unwrap())?;
//! let server = hc_demo::DemoServer::start(udp, tcp).await?;
//! println!("answering on {}", server.addr);
//! server.set_drop_udp(true); // UDP dead, TCP alive
//! # Ok(()) }
//! ```

#[cfg(target_os = "linux")]
mod excerpt;
mod server;
#[cfg(target_os = "linux")]
mod stage;
#[cfg(target_os = "linux")]
mod tour;

pub use server::{API_IP, DemoError, DemoServer};
#[cfg(target_os = "linux")]
pub use stage::Stage;
#[cfg(target_os = "linux")]
pub use tour::{FAULT, Line, ROUNDS, TourOptions, is_root, tour};
