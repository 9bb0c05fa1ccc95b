//! CoreDNS's own HTTP endpoints against what the nodes see: the gap the original tool was
//! written for. CoreDNS's `health` plugin answers `:8080/health` (what the kubelet's liveness
//! probe asks) and its `ready` plugin `:8181/ready` (the readiness probe); both can say 200
//! while pods cannot resolve over UDP. The controller reads both endpoints of each CoreDNS pod,
//! a rotating share per round, bounded (a timeout per request, a body cap, a concurrency cap),
//! and names the pods whose endpoints say healthy while its verdicts say DNS fails from the
//! nodes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use hc_exporter::{HealthGap, PodHttp};

use crate::agents::http_get_any;
use crate::classify::Verdict;
use crate::discovery::PodInfo;
use crate::view::View;

/// The largest body read from an endpoint (CoreDNS answers `OK`, or the plugins not ready).
pub const MAX_HTTP_BODY: usize = 4096;

/// Where and how CoreDNS's endpoints are read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpChecksConfig {
    /// The health plugin's port (8080); `None`: not read.
    pub health_port: Option<u16>,
    /// The ready plugin's port (8181); `None`: not read.
    pub ready_port: Option<u16>,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// Pods read per round at most (rotating over the rest).
    pub per_round: usize,
    /// Requests at once at most.
    pub concurrency: usize,
}

impl Default for HttpChecksConfig {
    fn default() -> Self {
        HttpChecksConfig {
            health_port: Some(8080),
            ready_port: Some(8181),
            timeout: Duration::from_secs(1),
            per_round: 16,
            concurrency: 8,
        }
    }
}

/// The last HTTP result of each CoreDNS pod (by UID).
#[derive(Debug, Clone, Default)]
pub struct HttpChecks {
    cfg: HttpChecksConfig,
    results: BTreeMap<String, (PodHttp, SystemTime)>,
    cursor: usize,
}

impl HttpChecks {
    /// Checks with `cfg`.
    pub fn new(cfg: HttpChecksConfig) -> Self {
        HttpChecks {
            cfg,
            ..HttpChecks::default()
        }
    }

    /// Some endpoint is to be read.
    pub fn enabled(&self) -> bool {
        self.cfg.health_port.is_some() || self.cfg.ready_port.is_some()
    }

    /// Reads the endpoints of at most `per_round` of `pods` (those with an address), rotating;
    /// forgets pods that are gone and results older than `window`.
    pub async fn check(&mut self, pods: &[PodInfo], window: Duration) {
        let with_ip: Vec<(&str, IpAddr)> = (pods.iter())
            .filter_map(|p| Some((p.uid.as_str(), p.ip?)))
            .collect();
        let now = SystemTime::now();
        self.results.retain(|uid, (_, at)| {
            with_ip.iter().any(|(u, _)| u == uid)
                && now.duration_since(*at).unwrap_or_default() <= window
        });
        if !self.enabled() || with_ip.is_empty() {
            return;
        }
        let n = self.cfg.per_round.max(1).min(with_ip.len());
        let start = self.cursor % with_ip.len();
        self.cursor = self.cursor.wrapping_add(n);
        let share: Vec<(&str, IpAddr)> = (0..n)
            .map(|i| with_ip[(start + i) % with_ip.len()])
            .collect();
        let cfg = &self.cfg;
        let read = futures_util::stream::iter(share)
            .map(|(uid, ip)| async move {
                let (health, ready) = tokio::join!(
                    endpoint(ip, cfg.health_port, "/health", cfg.timeout),
                    endpoint(ip, cfg.ready_port, "/ready", cfg.timeout)
                );
                (uid.to_owned(), health, ready)
            })
            .buffer_unordered(cfg.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let at = SystemTime::now();
        for (uid, health, ready) in read {
            let h = PodHttp {
                health,
                ready,
                checked_unix_ms: hc_exporter::unix_ms(at),
            };
            self.results.insert(uid, (h, at));
        }
    }

    /// The last result of the pod with this UID.
    pub fn of(&self, uid: &str) -> Option<&PodHttp> {
        self.results.get(uid).map(|(h, _)| h)
    }

    /// The pods whose endpoints say healthy while the verdicts say DNS fails from the nodes:
    /// a `pod` verdict on it, or `all`.
    pub fn gaps(&self, pods: &[PodInfo], verdicts: &[Verdict], view: &View) -> Vec<HealthGap> {
        gaps(pods, verdicts, view, |uid| self.of(uid))
    }
}

/// See [`HttpChecks::gaps`]; `http` gives each pod's last result.
fn gaps<'a>(
    pods: &[PodInfo],
    verdicts: &[Verdict],
    view: &View,
    http: impl Fn(&str) -> Option<&'a PodHttp>,
) -> Vec<HealthGap> {
    let all = verdicts.iter().any(|v| matches!(v, Verdict::All { .. }));
    let blamed = |uid: &str| {
        all || verdicts
            .iter()
            .any(|v| matches!(v, Verdict::Pod { uid: u, .. } if u == uid))
    };
    pods.iter()
        .filter(|p| blamed(&p.uid))
        .filter_map(|p| {
            let h = http(&p.uid).filter(|h| h.says_healthy())?;
            let (udp, tcp) = view.pod_reach(&p.uid);
            Some(HealthGap {
                pod: p.name.clone(),
                message: format!(
                    "CoreDNS pod {} answers /health {} and /ready {} (what the kubelet's probes ask), while DNS to it fails from {} of {} nodes over UDP and {} of {} over TCP",
                    p.name,
                    h.health,
                    h.ready,
                    udp.failing,
                    udp.reporting(),
                    tcp.failing,
                    tcp.reporting()
                ),
            })
        })
        .collect()
}

/// One endpoint's result: `ok` (200), `http-CODE`, `timeout`, `error`; `off` without a port.
async fn endpoint(ip: IpAddr, port: Option<u16>, path: &str, timeout: Duration) -> String {
    let Some(port) = port else {
        return "off".into();
    };
    let get = http_get_any(SocketAddr::new(ip, port), path, MAX_HTTP_BODY);
    match tokio::time::timeout(timeout, get).await {
        Err(_) => "timeout".into(),
        Ok(Err(_)) => "error".into(),
        Ok(Ok((200, _))) => "ok".into(),
        Ok(Ok((code, _))) => format!("http-{code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::{now, report};

    fn pod(name: &str) -> PodInfo {
        PodInfo {
            name: name.into(),
            uid: format!("uid-{name}"),
            ip: Some("10.244.0.5".parse().unwrap()),
            ..PodInfo::default()
        }
    }

    fn http(health: &str, ready: &str) -> PodHttp {
        PodHttp {
            health: health.into(),
            ready: ready.into(),
            checked_unix_ms: 1,
        }
    }

    #[test]
    fn a_gap_is_a_blamed_pod_whose_endpoints_say_healthy() {
        let pods = [pod("a"), pod("b"), pod("c")];
        let mut view = View::new(Duration::from_secs(120));
        for n in ["n1", "n2", "n3"] {
            let r = report(n, now(), &[("uid-a", false, true), ("uid-b", true, true)]);
            view.observe(&r, n, now());
        }
        let verdicts = [Verdict::Pod {
            uid: "uid-a".into(),
            name: "a".into(),
            failing: 3,
            reporting: 3,
        }];
        let results: BTreeMap<String, PodHttp> = [
            ("uid-a".to_owned(), http("ok", "ok")),
            ("uid-b".to_owned(), http("ok", "ok")),
            ("uid-c".to_owned(), http("ok", "ok")),
        ]
        .into();
        let g = gaps(&pods, &verdicts, &view, |u| results.get(u));
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].pod, "a");
        assert!(
            g[0].message.contains("fails from 3 of 3 nodes over UDP"),
            "{}",
            g[0].message
        );
        // Not ready: the ready plugin tells; no gap.
        let results: BTreeMap<String, PodHttp> =
            [("uid-a".to_owned(), http("ok", "http-503"))].into();
        assert!(gaps(&pods, &verdicts, &view, |u| results.get(u)).is_empty());
        // Unknown: no gap claimed.
        assert!(gaps(&pods, &verdicts, &view, |_| None).is_empty());
        // Every pod failing: every pod that says healthy is a gap.
        let all = [Verdict::All { pods: 3 }];
        let results: BTreeMap<String, PodHttp> = [
            ("uid-a".to_owned(), http("ok", "ok")),
            ("uid-b".to_owned(), http("ok", "off")),
        ]
        .into();
        let g = gaps(&pods, &all, &view, |u| results.get(u));
        assert_eq!(
            g.iter().map(|g| g.pod.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[tokio::test]
    async fn endpoints_are_read_with_a_timeout_and_classified() {
        // A listener that never answers: a timeout, not a hang.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let r = endpoint(ip, Some(port), "/health", Duration::from_millis(200)).await;
        assert_eq!(r, "timeout");
        drop(silent);
        let closed = hc_testkit::closed_port(ip);
        let r = endpoint(ip, Some(closed.port()), "/ready", Duration::from_secs(2)).await;
        assert_eq!(r, "error");
        assert_eq!(endpoint(ip, None, "/ready", Duration::ZERO).await, "off");
    }
}
