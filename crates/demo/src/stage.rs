//! Two throwaway network namespaces for the sweep part of the demo: `<prefix>-ok` (loopback up,
//! a [`DemoServer`] inside on the given port, a resolv.conf naming 127.0.0.1) and
//! `<prefix>-broken` (loopback down, a resolv.conf naming 10.0.0.99). Removed on drop, also when
//! the demo is interrupted. Needs root.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use crate::server::{DemoError, DemoServer};

/// The namespaces and the server inside the healthy one.
#[derive(Debug)]
pub struct Stage {
    /// Their names under /run/netns: the healthy one first.
    pub names: Vec<String>,
    _server: Option<DemoServer>,
}

fn ip(args: &[&str]) -> Result<(), DemoError> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .map_err(|source| DemoError::Io {
            what: "running ip",
            source,
        })?;
    if st.success() {
        Ok(())
    } else {
        Err(DemoError::Io {
            what: "running ip",
            source: std::io::Error::other(format!(
                "`ip {}` failed (root and iproute2 needed)",
                args.join(" ")
            )),
        })
    }
}

impl Stage {
    /// Creates the namespaces and starts the server inside `<prefix>-ok` on 127.0.0.1:`port`.
    pub async fn create(prefix: &str, port: u16) -> Result<Stage, DemoError> {
        let mut stage = Stage {
            names: Vec::new(),
            _server: None,
        };
        for suffix in ["ok", "broken"] {
            let name = format!("{prefix}-{suffix}");
            ip(&["netns", "add", &name])?;
            stage.names.push(name);
        }
        ip(&["-n", &stage.names[0], "link", "set", "lo", "up"])?;
        for (name, ns) in stage.names.iter().zip(["127.0.0.1", "10.0.0.99"]) {
            let dir = PathBuf::from("/etc/netns").join(name);
            let write = std::fs::create_dir_all(&dir).and_then(|()| {
                std::fs::write(
                    dir.join("resolv.conf"),
                    format!("nameserver {ns}\noptions ndots:5\n"),
                )
            });
            write.map_err(|source| DemoError::Io {
                what: "writing /etc/netns",
                source,
            })?;
        }
        let path = PathBuf::from("/run/netns").join(&stage.names[0]);
        let sockets = hc_netns::run_in(&path, move || -> std::io::Result<_> {
            let lo = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            Ok((
                std::net::UdpSocket::bind(lo)?,
                std::net::TcpListener::bind(lo)?,
            ))
        })
        .map_err(|e| DemoError::Io {
            what: "entering the namespace",
            source: std::io::Error::other(e),
        })?;
        let (udp, tcp) = sockets.map_err(|source| DemoError::Io {
            what: "binding inside the namespace",
            source,
        })?;
        stage._server = Some(DemoServer::start(udp, tcp).await?);
        Ok(stage)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
            let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(n));
        }
    }
}
