//! A stateful fake Kubernetes API server, for tests of the real binary (through a generated
//! kubeconfig) and of the remedy crate. No real API server can be installed on these machines.
//!
//! What it serves, over plain HTTP on a loopback address (or one inside a test's namespace):
//! - any namespaced resource of the core group (`/api/v1/namespaces/NS/RES[/NAME]`) and of named
//!   groups (`/apis/G/V/namespaces/NS/RES[/NAME]`), cluster-wide lists (`/api/v1/RES`);
//! - GET (get, list with `labelSelector` (equality) and `fieldSelector=metadata.name=`, and
//!   `watch=true` streams from a `resourceVersion`, ending after `timeoutSeconds`), POST (create),
//!   PUT (replace, with resourceVersion conflicts: 409), PATCH (JSON patch with `test` ops: 422
//!   when one fails; merge patch), DELETE;
//! - `POST .../pods/NAME/eviction` with PodDisruptionBudget semantics: the next N evictions can
//!   be refused with 429 ([`FakeApi::refuse_evictions`]); an accepted one deletes the pod and is
//!   logged ([`FakeApi::evictions`]);
//! - [`FakeApi::set_down`] makes every request fail (503 and closed watches), as an unreachable
//!   API server would.
//!
//! Objects are JSON (`serde_json::Value`): the test writes them as a real API server would hold
//! them; every write bumps a global resourceVersion.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// (api prefix, namespace, resource, name): e.g. ("apis/apps/v1", "kube-system", "deployments", "coredns").
type Key = (String, String, String, String);

#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    kind: &'static str,
    key: Key,
    object: Value,
}

#[derive(Debug, Default)]
struct Store {
    objects: BTreeMap<Key, Value>,
    log: Vec<Change>,
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    rv: AtomicU64,
    changes: broadcast::Sender<Change>,
    down: AtomicBool,
    refuse_evictions: AtomicU32,
    evictions: Mutex<Vec<String>>,
    eviction_attempts: AtomicU32,
    requests: Mutex<Vec<String>>,
    logs: Mutex<BTreeMap<(String, String), String>>,
    forbidden: Mutex<Vec<(String, String)>>,
}

/// The fake API server; stops on drop.
#[derive(Debug)]
pub struct FakeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn kind_of(resource: &str) -> &'static str {
    match resource {
        "pods" => "Pod",
        "services" => "Service",
        "endpointslices" => "EndpointSlice",
        "deployments" => "Deployment",
        "replicasets" => "ReplicaSet",
        "leases" => "Lease",
        "events" => "Event",
        "nodes" => "Node",
        "poddisruptionbudgets" => "PodDisruptionBudget",
        _ => "Object",
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn full(s: String) -> Body {
    Full::new(Bytes::from(s)).boxed_unsync()
}

fn ok_json(v: &Value, code: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = code;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// Parsed request path.
struct Target {
    prefix: String,
    namespace: Option<String>,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (format!("api/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("apis/{g}/{v}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        rest => (None, rest),
    };
    let (resource, name, sub) = match rest {
        [r] => (r.to_string(), None, None),
        [r, n] => (r.to_string(), Some(n.to_string()), None),
        [r, n, s] => (r.to_string(), Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    Some(Target {
        prefix,
        namespace,
        resource,
        name,
        sub,
    })
}

fn query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn matches(obj: &Value, labels: Option<&String>, fields: Option<&String>) -> bool {
    if let Some(sel) = labels.filter(|s| !s.is_empty()) {
        for term in sel.split(',') {
            let (k, v) = term.split_once('=').unwrap_or((term, ""));
            let v = v.trim_start_matches('=');
            if obj["metadata"]["labels"][k].as_str() != Some(v) {
                return false;
            }
        }
    }
    if let Some(sel) = fields.filter(|s| !s.is_empty()) {
        for term in sel.split(',') {
            let (k, v) = term.split_once('=').unwrap_or((term, ""));
            let v = v.trim_start_matches('=');
            let got = match k {
                "metadata.name" => obj["metadata"]["name"].as_str(),
                "metadata.namespace" => obj["metadata"]["namespace"].as_str(),
                _ => None,
            };
            if got != Some(v) {
                return false;
            }
        }
    }
    true
}

impl Shared {
    fn bump(&self) -> u64 {
        self.rv.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn write(&self, store: &mut Store, kind: &'static str, key: Key, mut object: Value) -> Value {
        let rv = self.bump();
        if kind != "DELETED" {
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            if object["metadata"]["uid"].is_null() {
                object["metadata"]["uid"] = json!(format!("uid-{rv}"));
            }
            if object["metadata"]["creationTimestamp"].is_null() {
                object["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            store.objects.insert(key.clone(), object.clone());
        } else {
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            store.objects.remove(&key);
        }
        let change = Change {
            rv,
            kind,
            key,
            object: object.clone(),
        };
        store.log.push(change.clone());
        let _ = self.changes.send(change);
        object
    }
}

impl FakeApi {
    /// Starts on a free port of 127.0.0.1.
    pub fn start() -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Self::start_on(listener)
    }

    /// Starts on a listener the caller bound (e.g. inside a test's network namespace, where it
    /// stays).
    pub fn start_on(listener: std::net::TcpListener) -> FakeApi {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            rv: AtomicU64::new(100),
            changes: tx,
            down: AtomicBool::new(false),
            refuse_evictions: AtomicU32::new(0),
            evictions: Mutex::new(Vec::new()),
            eviction_attempts: AtomicU32::new(0),
            requests: Mutex::new(Vec::new()),
            logs: Mutex::new(BTreeMap::new()),
            forbidden: Mutex::new(Vec::new()),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let s = s.clone();
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                let s = s.clone();
                                async move { Ok::<_, Infallible>(handle(s, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stop_rx => {}
                }
            });
        });
        FakeApi {
            shared,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig pointing at it, written to `path`.
    pub fn write_kubeconfig(&self, path: &std::path::Path) {
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\n",
            self.addr
        );
        std::fs::write(path, cfg).unwrap();
    }

    /// Creates or replaces an object at `path` (`api/v1/namespaces/NS/pods/NAME`, ...).
    pub fn put(&self, path: &str, object: Value) {
        let t = parse_path(path).unwrap_or_else(|| panic!("bad path {path}"));
        let key = (
            t.prefix,
            t.namespace.unwrap_or_default(),
            t.resource,
            t.name.unwrap_or_default(),
        );
        let mut store = self.shared.store.lock().unwrap();
        let kind = if store.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.shared.write(&mut store, kind, key, object);
    }

    /// The object at `path`, if any.
    pub fn get(&self, path: &str) -> Option<Value> {
        let t = parse_path(path)?;
        let key = (
            t.prefix,
            t.namespace.unwrap_or_default(),
            t.resource,
            t.name.unwrap_or_default(),
        );
        self.shared.store.lock().unwrap().objects.get(&key).cloned()
    }

    /// Every object of a resource in a namespace (`apis/events.k8s.io/v1`, `kube-system`, `events`).
    pub fn list(&self, prefix: &str, namespace: &str, resource: &str) -> Vec<Value> {
        self.shared
            .store
            .lock()
            .unwrap()
            .objects
            .iter()
            .filter(|((p, n, r, _), _)| p == prefix && n == namespace && r == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Sets what `GET .../pods/NAME/log` returns (what a kubelet would collect).
    pub fn set_logs(&self, namespace: &str, pod: &str, text: &str) {
        self.shared
            .logs
            .lock()
            .unwrap()
            .insert((namespace.to_owned(), pod.to_owned()), text.to_owned());
    }

    /// Answers `method` on `resource` (e.g. `POST`, `pods`) with 403 Forbidden from now on.
    pub fn forbid(&self, method: &str, resource: &str) {
        self.shared
            .forbidden
            .lock()
            .unwrap()
            .push((method.to_owned(), resource.to_owned()));
    }

    /// Refuse the next `n` evictions with 429, as a PodDisruptionBudget would.
    pub fn refuse_evictions(&self, n: u32) {
        self.shared.refuse_evictions.store(n, Ordering::SeqCst);
    }

    /// Pods evicted so far (`namespace/name`).
    pub fn evictions(&self) -> Vec<String> {
        self.shared.evictions.lock().unwrap().clone()
    }

    /// Eviction requests so far, refused ones included.
    pub fn eviction_attempts(&self) -> u32 {
        self.shared.eviction_attempts.load(Ordering::SeqCst)
    }

    /// Requests received, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Makes the server answer every request with 503 (and end watches), or serve again.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(s: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let q = query(req.uri().query());
    s.requests
        .lock()
        .unwrap()
        .push(format!("{method} {}", req.uri()));
    if s.down.load(Ordering::SeqCst) {
        return status(503, "ServiceUnavailable", "the fake API server is down");
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(t) = parse_path(&path) else {
        return status(404, "NotFound", &format!("no route for {path}"));
    };
    let ns = t.namespace.clone().unwrap_or_default();
    if s.forbidden
        .lock()
        .unwrap()
        .iter()
        .any(|(m, r)| *m == method.as_str() && *r == t.resource)
    {
        return status(
            403,
            "Forbidden",
            &format!(
                "{} is forbidden: User \"fake\" cannot {} resource \"{}\" in namespace \"{ns}\"",
                t.resource,
                method.as_str().to_lowercase(),
                t.resource
            ),
        );
    }
    match (&method, t.name.as_deref(), t.sub.as_deref()) {
        (&Method::GET, Some(name), Some("log")) if t.resource == "pods" => {
            match s.logs.lock().unwrap().get(&(ns.clone(), name.to_owned())) {
                Some(text) => {
                    let mut r = Response::new(full(text.clone()));
                    r.headers_mut()
                        .insert("content-type", "text/plain".parse().unwrap());
                    r
                }
                None => status(
                    400,
                    "BadRequest",
                    &format!("container \"probe\" in pod \"{name}\" is waiting to start"),
                ),
            }
        }
        (&Method::GET, None, None) => {
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return watch(s, t, q);
            }
            let store = s.store.lock().unwrap();
            let items: Vec<Value> = store
                .objects
                .iter()
                .filter(|((p, n, r, _), _)| {
                    *p == t.prefix && *r == t.resource && (t.namespace.is_none() || *n == ns)
                })
                .map(|(_, v)| v)
                .filter(|v| matches(v, q.get("labelSelector"), q.get("fieldSelector")))
                .cloned()
                .collect();
            let rv = s.rv.load(Ordering::SeqCst).to_string();
            let kind = format!("{}List", kind_of(&t.resource));
            let api_version = t
                .prefix
                .trim_start_matches("api/")
                .trim_start_matches("apis/");
            ok_json(
                &json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": rv}, "items": items}),
                StatusCode::OK,
            )
        }
        (&Method::GET, Some(name), None) => {
            let key = (t.prefix.clone(), ns, t.resource.clone(), name.to_owned());
            match s.store.lock().unwrap().objects.get(&key) {
                Some(v) => ok_json(v, StatusCode::OK),
                None => status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", t.resource),
                ),
            }
        }
        (&Method::POST, None, None) => {
            let Ok(mut obj) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "body is not JSON");
            };
            let name = match obj["metadata"]["name"].as_str() {
                Some(n) => n.to_owned(),
                None => {
                    let base = obj["metadata"]["generateName"]
                        .as_str()
                        .unwrap_or("obj-")
                        .to_owned();
                    let n = format!("{base}{}", s.bump());
                    obj["metadata"]["name"] = json!(n);
                    n
                }
            };
            obj["metadata"]["namespace"] = json!(ns);
            let key = (t.prefix.clone(), ns, t.resource.clone(), name.clone());
            let mut store = s.store.lock().unwrap();
            if store.objects.contains_key(&key) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("{} \"{name}\" already exists", t.resource),
                );
            }
            let v = s.write(&mut store, "ADDED", key, obj);
            ok_json(&v, StatusCode::CREATED)
        }
        (&Method::POST, Some(name), Some("eviction")) if t.resource == "pods" => {
            s.eviction_attempts.fetch_add(1, Ordering::SeqCst);
            if s.refuse_evictions.load(Ordering::SeqCst) > 0 {
                s.refuse_evictions.fetch_sub(1, Ordering::SeqCst);
                return status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                );
            }
            let key = (
                t.prefix.clone(),
                ns.clone(),
                "pods".to_owned(),
                name.to_owned(),
            );
            let mut store = s.store.lock().unwrap();
            let Some(pod) = store.objects.get(&key).cloned() else {
                return status(404, "NotFound", &format!("pods \"{name}\" not found"));
            };
            s.write(&mut store, "DELETED", key, pod);
            s.evictions.lock().unwrap().push(format!("{ns}/{name}"));
            ok_json(
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}),
                StatusCode::CREATED,
            )
        }
        (&Method::PUT, Some(name), None) => {
            let Ok(mut obj) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "body is not JSON");
            };
            let key = (
                t.prefix.clone(),
                ns.clone(),
                t.resource.clone(),
                name.to_owned(),
            );
            let mut store = s.store.lock().unwrap();
            let Some(cur) = store.objects.get(&key) else {
                return status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", t.resource),
                );
            };
            let want = obj["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_owned);
            if want.is_some() && want.as_deref() != cur["metadata"]["resourceVersion"].as_str() {
                return status(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes to the latest version and try again",
                );
            }
            obj["metadata"]["namespace"] = json!(ns);
            let v = s.write(&mut store, "MODIFIED", key, obj);
            ok_json(&v, StatusCode::OK)
        }
        (&Method::PATCH, Some(name), None | Some("status")) => {
            let key = (
                t.prefix.clone(),
                ns.clone(),
                t.resource.clone(),
                name.to_owned(),
            );
            let mut store = s.store.lock().unwrap();
            let Some(mut cur) = store.objects.get(&key).cloned() else {
                return status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", t.resource),
                );
            };
            if content_type.starts_with("application/json-patch+json") {
                let Ok(p) = serde_json::from_slice::<json_patch::Patch>(&body) else {
                    return status(400, "BadRequest", "not a JSON patch");
                };
                if let Err(e) = json_patch::patch(&mut cur, &p) {
                    return status(422, "Invalid", &format!("the JSON patch failed: {e}"));
                }
            } else {
                let Ok(p) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "not JSON");
                };
                if content_type.starts_with("application/strategic-merge-patch+json") {
                    strategic_merge(&mut cur, &p);
                } else {
                    json_patch::merge(&mut cur, &p);
                }
            }
            let v = s.write(&mut store, "MODIFIED", key, cur);
            ok_json(&v, StatusCode::OK)
        }
        (&Method::DELETE, Some(name), None) => {
            let key = (t.prefix.clone(), ns, t.resource.clone(), name.to_owned());
            let mut store = s.store.lock().unwrap();
            match store.objects.get(&key).cloned() {
                Some(obj) => {
                    let v = s.write(&mut store, "DELETED", key, obj);
                    ok_json(&v, StatusCode::OK)
                }
                None => status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", t.resource),
                ),
            }
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("{method} {path} is not served by the fake"),
        ),
    }
}

/// A strategic merge patch, as far as the tests need it: objects merge recursively, `null`
/// deletes, and lists of objects merge element by element on their `type` key (conditions) or
/// `name` key (containers, env); other lists are replaced.
fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (Value::Array(t), Value::Array(p))
            if p.iter()
                .all(|x| x.get("type").is_some() || x.get("name").is_some()) =>
        {
            for item in p {
                let key = if item.get("type").is_some() {
                    "type"
                } else {
                    "name"
                };
                match t.iter_mut().find(|x| x.get(key) == item.get(key)) {
                    Some(existing) => strategic_merge(existing, item),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn watch(s: Arc<Shared>, t: Target, q: BTreeMap<String, String>) -> Response<Body> {
    let since: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60u64)
        .min(60);
    let ns = t.namespace.clone();
    let relevant = move |c: &Change| {
        c.key.0 == t.prefix
            && c.key.2 == t.resource
            && ns.as_ref().is_none_or(|n| *n == c.key.1)
            && matches(&c.object, q.get("labelSelector"), q.get("fieldSelector"))
    };
    // Subscribe before reading the log, so nothing falls between the two.
    let mut rx = s.changes.subscribe();
    let backlog: Vec<Change> = s
        .store
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|c| c.rv > since && relevant(c))
        .cloned()
        .collect();
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let line =
            |c: &Change| Bytes::from(format!("{}\n", json!({"type": c.kind, "object": c.object})));
        let mut last = since;
        for c in &backlog {
            last = c.rv;
            if tx.send(line(c)).await.is_err() {
                return;
            }
        }
        let end = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(end);
        loop {
            tokio::select! {
                _ = &mut end => return,
                c = rx.recv() => match c {
                    Ok(c) if c.rv > last && relevant(&c) => {
                        last = c.rv;
                        if tx.send(line(&c)).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(_) => return,
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if s.down.load(Ordering::SeqCst) { return; }
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), out))
    });
    let mut r = Response::new(StreamBody::new(stream.boxed()).boxed_unsync());
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}
