//! Finding every network namespace on the node: from `<proc-root>/[0-9]*/ns/net`, deduplicated
//! by (device, inode), and from the bind mounts under `/run/netns` and `/var/run/netns`.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cgroup::parse_cgroup;
use crate::error::NetnsError;

/// Where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// The proc filesystem of the node (`/proc`, or `/host/proc` in a DaemonSet).
    pub proc_root: PathBuf,
    /// Directories of named (bind-mounted) namespaces.
    pub netns_dirs: Vec<PathBuf>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            proc_root: PathBuf::from("/proc"),
            netns_dirs: vec![PathBuf::from("/run/netns"), PathBuf::from("/var/run/netns")],
        }
    }
}

/// One network namespace. Serializes to the object of `hc-cli netns list --json` (a contract:
/// `inode`, `pid`, `process`, `name`, `path`, `pod_uid`, `container_id`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Namespace {
    /// Device of the nsfs inode (namespaces are identified by device and inode).
    #[serde(skip)]
    pub dev: u64,
    /// Inode number (what `ls -L -i /proc/PID/ns/net` and `lsns` show).
    pub inode: u64,
    /// A process in it: the lowest PID seen.
    pub pid: Option<u32>,
    /// That process's name (`/proc/PID/comm`).
    pub process: Option<String>,
    /// The name under `/run/netns`, when bind-mounted there.
    pub name: Option<String>,
    /// The file to open to enter it: the bind mount when named, else `<proc-root>/PID/ns/net`.
    #[serde(serialize_with = "display")]
    pub path: PathBuf,
    /// The Kubernetes pod UID, from the process's cgroup.
    pub pod_uid: Option<String>,
    /// The container ID, from the process's cgroup.
    pub container_id: Option<String>,
}

fn display<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

impl Namespace {
    /// A namespace known only by its identity and the file that enters it.
    pub fn at((dev, inode): (u64, u64), path: PathBuf) -> Self {
        Namespace {
            dev,
            inode,
            pid: None,
            process: None,
            name: None,
            path,
            pod_uid: None,
            container_id: None,
        }
    }

    /// A short label: the name when bind-mounted, else `pid/process`.
    pub fn label(&self) -> String {
        match (&self.name, self.pid, &self.process) {
            (Some(n), _, _) => n.clone(),
            (None, Some(pid), Some(p)) => format!("{pid}/{p}"),
            (None, Some(pid), None) => pid.to_string(),
            (None, None, _) => self.path.display().to_string(),
        }
    }
}

/// `hc-cli netns list`: a header and one row per namespace (inode, PID, process, name with
/// `(this)` on the caller's own, pod UID, container ID shortened), `-` for what is unknown.
#[derive(Debug, Clone, Copy)]
pub struct NamespaceTable<'a> {
    /// The namespaces.
    pub namespaces: &'a [Namespace],
    /// The caller's own namespace, (device, inode).
    pub me: Option<(u64, u64)>,
}

impl std::fmt::Display for NamespaceTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let row = |f: &mut std::fmt::Formatter<'_>, c: [&str; 6]| {
            writeln!(
                f,
                "{:<12} {:>8} {:<16} {:<24} {:<36} {}",
                c[0], c[1], c[2], c[3], c[4], c[5]
            )
        };
        row(
            f,
            ["INODE", "PID", "PROCESS", "NAME", "POD UID", "CONTAINER"],
        )?;
        for n in self.namespaces {
            let mut name = n.name.clone().unwrap_or_else(|| "-".into());
            if self.me == Some((n.dev, n.inode)) {
                name.push_str(" (this)");
            }
            let pid = n.pid.map(|p| p.to_string());
            let container = n.container_id.as_deref().map(|c| &c[..c.len().min(13)]);
            let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
            let inode = n.inode.to_string();
            row(
                f,
                [
                    &inode,
                    &or_dash(pid.as_deref()),
                    &or_dash(n.process.as_deref()),
                    &name,
                    &or_dash(n.pod_uid.as_deref()),
                    &or_dash(container),
                ],
            )?;
        }
        Ok(())
    }
}

/// The result of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Namespaces found, processes' first (by PID), then named-only ones (by name).
    pub namespaces: Vec<Namespace>,
    /// Processes whose namespace could not be read for lack of permission (CAP_SYS_PTRACE, or
    /// out of reach: [`Scan::denied_note`] says which).
    pub denied: usize,
}

impl Scan {
    /// A warning to print when some processes could not be inspected, naming the capability to
    /// grant only when it is the cause; `None` when all were.
    pub fn denied_note(&self) -> Option<String> {
        (self.denied > 0).then(|| {
            format!(
                "{} processes could not be inspected{}",
                self.denied,
                crate::error::denied_hint()
            )
        })
    }
}

/// Scans the proc root and the netns directories. Processes that vanish mid-scan are skipped;
/// missing netns directories are fine. Fails only when the proc root cannot be listed or holds
/// no process at all.
pub fn scan(opts: &ScanOptions) -> Result<Scan, NetnsError> {
    let proc_err = |reason: String| NetnsError::ProcRoot {
        path: opts.proc_root.clone(),
        reason,
    };
    let entries = fs::read_dir(&opts.proc_root).map_err(|e| proc_err(e.to_string()))?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    if pids.is_empty() {
        return Err(proc_err(
            "no process directories in it; is it a proc filesystem?".into(),
        ));
    }
    pids.sort_unstable();

    let mut out = Scan::default();
    let mut index: HashMap<(u64, u64), usize> = HashMap::new();
    for pid in pids {
        let path = opts.proc_root.join(pid.to_string()).join("ns/net");
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                out.denied += 1;
                continue;
            }
            // Vanished (or a kernel thread without a readable ns): normal.
            Err(_) => continue,
        };
        let key = (meta.dev(), meta.ino());
        if index.contains_key(&key) {
            continue;
        }
        index.insert(key, out.namespaces.len());
        out.namespaces.push(Namespace {
            dev: key.0,
            inode: key.1,
            pid: Some(pid),
            process: None,
            name: None,
            path,
            pod_uid: None,
            container_id: None,
        });
    }
    // Only representatives are read further: one comm and one cgroup file per namespace.
    for ns in &mut out.namespaces {
        let Some(pid) = ns.pid else { continue };
        let dir = opts.proc_root.join(pid.to_string());
        ns.process = crate::files::read_small(&dir.join("comm"))
            .ok()
            .map(|s| s.trim_end().to_owned());
        if let Ok(cg) = crate::files::read_small(&dir.join("cgroup")) {
            let k = parse_cgroup(&cg);
            ns.pod_uid = k.pod_uid;
            ns.container_id = k.container_id;
        }
    }

    let first_named_only = out.namespaces.len();
    for dir in &opts.netns_dirs {
        for (name, path, key) in named(dir) {
            match index.get(&key) {
                Some(&i) => {
                    let ns = &mut out.namespaces[i];
                    if ns.name.is_none() {
                        ns.name = Some(name);
                        ns.path = path;
                    }
                }
                None => {
                    index.insert(key, out.namespaces.len());
                    out.namespaces.push(Namespace {
                        dev: key.0,
                        inode: key.1,
                        pid: None,
                        process: None,
                        name: Some(name),
                        path,
                        pod_uid: None,
                        container_id: None,
                    });
                }
            }
        }
    }
    out.namespaces[first_named_only..].sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// (name, path, (dev, inode)) of every entry of a netns directory.
fn named(dir: &Path) -> Vec<(String, PathBuf, (u64, u64))> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_str()?.to_owned();
            let path = e.path();
            let m = fs::metadata(&path).ok()?;
            Some((name, path, (m.dev(), m.ino())))
        })
        .collect();
    v.sort();
    v
}

/// The (device, inode) of the namespace at `path` (e.g. `/proc/self/ns/net`).
pub fn identity(path: &Path) -> Result<(u64, u64), NetnsError> {
    let m = fs::metadata(path).map_err(|source| NetnsError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok((m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "4f0c6f4e-2c8b-4a8e-9a3f-1b2c3d4e5f60";
    const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A fake proc tree: `ns/net` files hard-linked to share an inode, as processes share a
    /// namespace.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Fake {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("nsfs")).unwrap();
            fs::create_dir_all(dir.path().join("proc")).unwrap();
            fs::create_dir_all(dir.path().join("netns")).unwrap();
            Fake { dir }
        }
        fn proc(&self) -> PathBuf {
            self.dir.path().join("proc")
        }
        fn netns(&self) -> PathBuf {
            self.dir.path().join("netns")
        }
        fn ns(&self, id: &str) -> PathBuf {
            let p = self.dir.path().join("nsfs").join(id);
            if !p.exists() {
                fs::write(&p, "").unwrap();
            }
            p
        }
        fn process(&self, pid: u32, comm: &str, ns: &str, cgroup: &str) {
            let d = self.proc().join(pid.to_string());
            fs::create_dir_all(d.join("ns")).unwrap();
            fs::hard_link(self.ns(ns), d.join("ns/net")).unwrap();
            fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(d.join("cgroup"), cgroup).unwrap();
        }
        fn bind(&self, name: &str, ns: &str) {
            fs::hard_link(self.ns(ns), self.netns().join(name)).unwrap();
        }
        fn opts(&self) -> ScanOptions {
            ScanOptions {
                proc_root: self.proc(),
                netns_dirs: vec![self.netns(), self.dir.path().join("missing")],
            }
        }
    }

    #[test]
    fn dedupes_attributes_and_names() {
        let f = Fake::new();
        f.process(1, "systemd", "host", "0::/init.scope\n");
        f.process(42, "sshd", "host", "0::/system.slice/sshd.service\n");
        let u = UID.replace('-', "_");
        f.process(
            300,
            "pause",
            "pod-a",
            &format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/cri-containerd-{CID}.scope\n"),
        );
        f.process(301, "coredns", "pod-a", "0::/whatever\n");
        f.bind("cni-1234", "pod-a");
        f.bind("lab-only", "lab");
        // A process directory without ns/net (a zombie or a kernel thread): skipped.
        fs::create_dir_all(f.proc().join("7")).unwrap();
        // Not processes.
        fs::create_dir_all(f.proc().join("sys")).unwrap();
        fs::write(f.proc().join("uptime"), "1 1").unwrap();

        let scan = scan(&f.opts()).unwrap();
        let n = &scan.namespaces;
        assert_eq!(n.len(), 3, "{n:#?}");
        assert_eq!(n[0].pid, Some(1));
        assert_eq!(n[0].process.as_deref(), Some("systemd"));
        assert_eq!(n[0].pod_uid, None);
        assert_eq!(n[1].pid, Some(300), "lowest PID represents the namespace");
        assert_eq!(n[1].process.as_deref(), Some("pause"));
        assert_eq!(n[1].pod_uid.as_deref(), Some(UID));
        assert_eq!(n[1].container_id.as_deref(), Some(CID));
        assert_eq!(n[1].name.as_deref(), Some("cni-1234"));
        assert_eq!(
            n[1].path,
            f.netns().join("cni-1234"),
            "named namespaces are entered by name"
        );
        assert_eq!(n[2].pid, None);
        assert_eq!(n[2].name.as_deref(), Some("lab-only"));
        assert_ne!(n[0].inode, n[1].inode);
        assert_eq!(n[1].label(), "cni-1234");
        assert_eq!(n[0].label(), "1/systemd");
    }

    #[test]
    fn same_namespace_in_two_netns_dirs_is_one() {
        let f = Fake::new();
        f.process(1, "init", "host", "");
        f.bind("a", "lab");
        let other = f.dir.path().join("var-run-netns");
        fs::create_dir_all(&other).unwrap();
        fs::hard_link(f.ns("lab"), other.join("a")).unwrap();
        let mut o = f.opts();
        o.netns_dirs.push(other);
        assert_eq!(scan(&o).unwrap().namespaces.len(), 2);
    }

    #[test]
    fn unreadable_or_empty_proc_root_is_an_error() {
        let f = Fake::new();
        let mut o = f.opts();
        o.proc_root = f.dir.path().join("nope");
        let e = scan(&o).unwrap_err().to_string();
        assert!(
            e.contains("cannot read proc root") && e.contains("nope"),
            "{e}"
        );
        o.proc_root = f.netns();
        let e = scan(&o).unwrap_err().to_string();
        assert!(e.contains("no process directories"), "{e}");
    }

    #[test]
    fn real_proc_finds_our_own_namespace() {
        let scan = scan(&ScanOptions::default()).unwrap();
        let me = identity(Path::new("/proc/self/ns/net")).unwrap();
        assert!(scan.namespaces.iter().any(|n| (n.dev, n.inode) == me));
    }
}
