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
        io::ErrorKind::PermissionDenied => denied_hint(),
        io::ErrorKind::NotFound => " (the process exited or the namespace was removed)",
        _ => "",
    }
}

fn enter_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(1) if has_capability(CAP_SYS_ADMIN) => {
            " (the namespace belongs to another user namespace, where this process has no rights)"
        }
        Some(1) => " (entering a network namespace needs CAP_SYS_ADMIN)",
        Some(22) => " (not a network namespace file)",
        _ => "",
    }
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_PTRACE: u32 = 19;

/// Whether this process has capability `cap` in its effective set (`CapEff` of
/// `/proc/self/status`).
fn has_capability(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|eff| eff & (1 << cap) != 0)
}

/// Why opening another process's `/proc/PID/ns/net` was refused: the capability to grant when
/// it is missing; when it is there, the other process is out of reach (another user namespace,
/// a security module), and granting it again would not help.
pub(crate) fn denied_hint() -> &'static str {
    if has_capability(CAP_SYS_PTRACE) {
        " (this process has CAP_SYS_PTRACE: the other process is in another user namespace or protected by a security module)"
    } else {
        " (opening another process's namespace needs CAP_SYS_PTRACE, or run as that user)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_blames_the_capability_only_when_it_is_missing() {
        let e = NetnsError::Open {
            path: "/proc/1/ns/net".into(),
            source: io::Error::from_raw_os_error(13),
        }
        .to_string();
        // The OS error once, then the hint that fits this process.
        assert_eq!(e.matches("Permission denied").count(), 1, "{e}");
        if has_capability(CAP_SYS_PTRACE) {
            assert!(
                e.contains("another user namespace") && !e.contains("needs CAP_SYS_PTRACE"),
                "{e}"
            );
        } else {
            assert!(e.contains("needs CAP_SYS_PTRACE"), "{e}");
        }
    }
}
