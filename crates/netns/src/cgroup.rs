//! Attributing a process to a Kubernetes pod and container from its `/proc/PID/cgroup`.
//!
//! Pure: parses text, touches no file. Handles cgroup v1 and v2, the systemd and cgroupfs
//! drivers, and containerd, CRI-O and Docker naming:
//!
//! ```text
//! 0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//! 0::/kubepods/besteffort/pod<uid>/<id>
//! 11:memory:/kubepods/burstable/pod<uid>/<id>
//! 0::/kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope
//! 4:cpu,cpuacct:/kubepods/pod<uid>/docker-<id>.scope
//! ```

use procfs_core::FromRead;
use procfs_core::ProcessCGroups;

/// What a cgroup file says about Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeRef {
    /// The pod UID, with dashes (`4f0c6f4e-2c8b-4a8e-9a3f-1b2c3d4e5f60`).
    pub pod_uid: Option<String>,
    /// The container ID (64 hex digits), without runtime prefix.
    pub container_id: Option<String>,
}

/// Parses the content of a `/proc/PID/cgroup` file. Lines that do not parse, and paths that are
/// not Kubernetes', yield nothing.
pub fn parse_cgroup(content: &str) -> KubeRef {
    let Ok(groups) = ProcessCGroups::from_read(content.as_bytes()) else {
        return KubeRef::default();
    };
    // Prefer the v2 unified line (hierarchy 0), then any v1 line that names a pod.
    let mut paths: Vec<(u32, &str)> = groups
        .0
        .iter()
        .map(|g| (g.hierarchy, g.pathname.as_str()))
        .collect();
    paths.sort_by_key(|(h, _)| *h != 0);
    for (_, path) in paths {
        let r = from_path(path);
        if r.pod_uid.is_some() {
            return r;
        }
    }
    KubeRef::default()
}

/// Attribution from one cgroup path.
pub fn from_path(path: &str) -> KubeRef {
    if !path.contains("kubepods") {
        return KubeRef::default();
    }
    let mut out = KubeRef::default();
    for seg in path.split('/') {
        if let Some(uid) = pod_uid(seg) {
            out.pod_uid = Some(uid);
        } else if out.pod_uid.is_some()
            && let Some(id) = container_id(seg)
        {
            out.container_id = Some(id);
        }
    }
    out
}

fn pod_uid(seg: &str) -> Option<String> {
    let s = seg.strip_suffix(".slice").unwrap_or(seg);
    let idx = s.rfind("pod")?;
    if idx != 0 && !s[..idx].ends_with('-') {
        return None;
    }
    let uid = s[idx + 3..].replace('_', "-");
    is_uid(&uid).then_some(uid)
}

fn is_uid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn container_id(seg: &str) -> Option<String> {
    let s = seg.strip_suffix(".scope").unwrap_or(seg);
    // CRI-O's conmon monitor process is not the container.
    if s.starts_with("crio-conmon-") {
        return None;
    }
    let id = ["cri-containerd-", "crio-", "docker-", "containerd-"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "4f0c6f4e-2c8b-4a8e-9a3f-1b2c3d4e5f60";
    const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn both(content: &str) -> (Option<String>, Option<String>) {
        let r = parse_cgroup(content);
        (r.pod_uid, r.container_id)
    }

    fn want() -> (Option<String>, Option<String>) {
        (Some(UID.into()), Some(CID.into()))
    }

    #[test]
    fn v2_systemd_containerd() {
        let u = UID.replace('-', "_");
        let c = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{CID}.scope\n"
        );
        assert_eq!(both(&c), want());
    }

    #[test]
    fn v2_systemd_guaranteed_crio() {
        let u = UID.replace('-', "_");
        let c = format!("0::/kubepods.slice/kubepods-pod{u}.slice/crio-{CID}.scope\n");
        assert_eq!(both(&c), want());
        let conmon = format!("0::/kubepods.slice/kubepods-pod{u}.slice/crio-conmon-{CID}.scope\n");
        assert_eq!(both(&conmon), (Some(UID.into()), None));
    }

    #[test]
    fn v2_cgroupfs() {
        let c = format!("0::/kubepods/besteffort/pod{UID}/{CID}\n");
        assert_eq!(both(&c), want());
    }

    #[test]
    fn v1_cgroupfs_docker_and_containerd() {
        let c = format!(
            "12:pids:/kubepods/burstable/pod{UID}/{CID}\n11:memory:/kubepods/burstable/pod{UID}/{CID}\n1:name=systemd:/kubepods/burstable/pod{UID}/{CID}\n"
        );
        assert_eq!(both(&c), want());
        let docker = format!("4:cpu,cpuacct:/kubepods/pod{UID}/docker-{CID}.scope\n");
        assert_eq!(both(&docker), want());
    }

    #[test]
    fn v1_systemd_driver() {
        let u = UID.replace('-', "_");
        let c = format!(
            "7:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/docker-{CID}.scope\n"
        );
        assert_eq!(both(&c), want());
    }

    #[test]
    fn not_kubernetes() {
        assert_eq!(both("0::/system.slice/sshd.service\n"), (None, None));
        assert_eq!(
            both("0::/user.slice/user-0.slice/session-3.scope\n"),
            (None, None)
        );
        assert_eq!(both(&format!("0::/docker/{CID}\n")), (None, None));
        assert_eq!(both(""), (None, None));
        assert_eq!(both("garbage without colons\n"), (None, None));
        // Almost a pod segment: wrong UID shape.
        assert_eq!(both("0::/kubepods/podnot-a-uid/x\n"), (None, None));
    }
}
