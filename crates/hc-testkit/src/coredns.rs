//! What CoreDNS does that the lab's dnsmasq DNS pods do not, added to them for real:
//!
//! - [`ServiceRecords`]: the `kubernetes` plugin's job — each DNS pod serves
//!   `NAME.NAMESPACE.svc.cluster.local` for every Service of the fake API server, kept current
//!   by a sync per pod; a pod's sync can be stalled ([`ServiceRecords::stall`]), as a CoreDNS
//!   whose watch of the API stopped: it keeps answering from its old picture (stale records).
//! - [`HealthEndpoints`]: the `health` plugin (`GET /health`, 200 `OK` while the process lives)
//!   and the `ready` plugin (`GET /ready`, 200 `OK` when ready, 503 with the plugins not ready
//!   otherwise), on their own ports of a DNS pod's address, inside its namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::dnsmasq::Records;
use crate::fakeapi::Lister;
use crate::{ClusterLab, FakeApi, Netns};

/// How often each DNS pod's sync looks at the fake API server.
const SYNC_EVERY: Duration = Duration::from_millis(50);

/// The lab's stand-in for CoreDNS's `kubernetes` plugin (see the module's docs). Stops on drop.
#[derive(Debug)]
pub struct ServiceRecords {
    stalled: Arc<Mutex<BTreeSet<usize>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The records of every Service with a ClusterIP: `NAME.NAMESPACE.svc.DOMAIN` -> its address.
fn records(services: &[serde_json::Value], domain: &str) -> Vec<(String, IpAddr)> {
    let mut out: Vec<(String, IpAddr)> = services
        .iter()
        .filter_map(|s| {
            let ip: IpAddr = s["spec"]["clusterIP"].as_str()?.parse().ok()?;
            let m = &s["metadata"];
            let name = format!(
                "{}.{}.svc.{domain}",
                m["name"].as_str()?,
                m["namespace"].as_str()?
            );
            Some((name, ip))
        })
        .collect();
    out.sort();
    out
}

impl ServiceRecords {
    /// Keeps every DNS pod of `lab` serving the Services of `api` (domain `cluster.local`).
    pub fn start(api: &FakeApi, lab: &ClusterLab) -> ServiceRecords {
        let lister: Lister = api.lister();
        let pods: Vec<Records> = lab.dns.iter().map(|d| d.server.records()).collect();
        let stalled = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stalled.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut served: BTreeMap<usize, Vec<(String, IpAddr)>> = BTreeMap::new();
            while !sp.load(Ordering::SeqCst) {
                let now = records(&lister.all("api/v1", "services"), "cluster.local");
                let stalled = st.lock().unwrap().clone();
                for (k, pod) in pods.iter().enumerate() {
                    if stalled.contains(&k) || served.get(&k) == Some(&now) {
                        continue;
                    }
                    pod.set(&now);
                    served.insert(k, now.clone());
                }
                std::thread::sleep(SYNC_EVERY);
            }
        });
        ServiceRecords {
            stalled,
            stop,
            thread: Some(thread),
        }
    }

    /// DNS pod `k` stops syncing: it keeps serving what it had (a CoreDNS whose watch stalled).
    pub fn stall(&self, k: usize) {
        self.stalled.lock().unwrap().insert(k);
    }

    /// DNS pod `k` syncs again.
    pub fn resume(&self, k: usize) {
        self.stalled.lock().unwrap().remove(&k);
    }
}

impl Drop for ServiceRecords {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// CoreDNS's `health` and `ready` endpoints on a DNS pod (see the module's docs). Stops on drop.
#[derive(Debug)]
pub struct HealthEndpoints {
    ready: Arc<AtomicBool>,
    requests: Arc<AtomicU32>,
    _background: crate::background::Background,
}

impl HealthEndpoints {
    /// Serves `/health` on `ip:health_port` and `/ready` on `ip:ready_port`, inside `ns`.
    pub fn start_in(ns: &Netns, ip: IpAddr, health_port: u16, ready_port: u16) -> HealthEndpoints {
        let bind = |port| {
            let l = ns.run(|| std::net::TcpListener::bind(SocketAddr::new(ip, port)).unwrap());
            l.set_nonblocking(true).unwrap();
            l
        };
        let (health, ready_l) = (bind(health_port), bind(ready_port));
        let ready = Arc::new(AtomicBool::new(true));
        let requests = Arc::new(AtomicU32::new(0));
        let (r, n) = (ready.clone(), requests.clone());
        let background = crate::background::Background::spawn(move || async move {
            let serve = |l: std::net::TcpListener| {
                let (r, n) = (r.clone(), n.clone());
                async move {
                    let l = tokio::net::TcpListener::from_std(l).unwrap();
                    loop {
                        let Ok((stream, _)) = l.accept().await else {
                            continue;
                        };
                        let (r, n) = (r.clone(), n.clone());
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                n.fetch_add(1, Ordering::SeqCst);
                                let ready = r.load(Ordering::SeqCst);
                                async move { Ok::<_, Infallible>(answer(req.uri().path(), ready)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                }
            };
            tokio::join!(serve(health), serve(ready_l));
        });
        HealthEndpoints {
            ready,
            requests,
            _background: background,
        }
    }

    /// What `/ready` says from now on.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// As CoreDNS answers: `/health` 200 `OK`; `/ready` 200 `OK`, or 503 naming the plugin.
fn answer(
    path: &str,
    ready: bool,
) -> Response<http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>> {
    let (code, body) = match path {
        "/health" => (StatusCode::OK, "OK"),
        "/ready" if ready => (StatusCode::OK, "OK"),
        "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "kubernetes"),
        _ => (StatusCode::NOT_FOUND, "404 page not found"),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *r.status_mut() = code;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn services_become_records_headless_ones_do_not() {
        let svc = |ns: &str, name: &str, ip: &str| json!({"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip}});
        let r = records(
            &[
                svc("shop", "web", "10.96.7.7"),
                svc("shop", "db", "None"),
                svc("default", "kubernetes", "10.96.0.1"),
            ],
            "cluster.local",
        );
        assert_eq!(
            r,
            [
                (
                    "kubernetes.default.svc.cluster.local".to_owned(),
                    "10.96.0.1".parse().unwrap()
                ),
                (
                    "web.shop.svc.cluster.local".to_owned(),
                    "10.96.7.7".parse().unwrap()
                ),
            ]
        );
    }
}
