//! Helpers shared by the agent tests: a running `hc-cli run` and its endpoints.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hc_testkit::{HttpResponse, Netns, free_port, http};

#[cfg(target_os = "linux")]
pub mod shipped;

pub const BIN: &str = env!("CARGO_BIN_EXE_hc-cli");

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
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
    let docs = serde_norway::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect();
    (yaml, docs)
}

/// The objects of the rendered kustomization `dir`.
pub fn rendered(dir: &str) -> Vec<serde_json::Value> {
    render(dir).1
}
