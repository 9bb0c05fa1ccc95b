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
use tokio::sync::broadcast;

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
    dial_netns: Mutex<Option<String>>,
    /// RBAC to enforce, once [`FakeApi::enforce_rbac`] was called.
    rbac: Mutex<Option<crate::rbac::Rbac>>,
    /// Bearer token -> user.
    tokens: Mutex<BTreeMap<String, String>>,
    audit: Mutex<Vec<AuditEntry>>,
}

/// The user of the token in [`FakeApi::write_kubeconfig`]: allowed everything, like a cluster
/// admin.
pub const ADMIN: &str = "admin";

/// One request as the API server's audit log would record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// `system:serviceaccount:NS:NAME`, or [`ADMIN`].
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
    pub verb: String,
    /// `pods`, `pods/eviction`, `leases`, ...
    pub resource: String,
    /// The namespace, if any.
    pub namespace: Option<String>,
    /// The name, if any.
    pub name: Option<String>,
    /// The HTTP status answered.
    pub code: u16,
}

/// The fake API server; stops on drop.
#[derive(Debug)]
pub struct FakeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// The server; stops on drop.
    _background: crate::background::Background,
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

/// The store's key of the object at `path` (`api/v1/namespaces/NS/pods/NAME`, ...).
fn object_key(path: &str) -> Option<Key> {
    let t = parse_path(path)?;
    let (namespace, name) = (t.namespace.unwrap_or_default(), t.name.unwrap_or_default());
    Some((t.prefix, namespace, t.resource, name))
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
            dial_netns: Mutex::new(None),
            rbac: Mutex::new(None),
            tokens: Mutex::new(BTreeMap::from([(
                "fake-token".to_owned(),
                ADMIN.to_owned(),
            )])),
            audit: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let background = crate::background::Background::spawn(move || async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
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
                        .with_upgrades()
                        .await;
                });
            }
        });
        FakeApi {
            shared,
            addr,
            _background: background,
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

    /// From now on, answers 403 to any request of a service account that the RBAC objects
    /// among `objects` (the rendered manifests) do not grant. The admin token of
    /// [`FakeApi::write_kubeconfig`] is still allowed everything.
    pub fn enforce_rbac(&self, objects: &[Value]) {
        *self.shared.rbac.lock().unwrap() = Some(crate::rbac::Rbac::new(objects));
    }

    /// A kubeconfig for service account `namespace/name` (a token of its own), written to `path`.
    pub fn write_kubeconfig_for(&self, path: &std::path::Path, namespace: &str, name: &str) {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let token = format!("token-{namespace}-{name}");
        self.shared
            .tokens
            .lock()
            .unwrap()
            .insert(token.clone(), user);
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: sa\n    namespace: {namespace}\ncurrent-context: fake\nusers:\n- name: sa\n  user:\n    token: {token}\n",
            self.addr
        );
        std::fs::write(path, cfg).unwrap();
    }

    /// Every request so far, with its user, verb and answer.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.shared.audit.lock().unwrap().clone()
    }

    /// Creates or replaces an object at `path` (`api/v1/namespaces/NS/pods/NAME`, ...).
    pub fn put(&self, path: &str, object: Value) {
        let key = object_key(path).unwrap_or_else(|| panic!("bad path {path}"));
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
        let key = object_key(path)?;
        self.shared.store.lock().unwrap().objects.get(&key).cloned()
    }

    /// Deletes the object at `path` (a `DELETED` event for the watches); false when absent.
    pub fn delete(&self, path: &str) -> bool {
        let key = object_key(path).unwrap_or_else(|| panic!("bad path {path}"));
        let mut store = self.shared.store.lock().unwrap();
        match store.objects.get(&key).cloned() {
            Some(obj) => {
                self.shared.write(&mut store, "DELETED", key, obj);
                true
            }
            None => false,
        }
    }

    /// A handle that reads the objects from another thread while the server lives.
    pub(crate) fn lister(&self) -> Lister {
        Lister(self.shared.clone())
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

    /// Port-forwards connect to pods from inside this network namespace (a path such as
    /// `/run/netns/NAME`): where the pod network is, as for a kubelet.
    pub fn dial_from_netns(&self, path: &str) {
        *self.shared.dial_netns.lock().unwrap() = Some(path.to_owned());
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

/// Reads the fake's objects from another thread (see [`FakeApi::lister`]).
#[derive(Debug, Clone)]
pub(crate) struct Lister(Arc<Shared>);

impl Lister {
    /// Every object of `resource` under `prefix` (`api/v1`, `services`), in every namespace.
    pub(crate) fn all(&self, prefix: &str, resource: &str) -> Vec<Value> {
        (self.0.store.lock().unwrap().objects.iter())
            .filter(|((p, _, r, _), _)| p == prefix && r == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The request's user (from its bearer token) and its RBAC attributes.
fn attributes(req: &Request<Incoming>, s: &Shared) -> (String, crate::rbac::Attributes) {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let user = s
        .tokens
        .lock()
        .unwrap()
        .get(token)
        .cloned()
        .unwrap_or_else(|| "system:anonymous".into());
    let path = req.uri().path();
    let q = query(req.uri().query());
    let (t, proxy) = match path.split_once("/proxy") {
        Some((before, _)) if before.contains("/services/") => (parse_path(before), true),
        _ => (parse_path(path), false),
    };
    let t = t.unwrap_or(Target {
        prefix: String::new(),
        namespace: None,
        resource: path.to_owned(),
        name: None,
        sub: None,
    });
    let group = t
        .prefix
        .strip_prefix("apis/")
        .and_then(|g| g.split('/').next())
        .unwrap_or("")
        .to_owned();
    let sub = if proxy {
        Some("proxy".to_owned())
    } else {
        t.sub.clone()
    };
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (req.method().as_str(), &t.name, watch) {
        ("GET", _, true) => "watch",
        ("GET", None, false) => "list",
        ("GET", Some(_), _) => "get",
        ("POST", ..) => "create",
        ("PUT", ..) => "update",
        ("PATCH", ..) => "patch",
        ("DELETE", ..) => "delete",
        (m, ..) => m,
    };
    let by_field = q
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name="))
        .map(str::to_owned);
    let attrs = crate::rbac::Attributes {
        verb: verb.into(),
        group,
        resource: match sub {
            Some(sub) => format!("{}/{sub}", t.resource),
            None => t.resource.clone(),
        },
        namespace: t.namespace.clone(),
        name: t.name.clone().or(by_field),
    };
    (user, attrs)
}

async fn handle(s: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (user, attrs) = attributes(&req, &s);
    let denied = user != ADMIN
        && s.rbac
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|r| !r.allows(&user, &attrs));
    let r = if denied {
        let ns = attrs
            .namespace
            .as_deref()
            .map(|n| format!(" in the namespace \"{n}\""))
            .unwrap_or_default();
        status(
            403,
            "Forbidden",
            &format!(
                "{} \"{}\" is forbidden: User \"{user}\" cannot {} resource \"{}\" in API group \"{}\"{ns}",
                attrs.resource,
                attrs.name.as_deref().unwrap_or(""),
                attrs.verb,
                attrs.resource,
                attrs.group
            ),
        )
    } else {
        serve(s.clone(), req).await
    };
    s.audit.lock().unwrap().push(AuditEntry {
        user,
        verb: attrs.verb,
        resource: attrs.resource,
        namespace: attrs.namespace,
        name: attrs.name,
        code: r.status().as_u16(),
    });
    r
}

async fn serve(s: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path().contains("/proxy") && req.uri().path().contains("/services/") {
        return service_proxy(s, req).await;
    }
    if req.uri().path().ends_with("/portforward") && !s.down.load(Ordering::SeqCst) {
        s.requests
            .lock()
            .unwrap()
            .push(format!("{} {}", req.method(), req.uri()));
        return port_forward(s, req);
    }
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
            let want = serde_json::from_slice::<Value>(&body).ok().and_then(|b| {
                b["deleteOptions"]["preconditions"]["uid"]
                    .as_str()
                    .map(str::to_owned)
            });
            if let Some(uid) = want
                && pod["metadata"]["uid"].as_str() != Some(uid.as_str())
            {
                return status(
                    409,
                    "Conflict",
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        pod["metadata"]["uid"]
                    ),
                );
            }
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

/// `GET .../pods/NAME/portforward?ports=P` upgraded to a WebSocket speaking
/// `v4.channel.k8s.io`, as the API server does: each port gets a data channel (2n) and an error
/// channel (2n+1), each opened by a frame of the port number (little-endian); data frames carry
/// the channel in their first byte. The fake relays the data channel to the pod's IP and port
/// over TCP, from wherever it runs (inside a lab's node namespace, the pod network).
fn port_forward(s: Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    let Some(t) = parse_path(req.uri().path()) else {
        return status(404, "NotFound", "bad path");
    };
    let q = query(req.uri().query());
    let Some(port) = q
        .get("ports")
        .and_then(|p| p.split(',').next())
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return status(400, "BadRequest", "ports is required");
    };
    let key = (
        t.prefix.clone(),
        t.namespace.clone().unwrap_or_default(),
        "pods".to_owned(),
        t.name.clone().unwrap_or_default(),
    );
    let Some(ip) = s
        .store
        .lock()
        .unwrap()
        .objects
        .get(&key)
        .and_then(|p| p["status"]["podIP"].as_str().map(str::to_owned))
    else {
        return status(404, "NotFound", "pod not found");
    };
    let Some(ws_key) = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec())
    else {
        return status(400, "BadRequest", "not a WebSocket upgrade");
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use futures_util::SinkExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::protocol::Role;
        let Ok(upgraded) = upgrade.await else { return };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        let (mut tx, mut rx) = ws.split();
        let p = port.to_le_bytes();
        if tx.send(Message::binary(vec![0, p[0], p[1]])).await.is_err()
            || tx.send(Message::binary(vec![1, p[0], p[1]])).await.is_err()
        {
            return;
        }
        let dial = s.dial_netns.lock().unwrap().clone();
        let tcp = match dial_pod(dial, &ip, port).await {
            Ok(c) => c,
            Err(e) => {
                let mut m = vec![1u8];
                m.extend_from_slice(format!("error forwarding port {port} to pod: {e}").as_bytes());
                let _ = tx.send(Message::binary(m)).await;
                let _ = tx.send(Message::Close(None)).await;
                return;
            }
        };
        let (mut r, mut w) = tcp.into_split();
        let to_pod = async {
            while let Some(Ok(msg)) = rx.next().await {
                match msg {
                    Message::Binary(b)
                        if b.len() > 1 && b[0] == 0 && w.write_all(&b[1..]).await.is_err() =>
                    {
                        break;
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = w.shutdown().await;
        };
        let from_pod = async {
            let mut buf = vec![0u8; 4096];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut m = vec![0u8];
                        m.extend_from_slice(&buf[..n]);
                        if tx.send(Message::binary(m)).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(Message::Close(None)).await;
        };
        tokio::join!(to_pod, from_pod);
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&ws_key);
    let mut r = Response::new(full(String::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", "websocket".parse().unwrap());
    h.insert("connection", "Upgrade".parse().unwrap());
    h.insert("sec-websocket-accept", accept.parse().unwrap());
    h.insert(
        "sec-websocket-protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    r
}

/// Connects to a pod's port, from inside `netns` when given (on a thread that enters it: the
/// socket stays there).
async fn dial_pod(
    netns: Option<String>,
    ip: &str,
    port: u16,
) -> std::io::Result<tokio::net::TcpStream> {
    let addr: SocketAddr = format!("{ip}:{port}")
        .parse()
        .map_err(std::io::Error::other)?;
    let std_stream = match netns {
        None => std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?,
        Some(path) => tokio::task::spawn_blocking(move || {
            std::thread::spawn(move || {
                let f = std::fs::File::open(&path)?;
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            })
            .join()
            .map_err(|_| std::io::Error::other("dial thread panicked"))?
        })
        .await
        .map_err(std::io::Error::other)??,
    };
    std_stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(std_stream)
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
        .min(600);
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

/// `GET /api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`: a GET of PATH at the Service's
/// ClusterIP and PORT (the test makes the "ClusterIP" an address the component under test
/// listens on), dialed like a port-forward, the answer relayed with its status.
async fn service_proxy(s: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let Some((before, rest)) = path.split_once("/proxy") else {
        return status(404, "NotFound", "bad proxy path");
    };
    let Some(t) = parse_path(before) else {
        return status(404, "NotFound", "bad proxy path");
    };
    let (name, port) = match t.name.as_deref().and_then(|n| n.split_once(':')) {
        Some((n, p)) => (n.to_owned(), p.parse::<u16>().unwrap_or(80)),
        None => (t.name.clone().unwrap_or_default(), 80),
    };
    let key = (
        t.prefix.clone(),
        t.namespace.clone().unwrap_or_default(),
        "services".to_owned(),
        name.clone(),
    );
    let Some(ip) = s
        .store
        .lock()
        .unwrap()
        .objects
        .get(&key)
        .and_then(|svc| svc["spec"]["clusterIP"].as_str().map(str::to_owned))
    else {
        return status(404, "NotFound", &format!("services \"{name}\" not found"));
    };
    let netns = s.dial_netns.lock().unwrap().clone();
    let stream = match dial_pod(netns, &ip, port).await {
        Ok(st) => st,
        Err(e) => {
            return status(
                503,
                "ServiceUnavailable",
                &format!("error trying to reach service: {e}"),
            );
        }
    };
    let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return status(503, "ServiceUnavailable", "error trying to reach service");
    };
    tokio::spawn(conn);
    let target = if rest.is_empty() { "/" } else { rest };
    let Ok(upstream) = Request::get(target)
        .header("host", format!("{ip}:{port}"))
        .body(http_body_util::Empty::<Bytes>::new())
    else {
        return status(400, "BadRequest", "bad proxy target");
    };
    match send.send_request(upstream).await {
        Ok(resp) => {
            let code = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut r = Response::new(Full::new(body).boxed_unsync());
            *r.status_mut() = code;
            r
        }
        Err(e) => status(
            503,
            "ServiceUnavailable",
            &format!("error trying to reach service: {e}"),
        ),
    }
}
