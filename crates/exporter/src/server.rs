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
    ready: AtomicBool,
    /// The last round checked something (always true for documents other than an agent's).
    checked: AtomicBool,
    shutting_down: AtomicBool,
    /// The last published document, serialized once: `(healthy, body)`.
    status: RwLock<Option<(bool, Bytes)>>,
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
                ready: AtomicBool::new(false),
                checked: AtomicBool::new(true),
                shutting_down: AtomicBool::new(false),
                status: RwLock::new(None),
            }),
        }
    }

    /// Publishes an agent's last completed round: `/status` serves it, and `/readyz` turns 200
    /// when the round checked something ([`Status::checked_anything`]), 503 otherwise.
    pub fn publish(&self, status: Status) {
        let checked = status.nothing_checked.is_none() && status.checked_anything();
        self.publish_document(status.healthy(), &status);
        self.state.checked.store(checked, Ordering::SeqCst);
    }

    /// Serves `doc` on `/status` (503, `"healthy": false`) until the first [`Admin::publish`]
    /// or [`Admin::publish_document`], without making `/readyz` ready: what a reader sees
    /// before the first round, in the shape of every later document.
    pub fn publish_initial<T: Serialize>(&self, doc: &T) {
        self.publish_document(false, doc);
        self.state.ready.store(false, Ordering::SeqCst);
    }

    /// Publishes any status document (the controller's, for one): `/status` serves it with
    /// `"healthy"` first, 200 when `healthy`, 503 otherwise; `/readyz` turns 200.
    pub fn publish_document<T: Serialize>(&self, healthy: bool, doc: &T) {
        #[derive(Serialize)]
        struct Doc<'a, T> {
            healthy: bool,
            #[serde(flatten)]
            doc: &'a T,
        }
        let body = serde_json::to_vec_pretty(&Doc { healthy, doc }).unwrap_or_default();
        *self.state.status.write().unwrap_or_else(|p| p.into_inner()) =
            Some((healthy, Bytes::from(body)));
        self.state.ready.store(true, Ordering::SeqCst);
    }

    /// From now on `/readyz` answers 503: the process is going away.
    pub fn shutting_down(&self) {
        self.state.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True once a round was published and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        self.state.ready.load(Ordering::SeqCst) && !self.state.shutting_down.load(Ordering::SeqCst)
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
            "/readyz" => {
                if self.is_ready() && !self.state.checked.load(Ordering::SeqCst) {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the last round checked nothing: see /status\n",
                    )
                } else if self.is_ready() {
                    text(StatusCode::OK, "ready\n")
                } else if self.state.shutting_down.load(Ordering::SeqCst) {
                    text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "no round completed yet\n")
                }
            }
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

    fn status(&self) -> Response<Full<Bytes>> {
        let (healthy, body) = self
            .state
            .status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| {
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
    /// at once is still answered: it is never the oldest for long. Accept failures (out of
    /// descriptors) are logged once until accepting works again.
    pub async fn run(self) {
        let mut open: std::collections::VecDeque<tokio::task::AbortHandle> =
            std::collections::VecDeque::with_capacity(MAX_CONNECTIONS);
        let mut failing = false;
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
        }
    }
}

/// Connections served at once; the oldest is closed to make room for a new one.
pub const MAX_CONNECTIONS: usize = 64;

/// A connection's read buffer at most (hyper's minimum): requests here are one line and a few
/// headers.
const MAX_BUF: usize = 8192;
