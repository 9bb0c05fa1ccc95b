//! Exit statuses, a contract scripts depend on (docs/cli.md), and the one error type every
//! command returns: `main` prints it once and exits with its status.

use std::fmt;

/// Every check healthy.
pub(crate) const HEALTHY: u8 = 0;
/// At least one check unhealthy.
pub(crate) const UNHEALTHY: u8 = 1;
/// Bad usage or configuration (clap uses 2 for its own usage errors too).
pub(crate) const USAGE: u8 = 2;
/// Something failed at run time: a port in use, the API unreachable, a namespace that cannot
/// be read, nothing to probe.
pub(crate) const RUNTIME: u8 = 3;

/// An error and the exit status it maps to.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// What a command returns: its exit status, or an error with one.
pub(crate) type Result<T = u8> = std::result::Result<T, Error>;

/// A usage or configuration error (exit 2).
pub(crate) fn usage(e: impl Into<anyhow::Error>) -> Error {
    Error {
        code: USAGE,
        error: e.into(),
    }
}

/// A run-time error (exit 3).
pub(crate) fn runtime(e: impl Into<anyhow::Error>) -> Error {
    Error {
        code: RUNTIME,
        error: e.into(),
    }
}

/// 0 when healthy, 1 when not.
pub(crate) fn status(healthy: bool) -> u8 {
    if healthy { HEALTHY } else { UNHEALTHY }
}

/// Maps errors to an exit status: `.usage()?` or `.runtime()?`.
pub(crate) trait Context<T> {
    /// As a usage error.
    fn usage(self) -> Result<T>;
    /// As a run-time error.
    fn runtime(self) -> Result<T>;
}

impl<T, E: Into<anyhow::Error>> Context<T> for std::result::Result<T, E> {
    fn usage(self) -> Result<T> {
        self.map_err(usage)
    }
    fn runtime(self) -> Result<T> {
        self.map_err(runtime)
    }
}
