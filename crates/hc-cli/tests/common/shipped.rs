//! The shipped shape, simulated: a cluster lab of several nodes, the fake API server on its
//! underlay enforcing the RBAC of the rendered manifests, an agent per node and controllers,
//! each started with the arguments and environment of the rendered DaemonSet and Deployment.
//! What differs from a real cluster, and why: `--proc-root` is this machine's `/proc` (there is
//! no `/host/proc` mount); each agent's sweep is restricted to its node's pods
//! (`HC_NETNS_GLOB`, a safety rule of the tests); time runs faster ([`AGENT_ENV`]); and the
//! kubeconfig of the component's service account stands in for the in-cluster token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hc_testkit::{ClusterLab, FakeApi, Netns, UNDERLAY_GATEWAY, install_cluster};
use serde_json::Value;

use super::{BIN, rendered};

/// Timing for tests: fast rounds, a short window. The agent's clock runs 60 times faster than
/// at the defaults (15 s rounds, 1 query/s, every namespace every 2 minutes), so its budget is
/// 60 times larger: the same queries per round. The controller's epoch is half its window.
pub const AGENT_ENV: &[(&str, &str)] = &[
    ("HC_INTERVAL", "250ms"),
    ("HC_QUERY_BUDGET", "60"),
    ("HC_NETNS_EVERY", "2s"),
    ("HC_TIMEOUT", "200ms"),
    ("HC_ATTEMPTS", "1"),
    ("HC_API_DNS_EVERY", "5s"),
];
pub const CONTROLLER_ENV: &[(&str, &str)] = &[
    ("HC_INTERVAL", "300ms"),
    ("HC_WINDOW", "3s"),
    ("HC_GRACE_PERIOD", "0s"),
    ("HC_COOLDOWN", "60s"),
    ("HC_CONFIRM_ROUNDS", "2"),
];

/// A process started in a namespace; killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Proc {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub struct Shipped {
    pub api: FakeApi,
    pub lab: ClusterLab,
    pub objects: Vec<Value>,
    agent_kubeconfig: PathBuf,
    controller_kubeconfig: PathBuf,
}

/// The container of the first object of `kind` named `name` (any name when `None`).
fn container(objects: &[Value], kind: &str, name: Option<&str>) -> Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && name.is_none_or(|n| o["metadata"]["name"] == n))
        .unwrap_or_else(|| panic!("no {kind} {name:?} rendered"))["spec"]["template"]["spec"]["containers"][0]
        .clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

/// The container's literal env (`value`, not `valueFrom`).
fn literal_env(c: &Value) -> Vec<(String, String)> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

impl Shipped {
    /// `nodes` nodes, `dns` CoreDNS pods, the objects of the kustomization `overlay`.
    pub fn new(nodes: usize, dns: usize, overlay: &str) -> Shipped {
        Shipped::with_clients(nodes, dns, 1, overlay)
    }

    /// As [`Shipped::new`], with `clients` client pods per node.
    pub fn with_clients(nodes: usize, dns: usize, clients: usize, overlay: &str) -> Shipped {
        let lab = ClusterLab::new(nodes, dns, clients);
        let listener = lab
            .net
            .run(|| std::net::TcpListener::bind((UNDERLAY_GATEWAY, 0)).unwrap());
        let api = FakeApi::start_on(listener);
        api.dial_from_netns(&lab.net.path());
        install_cluster(&api, &lab, "170Mi");
        let objects = rendered(overlay);
        api.enforce_rbac(&objects);
        let agent_kubeconfig = lab.file("agent.kubeconfig");
        api.write_kubeconfig_for(&agent_kubeconfig, "kube-system", "coredns-healthcheck");
        let controller_kubeconfig = lab.file("controller.kubeconfig");
        api.write_kubeconfig_for(
            &controller_kubeconfig,
            "kube-system",
            "coredns-healthcheck-controller",
        );
        Shipped {
            api,
            lab,
            objects,
            agent_kubeconfig,
            controller_kubeconfig,
        }
    }

    fn spawn(&self, ns: &Netns, args: &[String], env: &[(String, String)], log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).unwrap();
        let child = ns
            .command(BIN)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("KUBECONFIG")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    /// The agent of node `n`, as the rendered DaemonSet starts it, with time running faster
    /// ([`AGENT_ENV`]).
    pub fn agent(&self, n: usize) -> Proc {
        self.agent_with(n, AGENT_ENV)
    }

    /// The agent of node `n`, as the rendered DaemonSet starts it, with `timing` on top of its
    /// environment (none: the shipped timing).
    pub fn agent_with(&self, n: usize, timing: &[(&str, &str)]) -> Proc {
        let c = container(&self.objects, "DaemonSet", None);
        let args: Vec<String> = strings(&c["args"])
            .into_iter()
            .map(|a| {
                if a.starts_with("--proc-root=") {
                    "--proc-root=/proc".into()
                } else {
                    a
                }
            })
            .collect();
        let node = &self.lab.nodes[n];
        let mut env = literal_env(&c);
        env.extend([
            (
                "POD_NAME".into(),
                format!("coredns-healthcheck-{}", node.name),
            ),
            ("NODE_NAME".into(), node.name.clone()),
            (
                "HC_KUBECONFIG".into(),
                self.agent_kubeconfig.display().to_string(),
            ),
            ("HC_NETNS_GLOB".into(), self.lab.node_glob(n)),
        ]);
        env.extend(timing.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.spawn(
            &node.ns,
            &args,
            &env,
            self.lab.file(&format!("agent-{n}.log")),
        )
    }

    /// Every node's agent.
    pub fn agents(&self) -> Vec<Proc> {
        (0..self.lab.nodes.len()).map(|n| self.agent(n)).collect()
    }

    /// A controller replica named `identity`, on node `n`, as the rendered Deployment starts it,
    /// with `extra` environment on top.
    pub fn controller(&self, n: usize, identity: &str, extra: &[(&str, &str)]) -> Proc {
        let c = container(
            &self.objects,
            "Deployment",
            Some("coredns-healthcheck-controller"),
        );
        let args = strings(&c["args"]);
        let mut env = literal_env(&c);
        env.extend([
            ("POD_NAME".into(), identity.to_owned()),
            (
                "HC_KUBECONFIG".into(),
                self.controller_kubeconfig.display().to_string(),
            ),
        ]);
        env.extend(
            CONTROLLER_ENV
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self.spawn(
            &self.lab.nodes[n].ns,
            &args,
            &env,
            self.lab.file(&format!("controller-{identity}.log")),
        )
    }

    /// The controller's `/status` on node `n`, or null while it does not answer.
    pub fn controller_status(&self, n: usize) -> Value {
        let addr = SocketAddr::new(self.lab.nodes[n].ip.into(), 9891);
        self.lab
            .net
            .run(|| hc_testkit::http(addr, "GET", "/status").ok())
            .and_then(|r| serde_json::from_str(&r.body).ok())
            .unwrap_or(Value::Null)
    }

    /// A GET of `path` on port `port` of node `n`'s address (its agent's 9890, a controller's
    /// 9891 there), from the underlay; `None` while it does not answer.
    pub fn get(&self, n: usize, port: u16, path: &'static str) -> Option<hc_testkit::HttpResponse> {
        let addr = SocketAddr::new(self.lab.nodes[n].ip.into(), port);
        self.lab
            .net
            .run(|| hc_testkit::http(addr, "GET", path).ok())
    }

    /// Node `n`'s agent's `/status`, or null while it does not answer.
    pub fn agent_status(&self, n: usize) -> Value {
        (self.get(n, 9890, "/status"))
            .and_then(|r| serde_json::from_str(&r.body).ok())
            .unwrap_or(Value::Null)
    }

    /// A sample of the metrics served on node `n`'s `port` (9890 the agent, 9891 a controller).
    pub fn metric(&self, n: usize, port: u16, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        hc_testkit::metric_value(&self.get(n, port, "/metrics")?.body, name, labels)
    }

    /// Polls until `cond` holds; panics after `secs` seconds with `what` (a bound against
    /// hangs, not a performance assertion).
    pub fn wait_for(&self, secs: u64, what: &str, mut cond: impl FnMut(&Shipped) -> bool) {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for: {what}");
    }

    /// The mutating requests of the controller's service account (evictions, patches, Events;
    /// not its Lease, not the probing plan) that succeeded.
    pub fn controller_writes(&self) -> Vec<String> {
        self.api
            .audit()
            .into_iter()
            .filter(|e| e.user.ends_with(":coredns-healthcheck-controller"))
            .filter(|e| {
                !["get", "list", "watch"].contains(&e.verb.as_str())
                    && e.resource != "leases"
                    && e.resource != "configmaps"
            })
            .filter(|e| e.code < 300)
            .map(|e| format!("{} {} {}", e.verb, e.resource, e.name.unwrap_or_default()))
            .collect()
    }

    /// Evictions carried out (pod names).
    pub fn evicted(&self) -> Vec<String> {
        self.controller_writes()
            .into_iter()
            .filter_map(|w| w.strip_prefix("create pods/eviction ").map(str::to_owned))
            .collect()
    }
}

impl Drop for Shipped {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.agent_kubeconfig);
        let _ = std::fs::remove_file(&self.controller_kubeconfig);
    }
}
