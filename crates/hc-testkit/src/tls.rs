//! A real TLS server not written here: `openssl s_server` (Debian's `openssl`) with a throwaway
//! self-signed certificate, inside a test's network namespace — the lab's API server endpoint
//! for the agents' TLS handshakes.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Netns;

/// A running `openssl s_server`; killed, and its key and certificate removed, on drop.
#[derive(Debug)]
pub struct TlsServer {
    child: Child,
    addr: SocketAddr,
    files: [PathBuf; 2],
}

fn openssl(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run openssl ({e}): install it with `apt-get install openssl` (.ci/run does)")
    })
}

impl TlsServer {
    /// Serves TLS on `addr` (an address of `ns`) with a certificate for `name`.
    pub fn start_in(ns: &Netns, addr: SocketAddr, name: &str) -> TlsServer {
        let base = std::env::temp_dir().join(crate::unique_name("hc-tls-"));
        let (key, cert) = (base.with_extension("key"), base.with_extension("crt"));
        let out = openssl(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=kubernetes",
                ])
                .arg("-addext")
                .arg(format!("subjectAltName=DNS:{name}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let child = ns
            .command("openssl")
            .args(["s_server", "-quiet", "-accept", &addr.to_string()])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start openssl s_server ({e}): install openssl"));
        let server = TlsServer {
            child,
            addr,
            files: [key, cert],
        };
        let until = Instant::now() + Duration::from_secs(10);
        while !ns.run(|| TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()) {
            assert!(
                Instant::now() < until,
                "openssl s_server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}
