//! Command-line values for a DNS checker, as [clap] value parsers (feature `clap`): a target
//! (`IP`, `IP:PORT`, `[IPv6]:PORT`, with a zone), a query name, a record type, a response code
//! and a bounded duration. Each error names the value (quoted with escapes, cut short when long),
//! the flag and what to write instead, as a usage error.
//!
//! ```
//! use std::time::Duration;
//! use clap::Parser;
//! use dnsprobe::cli::{DurationParser, NameParser, TargetArg, parse_target_arg};
//! use dnsprobe::hickory_proto::rr::Name;
//!
//! #[derive(Debug, Parser)]
//! struct Args {
//!     #[arg(long, value_parser = parse_target_arg)]
//!     target: TargetArg,
//!     #[arg(long, value_parser = NameParser)]
//!     name: Name,
//!     #[arg(long, default_value = "2s", value_parser = DurationParser)]
//!     timeout: Duration,
//! }
//!
//! let a = Args::parse_from(["x", "--target", "[::1]:5353", "--name", "example.org"]);
//! assert_eq!(a.target.with_default_port(53).to_string(), "[::1]:5353");
//! assert_eq!(a.timeout, Duration::from_secs(2));
//! let err = Args::try_parse_from(["x", "--target", "::1", "--name", "a..b"]).unwrap_err();
//! assert!(err.to_string().contains("invalid query name \"a..b\" for '--name <NAME>'"));
//! let err = Args::try_parse_from(["x", "--target", "::1", "--name", "a", "--timeout", "2h"]);
//! assert!(err.unwrap_err().to_string().contains("--timeout is at most 1h"));
//! ```

use std::ffi::OsStr;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::{DEFAULT_PORT, SpecError};

/// A target as typed: the port is filled from a default when absent ([`parse_target_arg`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetArg {
    /// The address.
    pub ip: IpAddr,
    /// The port, when one was written.
    pub port: Option<u16>,
    /// The IPv6 zone's interface index (`fe80::1%eth0`), 0 for none.
    pub scope_id: u32,
}

impl TargetArg {
    /// The socket address, with `port` where none was written.
    pub fn with_default_port(&self, port: u16) -> SocketAddr {
        let port = self.port.unwrap_or(port);
        match self.ip {
            IpAddr::V6(v6) => SocketAddrV6::new(v6, port, 0, self.scope_id).into(),
            IpAddr::V4(_) => SocketAddr::new(self.ip, port),
        }
    }
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT`, a bare IPv6 address, with an optional zone;
/// [`crate::parse_target`] decides (and refuses `::1:5399`, which looks like a port without
/// brackets). Port 0 is refused. Use it as `value_parser = parse_target_arg`.
pub fn parse_target_arg(s: &str) -> Result<TargetArg, String> {
    let t = s.trim();
    let explicit_port = if t.starts_with('[') {
        t.contains("]:")
    } else {
        t.parse::<SocketAddrV4>().is_ok()
    };
    let addr = crate::parse_target(t, DEFAULT_PORT).map_err(|e| {
        // `--target IP NAME TYPE`: a flag that takes several values took the words too.
        let word = t.chars().any(|c| c.is_ascii_alphabetic() && c > 'f')
            || crate::parse_record_type(t).is_ok();
        let hint = "; a name or type after --target is read as another target: write the server as @IP, or put --target last";
        format!("{e}{}", if word { hint } else { "" })
    })?;
    if explicit_port && addr.port() == 0 {
        return Err("port 0 is not a DNS port: give 1-65535, or leave the port out".into());
    }
    Ok(TargetArg {
        ip: addr.ip(),
        port: explicit_port.then_some(addr.port()),
        scope_id: match addr {
            SocketAddr::V6(v6) => v6.scope_id(),
            SocketAddr::V4(_) => 0,
        },
    })
}

/// A record type: `A`, `AAAA`, `SRV`, ... or `TYPE<n>` ([`crate::parse_record_type`]).
pub fn parse_type_arg(s: &str) -> Result<RecordType, String> {
    crate::parse_record_type(s).map_err(|e| e.to_string())
}

/// A response code: a mnemonic (`NXDOMAIN`) or a number ([`crate::parse_rcode`]).
pub fn parse_rcode_arg(s: &str) -> Result<ResponseCode, String> {
    crate::parse_rcode(s).map_err(|e| e.to_string())
}

/// The value parser of a query name: [`crate::parse_name`], with the value shown once, quoted
/// with escapes (a space, a tab, an empty label show) and cut short when long.
#[derive(Debug, Clone, Copy)]
pub struct NameParser;

impl TypedValueParser for NameParser {
    type Value = Name;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Name, clap::Error> {
        let text = value.to_string_lossy();
        crate::parse_name(&text).map_err(|e| {
            let why = match e {
                SpecError::InvalidName { reason, .. } => reason,
                other => other.to_string(),
            };
            value_error(cmd, arg, "query name", &text, &why)
        })
    }
}

/// A value parser made of a function, its error stated as [`NameParser`]'s: `invalid WHAT
/// "VALUE" for '--flag <V>': why`. `Checked("cluster domain", parse_domain)`.
#[derive(Debug, Clone, Copy)]
pub struct Checked<T>(pub &'static str, pub fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.1)(&text).map_err(|why| value_error(cmd, arg, self.0, &text, &why))
    }
}

/// `invalid WHAT "VALUE" for '--flag <V>': why`, the value quoted with escapes and cut short
/// when long, so that it is stated once and what is invisible shows.
fn value_error(
    cmd: &clap::Command,
    arg: Option<&clap::Arg>,
    what: &str,
    value: &str,
    why: &str,
) -> clap::Error {
    const SHOWN: usize = 64;
    let shown = if value.chars().count() <= SHOWN {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN).collect();
        format!("{head:?}... ({} bytes)", value.len())
    };
    let flag = arg.map(ToString::to_string).unwrap_or_else(|| "...".into());
    clap::Error::raw(
        ErrorKind::ValueValidation,
        format!("invalid {what} {shown} for '{flag}': {why}\n"),
    )
    .with_cmd(cmd)
}

/// The longest duration a timeout flag accepts (a flag whose long name holds `timeout`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest duration any other flag accepts (an interval, a window).
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// A duration as a person writes it (`300ms`, `2s`, `1m`, `1h 30m`), zero included; the error
/// says how to write one.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}: write a duration such as 300ms, 2s or 1m"))
}

/// A positive duration ([`parse_duration`]) bounded by the flag it is given to: a timeout at
/// most [`MAX_TIMEOUT`], anything else at most [`MAX_DURATION`]. `flag` is the long name.
pub fn duration_within(s: &str, flag: Option<&str>) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    let (max, limit) = match flag {
        Some(f) if f.contains("timeout") => (MAX_TIMEOUT, "1h"),
        _ => (MAX_DURATION, "1 day"),
    };
    if d > max {
        let flag = flag
            .map(|f| format!("--{f}"))
            .unwrap_or_else(|| "it".into());
        return Err(format!("{flag} is at most {limit}"));
    }
    Ok(d)
}

/// The value parser of a duration flag: clap hands it the flag, so each flag gets its own bound
/// ([`duration_within`]); out of bounds is a usage error naming the limit, where a huge value
/// would overflow later.
#[derive(Debug, Clone, Copy)]
pub struct DurationParser;

impl TypedValueParser for DurationParser {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Duration, clap::Error> {
        let flag = arg.and_then(clap::Arg::get_long);
        let text = value
            .to_str()
            .ok_or_else(|| clap::Error::raw(ErrorKind::InvalidUtf8, "not UTF-8\n").with_cmd(cmd))?;
        duration_within(text, flag).map_err(|why| value_error(cmd, arg, "value", text, &why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_per_flag() {
        assert_eq!(
            duration_within("2s", Some("timeout")),
            Ok(Duration::from_secs(2))
        );
        assert_eq!(
            duration_within("2h", Some("timeout")),
            Err("--timeout is at most 1h".into())
        );
        assert!(duration_within("2h", Some("interval")).is_ok());
        assert_eq!(
            duration_within("300000000000y", Some("interval")),
            Err("--interval is at most 1 day".into())
        );
        assert!(duration_within("0s", Some("interval")).is_err());
    }

    #[test]
    fn targets_keep_whether_a_port_was_given() {
        assert_eq!(parse_target_arg("10.0.0.1").unwrap().port, None);
        assert_eq!(parse_target_arg("::1").unwrap().port, None);
        assert_eq!(parse_target_arg("[::1]").unwrap().port, None);
        assert_eq!(parse_target_arg("[::1]:5353").unwrap().port, Some(5353));
        assert!(
            parse_target_arg("10.0.0.1:0")
                .unwrap_err()
                .contains("port 0")
        );
        assert!(
            parse_target_arg("coredns")
                .unwrap_err()
                .contains("invalid target")
        );
    }
}
