//! Errors of this crate: each names the namespace or path and the cause, with the capability
//! to grant when it is a permission problem.

use std::io;
use std::path::PathBuf;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// The proc root cannot be listed, or holds no process directories.
    #[error(
        "cannot read proc root {path}: {reason} (give the host's /proc, e.g. --proc-root /host/proc in a DaemonSet)"
    )]
    ProcRoot {
        /// The proc root.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A namespace file cannot be opened.
    #[error("cannot open network namespace {path}: {source}{}", open_hint(.source))]
    Open {
        /// The namespace file (`/proc/PID/ns/net`, `/run/netns/NAME`).
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `setns(2)` into a namespace failed.
    #[error("cannot enter network namespace {path}: {source}{}", enter_hint(.source))]
    Enter {
        /// The namespace file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A netlink request in a namespace failed.
    #[error("netlink request in {namespace} failed: {detail}")]
    Netlink {
        /// Which namespace (its path, or "the current namespace").
        namespace: String,
        /// What failed.
        detail: String,
    },
    /// The dedicated thread that worked inside a namespace died.
    #[error("the thread working inside {path} panicked")]
    Thread {
        /// The namespace file.
        path: PathBuf,
    },
    /// A blocking task (a scan, opening sockets, a snapshot) panicked or was cancelled.
    #[error("{what} did not finish: {detail}")]
    Task {
        /// What the task was doing.
        what: &'static str,
        /// The runtime's words.
        detail: String,
    },
    /// `--netns NAME` names no namespace under the netns directories.
    #[error(
        "no network namespace named {name:?} under /run/netns or /var/run/netns (see `hc-cli netns list`)"
    )]
    UnknownName {
        /// The name given.
        name: String,
    },
}

fn open_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (opening another process's namespace needs CAP_SYS_PTRACE, or run as that user)"
        }
        io::ErrorKind::NotFound => " (the process exited or the namespace was removed)",
        _ => "",
    }
}

fn enter_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(1) => " (entering a network namespace needs CAP_SYS_ADMIN)",
        Some(22) => " (not a network namespace file)",
        _ => "",
    }
}
