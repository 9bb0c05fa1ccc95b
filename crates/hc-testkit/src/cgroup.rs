//! A memory cgroup of its own, as a container runtime gives a pod: a limit, the processes put
//! in it, the OOM kills counted. cgroup v2 (`memory.max`) or v1 (`memory.limit_in_bytes`),
//! created under the test's own cgroup, removed on drop. Needs root.

use std::path::{Path, PathBuf};

/// A memory cgroup with a limit; removed on drop (its processes must have exited).
#[derive(Debug)]
pub struct MemoryCgroup {
    path: PathBuf,
    v2: bool,
}

/// Where the memory controller of this process's cgroup is: (directory, is v2).
fn own_memory_cgroup() -> (PathBuf, bool) {
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let root = Path::new("/sys/fs/cgroup");
    let v2_controllers =
        std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if v2_controllers.split_whitespace().any(|c| c == "memory") {
        let rel = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a cgroup v2 line in /proc/self/cgroup");
        return (root.join(rel.trim_start_matches('/')), true);
    }
    let rel = own
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            ctrl.split(',').any(|c| c == "memory").then_some(path)
        })
        .expect("no memory controller in /proc/self/cgroup: mount cgroup v2 with memory, or v1's memory hierarchy");
    (root.join("memory").join(rel.trim_start_matches('/')), false)
}

impl MemoryCgroup {
    /// A new cgroup limited to `limit` bytes of memory (and no swap on v2).
    pub fn new(limit: u64) -> MemoryCgroup {
        crate::needs_root("creating a memory cgroup");
        let (parent, v2) = own_memory_cgroup();
        let path = parent.join(crate::unique_name("hcmem"));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", path.display()));
        let cg = MemoryCgroup { path, v2 };
        if v2 {
            cg.write("memory.max", &limit.to_string());
            // No swap: what does not fit is an OOM kill, as in a pod without swap.
            let _ = std::fs::write(cg.path.join("memory.swap.max"), "0");
        } else {
            cg.write("memory.limit_in_bytes", &limit.to_string());
        }
        cg
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.path.join(file), value).unwrap_or_else(|e| {
            panic!(
                "cannot write {value} to {}/{file}: {e}",
                self.path.display()
            )
        });
    }

    /// Moves process `pid` into the cgroup (memory it already has stays charged elsewhere).
    pub fn add(&self, pid: u32) {
        self.write("cgroup.procs", &pid.to_string());
    }

    /// A command that runs `program` inside the cgroup from its first instruction (a shell joins
    /// the cgroup, then execs it), so that all its memory is charged here.
    pub fn command(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(self.path.join("cgroup.procs"))
            .arg(program);
        c
    }

    /// OOM kills in the cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(self.path.join(file)).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The most memory the cgroup used, in bytes (`memory.peak` or `max_usage_in_bytes`).
    pub fn peak(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.path.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The processes may take a moment to be reaped.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("warning: could not remove cgroup {}", self.path.display());
    }
}
