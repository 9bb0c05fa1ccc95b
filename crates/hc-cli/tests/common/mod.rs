//! Helpers shared by the agent tests: a running `hc-cli run` and its endpoints.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hc_testkit::{HttpResponse, Netns, free_port, http};

pub mod manifests;
#[cfg(target_os = "linux")]
pub mod shipped;

pub const BIN: &str = env!("CARGO_BIN_EXE_hc-cli");

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A child process killed when dropped, so a failed assertion leaves nothing running; take it
/// out (`.0.take()`) to stop it yourself and read its output.
pub struct KillOnDrop(pub Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running agent, killed on drop.
pub struct Agent {
    pub child: Child,
    pub addr: SocketAddr,
    ns: Option<String>,
}

impl Agent {
    pub fn start(ns: Option<&Netns>, args: &[&str]) -> Agent {
        let addr = SocketAddr::new(
            ip("127.0.0.1"),
            match ns {
                Some(n) => n.run(|| free_port(ip("127.0.0.1"))),
                None => free_port(ip("127.0.0.1")),
            },
        );
        let mut cmd = match ns {
            Some(n) => n.command(BIN),
            None => Command::new(BIN),
        };
        cmd.arg("run").args(args).args([
            "--metrics-addr",
            &addr.to_string(),
            "--log-format",
            "json",
        ]);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Agent {
            child,
            addr,
            ns: ns.map(|n| n.path()),
        }
    }

    pub fn get(&self, path: &'static str) -> Option<HttpResponse> {
        let addr = self.addr;
        match &self.ns {
            None => http(addr, "GET", path).ok(),
            Some(p) => {
                let p = p.clone();
                std::thread::spawn(move || {
                    let f = std::fs::File::open(p).unwrap();
                    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    http(addr, "GET", path).ok()
                })
                .join()
                .unwrap()
            }
        }
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        hc_testkit::metric_value(&self.get("/metrics")?.body, name, labels)
    }

    /// Polls until `cond` holds; panics after 30 s with `what` (a bound against hangs, not a
    /// performance assertion).
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut(&Agent) -> bool) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for: {what}; /status: {:?}",
            self.get("/status").map(|r| r.body)
        );
    }

    /// Waits until `n` more rounds than now have completed.
    pub fn wait_rounds(&self, n: u32) {
        let rounds = |a: &Agent| {
            a.metric("coredns_healthcheck_rounds_total", &[])
                .unwrap_or(0.0)
        };
        let start = rounds(self);
        self.wait_for(&format!("{n} more rounds"), |a| {
            rounds(a) >= start + f64::from(n)
        });
    }

    /// Asserts the exit status of a finished `hc-cli`, showing its output when it differs.
    pub fn assert_exit(o: &std::process::Output, code: i32) {
        assert_eq!(
            o.status.code(),
            Some(code),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the agent and returns everything it logged.
    pub fn finish(mut self) -> String {
        let _ = self.child.kill();
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut log);
        }
        log
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `kubectl kustomize DIR` (relative to the repository's root): the YAML and its objects.
pub fn render(dir: &str) -> (String, Vec<serde_json::Value>) {
    let out = Command::new("kubectl")
        .args(["kustomize", &root().join(dir).display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl ({e}): these tests need kubectl (the client) to render the kustomizations"));
    assert!(
        out.status.success(),
        "{dir} does not render: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    let docs = objects(&yaml);
    (yaml, docs)
}

/// The objects of a YAML stream (empty documents left out).
pub fn objects(yaml: &str) -> Vec<serde_json::Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

/// `kubernetes-validate --strict` against the Kubernetes 1.33 schema (the version .ci/run pins).
pub fn kubernetes_validate(yaml: &str) -> std::process::Output {
    let file = std::env::temp_dir().join(format!("{}.yaml", hc_testkit::unique_name("hcdeploy")));
    std::fs::write(&file, yaml).unwrap();
    // As a module: no dependence on where pip put the script (pyenv shims need a rehash).
    let out = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "-k", "1.33.0", &file.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 -m kubernetes_validate ({e}): pip install kubernetes-validate==1.33.1 (.ci/run does)"));
    let _ = std::fs::remove_file(file);
    if out.status.code() == Some(1)
        && String::from_utf8_lossy(&out.stderr).contains("No module named kubernetes_validate")
    {
        panic!(
            "kubernetes-validate is missing: pip install kubernetes-validate==1.33.1 (.ci/run does)"
        );
    }
    out
}

/// `python3 deploy/helm/render.py ARGS` (the Helm chart through Helm's Go SDK, the PyPI package
/// helm-python-sdk): its output. Panics, naming the install, when python3 or the package is
/// missing.
pub fn helm_py(args: &[&str]) -> std::process::Output {
    let out = Command::new("python3")
        .arg(root().join("deploy/helm/render.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): the Helm chart's tests need python3 and the package helm-python-sdk (.ci/run installs it)"));
    assert_ne!(
        out.status.code(),
        Some(2),
        "deploy/helm/render.py cannot run: {}(python3 -m pip install helm-python-sdk; .ci/run does)",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The chart rendered with these values files (relative to the repository's root, later ones
/// win) into `namespace`: the YAML and its objects.
pub fn helm_render(values: &[&str], namespace: &str) -> (String, Vec<serde_json::Value>) {
    let mut args = vec!["--namespace".to_owned(), namespace.to_owned()];
    for v in values {
        args.push("-f".to_owned());
        args.push(root().join(v).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = helm_py(&args);
    assert!(
        out.status.success(),
        "the chart does not render with {values:?} in {namespace}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    let docs = objects(&yaml);
    (yaml, docs)
}

/// The objects of the rendered kustomization `dir`.
pub fn rendered(dir: &str) -> Vec<serde_json::Value> {
    render(dir).1
}
