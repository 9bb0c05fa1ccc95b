//! Running code inside a network namespace, on a dedicated OS thread.
//!
//! The network namespace is a property of a thread. Switching a tokio worker into another
//! namespace would leave every task later scheduled on it in the wrong one, so this module never
//! does: it spawns a thread of its own, enters the namespace there (`setns(2)`), runs the work and
//! lets the thread end. What the work creates — sockets, netlink connections — keeps the
//! namespace it was created in and can be used from any thread afterwards.

use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

use crate::error::NetnsError;

fn enter(path: &Path) -> Result<(), NetnsError> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: a `--netns` path that is a FIFO must not hang the open; setns refuses
    // anything that is not a namespace.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY).bits())
        .open(path)
        .map_err(|source| NetnsError::Open {
            path: path.to_owned(),
            source,
        })?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| NetnsError::Enter {
        path: path.to_owned(),
        source: std::io::Error::from(errno),
    })
}

/// Runs `f` inside the network namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`) on a
/// new OS thread, and returns what it returns.
///
/// ```no_run
/// let sock = hc_netns::run_in("/run/netns/pod-a".as_ref(), || std::net::UdpSocket::bind("0.0.0.0:0"))
///     .expect("entered")
///     .expect("bound");
/// // `sock` lives in pod-a's namespace, wherever it is used from now on.
/// # drop(sock);
/// ```
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(path)?;
            Ok(f())
        })
        .join()
        .map_err(|_| NetnsError::Thread {
            path: path.to_owned(),
        })?
    })
}

/// Runs `f` inside each namespace in turn on one dedicated OS thread (one `setns` per namespace,
/// no thread per namespace), and returns one result per path, in order. A namespace that cannot
/// be entered gets its error; the others go on.
pub fn run_in_each<T: Send>(
    paths: &[PathBuf],
    mut f: impl FnMut(&Path) -> T + Send,
) -> Vec<Result<T, NetnsError>> {
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            paths
                .iter()
                .map(|p| enter(p).map(|()| f(p)))
                .collect::<Vec<_>>()
        })
        .join()
    });
    out.unwrap_or_else(|_| {
        paths
            .iter()
            .map(|p| Err(NetnsError::Thread { path: p.clone() }))
            .collect()
    })
}
