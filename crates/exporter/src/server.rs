//! The admin HTTP server: `/metrics`, `/healthz`, `/readyz`, `/status`.
//!
//! HTTP/1.1 only, GET and HEAD only (405 otherwise), a 2 s header-read timeout so a slow client
//! cannot hold a connection open, one task per connection on the caller's runtime, at most
//! [`MAX_CONNECTIONS`] of them (the oldest closed for a new one) and 8 KiB read buffers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::status::Status;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The OpenMetrics text content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding the listening address failed.
    #[error("cannot listen on {addr}: {source} (choose another --metrics-addr, or free the port)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

#[derive(Debug)]
struct State {
    registry: Registry,
    shutting_down: AtomicBool,
    /// What was last published, written and read as one: `/status` and `/readyz` never
    /// disagree about a round (a reader between two separate stores would see a healthy
    /// document next to the previous round's "checked nothing").
    published: RwLock<Published>,
}

#[derive(Debug, Default)]
struct Published {
    /// A round (or a document other than an agent's) was published.
    ready: bool,
    /// The last round checked something (always true for documents other than an agent's).
    checked: bool,
    /// The last published document, serialized once: `(healthy, body)`.
    status: Option<(bool, Bytes)>,
}

/// The shared state behind the endpoints: the registry, readiness, the last round's status.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Admin {
    state: Arc<State>,
}

impl Admin {
    /// Serves `registry` (with [`crate::Metrics`] and any families of the caller's own).
    pub fn new(registry: Registry) -> Self {
        Admin {
            state: Arc::new(State {
                registry,
                shutting_down: AtomicBool::new(false),
                published: RwLock::new(Published::default()),
            }),
        }
    }

    /// Publishes an agent's last completed round: `/status` serves it, and `/readyz` turns 200
    /// when the round checked something ([`Status::checked_anything`]), 503 otherwise.
    pub fn publish(&self, status: Status) {
        let checked = status.nothing_checked.is_none() && status.checked_anything();
        self.store(status.healthy(), &status, true, checked);
    }

    /// Serves `doc` on `/status` (503, `"healthy": false`) until the first [`Admin::publish`]
    /// or [`Admin::publish_document`], without making `/readyz` ready: what a reader sees
    /// before the first round, in the shape of every later document.
    pub fn publish_initial<T: Serialize>(&self, doc: &T) {
        self.store(false, doc, false, true);
    }

    /// Publishes any status document (the controller's, for one): `/status` serves it with
    /// `"healthy"` first, 200 when `healthy`, 503 otherwise; `/readyz` turns 200.
    pub fn publish_document<T: Serialize>(&self, healthy: bool, doc: &T) {
        self.store(healthy, doc, true, true);
    }

    /// Serializes `doc` and replaces what is published, all under one lock.
    fn store<T: Serialize>(&self, healthy: bool, doc: &T, ready: bool, checked: bool) {
        #[derive(Serialize)]
        struct Doc<'a, T> {
            healthy: bool,
            #[serde(flatten)]
            doc: &'a T,
        }
        let body = serde_json::to_vec_pretty(&Doc { healthy, doc }).unwrap_or_default();
        *self.published_mut() = Published {
            ready,
            checked,
            status: Some((healthy, Bytes::from(body))),
        };
    }

    fn published(&self) -> std::sync::RwLockReadGuard<'_, Published> {
        self.state
            .published
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn published_mut(&self) -> std::sync::RwLockWriteGuard<'_, Published> {
        self.state
            .published
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// From now on `/readyz` answers 503: the process is going away.
    pub fn shutting_down(&self) {
        self.state.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True once a round was published and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        self.published().ready && !self.state.shutting_down.load(Ordering::SeqCst)
    }

    /// Binds `addr`; serve with [`AdminServer::run`].
    pub async fn bind(&self, addr: SocketAddr) -> Result<AdminServer, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(AdminServer {
            listener,
            admin: self.clone(),
        })
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let mut r = match req.uri().path() {
            "/metrics" => {
                let accept = req.headers().get(hyper::header::ACCEPT);
                let format =
                    crate::format::negotiate(accept.and_then(|v| v.to_str().ok()).unwrap_or(""));
                match crate::format::encode(&self.state.registry, format) {
                    Ok(body) => {
                        let mut r = Response::new(Full::new(Bytes::from(body)));
                        r.headers_mut().insert(
                            CONTENT_TYPE,
                            HeaderValue::from_static(format.content_type()),
                        );
                        r.headers_mut()
                            .insert(hyper::header::VARY, HeaderValue::from_static("Accept"));
                        r
                    }
                    Err(e) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("encoding metrics failed: {e}\n"),
                    ),
                }
            }
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => self.readyz(),
            "/status" => self.status(),
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz, /readyz or /status\n",
            ),
        };
        if req.method() == Method::HEAD {
            *r.body_mut() = Full::new(Bytes::new());
        }
        r
    }

    fn readyz(&self) -> Response<Full<Bytes>> {
        // One read of what was published: readiness and "checked" of the same round.
        let (ready, checked) = {
            let p = self.published();
            (p.ready, p.checked)
        };
        if self.state.shutting_down.load(Ordering::SeqCst) {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
        } else if !ready {
            text(StatusCode::SERVICE_UNAVAILABLE, "no round completed yet\n")
        } else if !checked {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the last round checked nothing: see /status\n",
            )
        } else {
            text(StatusCode::OK, "ready\n")
        }
    }

    fn status(&self) -> Response<Full<Bytes>> {
        let (healthy, body) = self.published().status.clone().unwrap_or_else(|| {
            let none = r#"{"healthy": false, "round": 0, "message": "no round completed yet"}"#;
            (false, Bytes::from_static(none.as_bytes()))
        });
        let code = if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = code;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }
}

fn text(code: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A bound admin server.
#[derive(Debug)]
pub struct AdminServer {
    listener: TcpListener,
    admin: Admin,
}

impl AdminServer {
    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the future is dropped. Connection errors are logged and do not stop it.
    ///
    /// At most [`MAX_CONNECTIONS`] connections are served at once: when a new one arrives and
    /// all are taken, the oldest is closed. A flood of idle connections (any pod can reach an
    /// agent listening on the node's address) then costs a bounded amount of memory and file
    /// descriptors, and a real client (the kubelet's probe, Prometheus) that sends its request
    /// at once is still answered: the connections get a turn every few accepts, well before
    /// a new one can become the oldest. Accept failures (out of descriptors) are logged once
    /// until accepting works again.
    pub async fn run(self) {
        let mut open: std::collections::VecDeque<tokio::task::AbortHandle> =
            std::collections::VecDeque::with_capacity(MAX_CONNECTIONS);
        let mut failing = false;
        let mut accepted = 0usize;
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "admin server: accept failed; retrying (logged once until it works again)");
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if failing {
                tracing::info!("admin server: accepting again");
                failing = false;
            }
            open.retain(|h| !h.is_finished());
            if open.len() >= MAX_CONNECTIONS
                && let Some(oldest) = open.pop_front()
            {
                oldest.abort();
            }
            let admin = self.admin.clone();
            let task = tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let r = admin.respond(&req);
                    async move { Ok::<_, Infallible>(r) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(MAX_BUF)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "admin connection ended");
                }
            });
            open.push_back(task.abort_handle());
            // Let the connections accepted so far read and answer what they already hold before
            // more are accepted: a flood queues more than MAX_CONNECTIONS connections in the
            // backlog, and without a pause a real client's connection could be accepted and
            // closed as the oldest before it was ever polled (a kubelet probe lost to a flood).
            // Every YIELD_EVERY accepts, not each one: each pause costs a turn of the runtime,
            // and YIELD_EVERY well below MAX_CONNECTIONS still polls each one before it is
            // the oldest.
            accepted = accepted.wrapping_add(1);
            if accepted.is_multiple_of(YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Connections served at once; the oldest is closed to make room for a new one.
pub const MAX_CONNECTIONS: usize = 64;

/// Accepts between two turns given to the connections (see [`AdminServer::run`]).
const YIELD_EVERY: usize = MAX_CONNECTIONS / 4;

/// A connection's read buffer at most (hyper's minimum): requests here are one line and a few
/// headers.
const MAX_BUF: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{TargetState, TargetStatus};
    use std::sync::atomic::AtomicU64;

    /// A round of one target: healthy, or (odd rounds) one that checked nothing.
    fn round(n: u64) -> Status {
        if n % 2 == 1 {
            Status {
                round: n,
                nothing_checked: Some("no DNS target known".into()),
                ..Status::default()
            }
        } else {
            Status {
                round: n,
                targets: vec![TargetStatus {
                    target: "10.96.0.10:53".into(),
                    transport: "udp".into(),
                    state: TargetState::Up,
                    last_error: None,
                    rtt_ms: None,
                    consecutive_failures: 0,
                    consecutive_successes: 1,
                    role: None,
                    pod: None,
                    last_result: None,
                    checked_unix_ms: None,
                }],
                ..Status::default()
            }
        }
    }

    /// A reader that saw round `r` on `/status` and then asks `/readyz` is answered for round
    /// `r` or a later one, never for the round before it (a healthy document next to the last
    /// round's "checked nothing" made a kubelet see an agent both healthy and not ready).
    #[test]
    fn readyz_is_never_older_than_the_status_already_served() {
        const ROUNDS: u64 = 20_000;
        let admin = Admin::new(Registry::default());
        admin.publish_initial(&serde_json::json!({"round": 0}));
        // Rounds the writer has begun to publish: bumped before each publish.
        let begun = Arc::new(AtomicU64::new(0));
        let writer = {
            let (admin, begun) = (admin.clone(), begun.clone());
            std::thread::spawn(move || {
                for n in 1..=ROUNDS {
                    begun.store(n, Ordering::SeqCst);
                    admin.publish(round(n));
                }
            })
        };
        let mut pairs = 0u64;
        while !writer.is_finished() {
            let (healthy, body) = admin.published().status.clone().unwrap();
            let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let seen = seen["round"].as_u64().unwrap();
            let ready = admin.readyz().status();
            // The initial document is not healthy (its readiness: the test below; here a
            // round may be published between the two reads).
            assert!(seen > 0 || !healthy);
            // A healthy round's document followed by 503 needs a later round begun.
            if healthy && ready == StatusCode::SERVICE_UNAVAILABLE {
                assert!(
                    begun.load(Ordering::SeqCst) > seen,
                    "/status served the healthy round {seen}, then /readyz said 503 while no later round was begun"
                );
            }
            pairs += 1;
        }
        assert!(pairs > 0, "the reader read while the writer wrote");
        writer.join().unwrap();
        assert_eq!(
            admin.readyz().status(),
            StatusCode::OK,
            "round {ROUNDS} is healthy"
        );
    }

    /// Until the first round, `/readyz` is 503 even while the initial document is replaced.
    #[test]
    fn the_initial_document_never_makes_readyz_ready() {
        let admin = Admin::new(Registry::default());
        let writer = {
            let admin = admin.clone();
            std::thread::spawn(move || {
                for n in 0..20_000u64 {
                    admin.publish_initial(&serde_json::json!({"round": 0, "n": n}));
                }
            })
        };
        let mut reads = 0u64;
        while !writer.is_finished() {
            assert_eq!(
                admin.readyz().status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "ready before any round was published"
            );
            reads += 1;
        }
        writer.join().unwrap();
        assert!(reads > 0);
        assert_eq!(admin.readyz().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
