//! # dnsprobe
//!
//! DNS health probes over UDP and TCP, the way a Kubernetes pod's resolver asks the cluster DNS —
//! and strict about what counts as an answer.
//!
//! A probe sends one query (default `kubernetes.default.svc.cluster.local. A`, RD set, EDNS(0)
//! with a 1232-byte payload) to one server over UDP, TCP or both, and returns a [`ProbeReport`]:
//! healthy or not, a typed [`Failure`] whose [`FailureKind`] has a stable lowercase name for
//! metric labels (`timeout`, `refused`, `rcode`, `wrong-answer`, ...), the response code, the
//! answers, the round-trip time with microsecond precision, the attempts used, the transport
//! that carried the reply and who sent it.
//!
//! ## On the wire
//! - RFC 5452: every query has a random transaction ID and leaves from a fresh ephemeral port
//!   (a new socket per query). A reply counts only if it comes from the queried address and port,
//!   has QR set, the same ID and echoes the question; anything else — a spoofed ID, an answer to
//!   another question, garbage — is dropped and the probe keeps waiting until its deadline, then
//!   says what came instead ([`FailureKind::Mismatched`]).
//! - A matching reply is never dropped: header and question are decoded first, then each record,
//!   keeping data hickory-proto cannot decode as raw bytes. Addresses count only for the name asked
//!   and its CNAME chain ([`answer_addresses`]).
//! - UDP sockets are connected and receive ICMP errors (`IP_RECVERR` on Linux), so port
//!   unreachable surfaces as `refused` and host, net and protocol unreachable or prohibited as
//!   `unreachable` at once instead of a timeout. A truncated UDP reply is retried over TCP (as
//!   `dig` and stub resolvers do) and the report says so ([`ProbeReport::truncated`],
//!   [`ProbeReport::transport_used`]).
//! - A probe that could not start (no socket) is [`FailureKind::NotProbed`]: not the target's
//!   failure.
//! - RFC 7766: TCP messages carry the 2-byte length prefix, sent in one segment with the message.
//!
//! ## Sockets from elsewhere
//! A [`Prober`] takes its sockets from a [`SocketSource`]: its own by default, or sockets the
//! caller opened — for instance inside another network namespace, where a socket stays after it
//! is created. See [`Preopened`] and `examples/netns_socket.rs`.
//!
//! ## Runtime
//! Probes are `async` and run on the caller's tokio runtime, which must have the I/O and time
//! drivers: `#[tokio::main]`, or a runtime built with `enable_io()` and `enable_time()` (or
//! `enable_all()`). A current-thread runtime is enough (and the cheapest); this crate enables
//! only tokio's `net`, `time`, `io-util` and `sync` features and starts no runtime of its own.
//!
//! ## Features
//! - `serde`: `JsonReport`, the JSON form of a report (`hc-cli probe --json`), written from
//!   a [`ProbeReport`] and read back into one.
//! - `clap`: `cli`, value parsers for a checker's command line (a target with or without a port,
//!   a query name, a record type, a response code, a duration bounded per flag), whose errors
//!   name the value, the flag and what to write instead.
//!
//! ## Why hickory-proto 0.26, wire format only
//! hickory-proto gives a complete, fuzzed DNS message codec. Since 0.26 its tokio transports live
//! in `hickory-net`; we do not use them: the probe owns its sockets so that it can accept sockets
//! from another namespace, validate every reply itself (source, ID, question), report each kind of
//! failure separately, and keep the dependency tree small (`std` feature only: no DNSSEC, no TLS).
//! The version is pinned to the 0.26 series (`~0.26.3`) because its types are part of this
//! crate's API (the crate is re-exported as [`crate::hickory_proto`]).
//!
//! ## Example
//! ```no_run
//! use std::time::Duration;
//! use dnsprobe::{AnswerExpectation, ProbeSpec, TransportMode};
//!
//! # async fn run() {
//! let spec = ProbeSpec::new("10.96.0.10:53".parse().unwrap())
//!     .with_transport(TransportMode::Both)
//!     .with_timeout(Duration::from_secs(1))
//!     .with_answer(AnswerExpectation::Contains(vec!["10.96.0.1".parse().unwrap()]));
//! for report in dnsprobe::probe(&spec).await {
//!     match &report.failure {
//!         None => println!("{} {} ok in {:?}", report.target, report.transport, report.rtt),
//!         Some(f) => println!("{} {} {}: {f}", report.target, report.transport, f.kind()),
//!     }
//! }
//! # }
//! ```

mod classify;
#[cfg(feature = "clap")]
pub mod cli;
mod error;
#[cfg(test)]
mod fuzz;
mod health;
#[cfg(feature = "serde")]
mod json;
mod probe;
mod report;
mod sockets;
mod spec;
mod verdict;
mod wire;
mod words;

pub use classify::{answer_addresses, classify};
#[cfg(feature = "serde")]
pub use error::JsonReportError;
pub use error::SpecError;
pub use health::{Health, HealthBook, HealthState, TargetHealth, Thresholds, Transition};
#[cfg(feature = "serde")]
pub use json::{JsonError, JsonReport};
pub use probe::{
    DEFAULT_MAX_IN_FLIGHT, InFlightLimit, Prober, probe, probe_many, probe_over_stream,
};
pub use report::{Failure, FailureKind, Parallel, ProbeReport};
pub use sockets::{OwnSockets, Preopened, SocketSource, new_socket};
pub use spec::{
    AnswerExpectation, DEFAULT_PORT, DEFAULT_QUERY_NAME, DEFAULT_TIMEOUT, EDNS_PAYLOAD,
    Expectation, ProbeSpec, Transport, TransportMode, parse_name, parse_rcode, parse_record_type,
    parse_target, rcode_name, record_type_name,
};
pub use verdict::TransportVerdict;
pub use words::{QueryWords, parse_query_words};

/// The DNS wire-format crate whose types ([`hickory_proto::rr::Name`],
/// [`hickory_proto::rr::RecordType`], [`hickory_proto::op::ResponseCode`], ...) appear in this API.
pub use hickory_proto;
/// The socket crate whose [`socket2::Socket`] a [`SocketSource`] hands out.
pub use socket2;
