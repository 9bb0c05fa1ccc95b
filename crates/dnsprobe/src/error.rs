//! Errors in what the caller asked for. Failures of the DNS path itself are not errors but
//! results: see [`crate::Failure`].

/// A probe specification that cannot be built from the input given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Not an IP address with an optional port.
    #[error(
        "invalid target {input:?}: expected an IP address with an optional port, e.g. 10.96.0.10, 10.96.0.10:53, ::1 or [::1]:53"
    )]
    InvalidTarget {
        /// What was given.
        input: String,
    },
    /// An unbracketed IPv6 address whose last group could be a port (`::1:5399`).
    #[error(
        "ambiguous target {input:?}: did you mean {suggestion}? Write an IPv6 address with a port in brackets ([::1]:5399); for the address itself, bracket it without a port ([::1:5399]) and give the port separately"
    )]
    AmbiguousTarget {
        /// What was given.
        input: String,
        /// The bracketed form with a port that was probably meant.
        suggestion: String,
    },
    /// An IPv6 zone (`%eth0`) that names no interface here.
    #[error("invalid target {input:?}: {reason}")]
    InvalidZone {
        /// What was given.
        input: String,
        /// Why the zone was rejected.
        reason: String,
    },
    /// Not a valid DNS name.
    #[error("invalid query name {}: {reason}", crate::spec::shown(input))]
    InvalidName {
        /// What was given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Not a known query type.
    #[error(
        "unknown query type {input:?}: use a mnemonic such as A, AAAA, SRV, TXT, PTR, or TYPE<n>"
    )]
    UnknownType {
        /// What was given.
        input: String,
    },
    /// A zone transfer (AXFR, IXFR) asked over UDP: zone transfers are TCP only here (RFC 5936
    /// §4.2 for AXFR).
    #[error("{query_type} is a zone transfer, asked over TCP only")]
    ZoneTransferOverUdp {
        /// `AXFR` or `IXFR`.
        query_type: String,
    },
    /// A query word given twice: two names, or two types ([`crate::parse_query_words`]).
    #[error("two {what}s, {first:?} and {second:?}: give one (and the server as @IP)")]
    RepeatedWord {
        /// `query name` or `query type`.
        what: &'static str,
        /// The first one given.
        first: String,
        /// The second one.
        second: String,
    },
    /// A query class other than `IN` ([`crate::parse_query_words`]).
    #[error("class {input} is not probed: cluster DNS answers class IN only (leave the class out)")]
    UnsupportedClass {
        /// What was given.
        input: String,
    },
    /// Not a known response code.
    #[error(
        "unknown response code {input:?}: use a mnemonic such as NOERROR, NXDOMAIN, SERVFAIL, or a number 0-4095"
    )]
    UnknownRcode {
        /// What was given.
        input: String,
    },
}

/// A JSON report that cannot be read back (feature `serde`).
#[cfg(feature = "serde")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid probe report: field {field}: {reason}")]
pub struct JsonReportError {
    /// The JSON field at fault (`name`, `type`, `rcode`, `error.kind`).
    pub field: &'static str,
    /// What was wrong with it.
    pub reason: String,
}
