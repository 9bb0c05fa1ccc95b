//! Probe from inside another network namespace with sockets opened there.
//!
//! A socket belongs to the network namespace it was created in, for its whole life. So: enter
//! the namespace on a dedicated OS thread (never on a tokio worker, which would then run other
//! tasks in the wrong namespace), open the sockets, leave; then hand them to a `Prober`, which
//! drives them on the ordinary runtime.
//!
//! ```text
//! ip netns add demo && ip -n demo link set lo up
//! cargo run -p dnsprobe --example netns_socket -- demo 127.0.0.1:53
//! ```
//! (As root. In `demo` nothing listens on 127.0.0.1:53, so the probe is refused — from inside
//! the namespace, whatever listens on the host's loopback.)

#[cfg(target_os = "linux")]
fn open_in_netns(
    netns: &str,
    target: std::net::SocketAddr,
) -> std::io::Result<Vec<dnsprobe::socket2::Socket>> {
    use dnsprobe::{Transport, new_socket};
    use nix::sched::{CloneFlags, setns};

    let path = format!("/run/netns/{netns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = std::fs::File::open(&path)?;
            // This thread is ours alone and ends right after: it never has to switch back.
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            // One UDP and one TCP socket: one attempt per transport.
            Ok(vec![
                new_socket(Transport::Udp, target)?,
                new_socket(Transport::Tcp, target)?,
            ])
        })
        .join()
        .map_err(|_| std::io::Error::other("namespace thread panicked"))?
    })
}

#[cfg(target_os = "linux")]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use dnsprobe::{Preopened, ProbeSpec, Prober, TransportMode};

    let mut args = std::env::args().skip(1);
    let usage = "usage: netns_socket NETNS_NAME IP[:PORT]";
    let netns = args.next().ok_or(usage)?;
    let target = dnsprobe::parse_target(&args.next().ok_or(usage)?, 53)?;

    let sockets = open_in_netns(&netns, target)?;
    let prober = Prober::with_sockets(Preopened::new(sockets)?);
    let mut spec = ProbeSpec::new(target);
    spec.transport = TransportMode::Both;
    spec.tcp_fallback = false; // no spare TCP socket in the pool for a retry
    for r in prober.probe(&spec).await {
        let verdict = r
            .failure
            .as_ref()
            .map_or("ok".to_owned(), ToString::to_string);
        println!("from netns {netns}: {} {} {verdict}", r.target, r.transport);
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("network namespaces are Linux-only");
}
