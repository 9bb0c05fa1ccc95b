//! The documents of three checks beside DNS health: how fast a new or changed Service resolves
//! (the controller's freshness check), CoreDNS's own HTTP health endpoints against what the
//! nodes see (the controller), and the API server reached through cluster DNS (the agent).
//! Field names are a contract (docs/metrics.md): added to, never renamed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The agent's check of the API server through cluster DNS (kubenurse's `api-dns`): resolve
/// `kubernetes.default.svc.<cluster domain>` through the DNS Service and complete a TLS
/// handshake with the address it answers. Reported apart from DNS health: it neither makes nor
/// breaks the agent's `healthy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiDnsStatus {
    /// `ok`, or where it failed: `dns` (no usable answer), `wrong-address` (the answer lacks
    /// the ClusterIP of `default/kubernetes`), `connect` (no TCP connection), `tls` (no TLS
    /// handshake).
    pub result: String,
    /// The name resolved.
    pub name: String,
    /// The DNS server asked (`ip:port`).
    pub resolver: String,
    /// The address connected to (`ip:port`), once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// What went wrong, in plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Round-trip time of the DNS answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    /// TCP connection and TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// When it was checked, milliseconds since the Unix epoch.
    pub checked_unix_ms: u64,
}

impl ApiDnsStatus {
    /// The results an `api_dns_checks_total` series can have (each created at 0).
    pub const RESULTS: [&'static str; 5] = ["ok", "dns", "wrong-address", "connect", "tls"];

    /// The check passed.
    pub fn ok(&self) -> bool {
        self.result == "ok"
    }
}

/// A CoreDNS pod's own HTTP endpoints as the controller last read them: the health plugin's
/// `/health` (what the kubelet's liveness probe asks) and the ready plugin's `/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodHttp {
    /// `/health`: `ok` (200), `http-CODE`, `timeout`, `error`; `off` when not checked.
    pub health: String,
    /// `/ready`: as `health`.
    pub ready: String,
    /// When read, milliseconds since the Unix epoch.
    pub checked_unix_ms: u64,
}

impl PodHttp {
    /// Every endpoint checked says healthy, and at least one was checked.
    pub fn says_healthy(&self) -> bool {
        let ok = |s: &str| s == "ok" || s == "off";
        ok(&self.health) && ok(&self.ready) && (self.health == "ok" || self.ready == "ok")
    }
}

/// A CoreDNS pod whose HTTP endpoints say healthy while DNS fails from the nodes: the gap the
/// kubelet's HTTP liveness probe cannot see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthGap {
    /// The pod's name.
    pub pod: String,
    /// In plain words, with the evidence.
    pub message: String,
}

/// A name that still resolves to the address of a deleted or replaced Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleRecord {
    /// The name (`svc.ns.svc.cluster.local.`).
    pub name: String,
    /// The old address it still answers.
    pub address: String,
    /// The Service's address now, if it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// `deleted` or `changed`.
    pub event: String,
    /// Since when (the change), milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// The CoreDNS pods that answered the old address when asked directly (empty: seen through
    /// the Service only).
    #[serde(default)]
    pub pods: Vec<String>,
}

/// How one followed Service ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreshnessResult {
    /// The name followed.
    pub name: String,
    /// `added`, `changed` or `deleted`.
    pub event: String,
    /// `propagated`, `stale` or `not-propagated`.
    pub result: String,
    /// For `propagated`: seconds from the change to the first of the consecutive right answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// The controller's freshness check: Services followed now, the last results, the names still
/// answering an old address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FreshnessView {
    /// Services followed now (at most `--freshness-follow`).
    pub followed: usize,
    /// Changes not followed because the cap was reached, since start.
    pub skipped: u64,
    /// The last results, newest last (10 at most).
    pub last: Vec<FreshnessResult>,
    /// Names still resolving to an old or deleted Service's address.
    pub stale: Vec<StaleRecord>,
}

impl fmt::Display for StaleRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} still answers {} ({} Service",
            self.name, self.address, self.event
        )?;
        match &self.current {
            Some(c) => write!(f, ", now {c})")?,
            None => write!(f, ")")?,
        }
        match self.pods.as_slice() {
            [] => Ok(()),
            pods => write!(f, " from {}", pods.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_says_healthy_only_when_every_checked_endpoint_does() {
        let h = |health: &str, ready: &str| PodHttp {
            health: health.into(),
            ready: ready.into(),
            checked_unix_ms: 1,
        };
        assert!(h("ok", "ok").says_healthy());
        assert!(h("ok", "off").says_healthy());
        assert!(!h("ok", "http-503").says_healthy());
        assert!(!h("timeout", "ok").says_healthy());
        assert!(!h("off", "off").says_healthy(), "nothing checked");
    }
}
