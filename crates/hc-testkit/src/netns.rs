use std::process::Command;

/// A network namespace made for one test (`ip netns add`), with `lo` up; deleted on drop, even
/// when the test panics. Needs root (CAP_SYS_ADMIN): without it, creation panics saying so.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` ({e}): install iproute2"));
    assert!(
        out.status.success(),
        "`ip {}` failed: {} (these tests need root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Netns {
    /// Creates `<prefix><unique>` and brings its loopback up.
    pub fn new(prefix: &str) -> Netns {
        Self::new_named(&crate::unique_name(prefix))
    }

    /// Creates a namespace with exactly this name (make it unique per run) and brings its
    /// loopback up.
    pub fn new_named(name: &str) -> Netns {
        crate::needs_root(&format!("creating network namespace {name}"));
        let name = name.to_owned();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Its name (under /run/netns).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its path, `/run/netns/<name>`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs `f` inside the namespace on a dedicated OS thread, and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        run_in(&self.path(), f)
    }

    /// A `Command` that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs `f` on a new OS thread that first enters the network namespace at `path`.
pub(crate) fn run_in<T: Send>(path: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(path).unwrap();
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}
