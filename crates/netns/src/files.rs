//! Reading files that someone else controls: a pod's `resolv.conf` (through `/proc/PID/root`),
//! a process's `comm` and `cgroup` (a `--proc-root` may point anywhere).
//!
//! A pod can put anything at its `/etc/resolv.conf`: a FIFO (a plain `open` blocks forever), a
//! link to `/dev/zero` (a plain read never ends), a huge file, an absolute symlink (which,
//! followed from outside, resolves against the reader's root, not the container's). So: opened
//! non-blocking; regular files only; at most [`MAX_FILE`] bytes; a path inside a container's root
//! resolved inside that root (`openat2(2)` with `RESOLVE_IN_ROOT`). These functions block on
//! slow filesystems like any read: callers run them off the runtime's threads, with a timeout.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

/// The most bytes read from such a file: a `resolv.conf` is a few hundred.
pub const MAX_FILE: usize = 64 * 1024;

fn invalid(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
}

/// Checks the opened file is a regular one, and reads at most [`MAX_FILE`] bytes of it as text.
fn read_bounded(mut f: File) -> std::io::Result<String> {
    let t = f.metadata()?.file_type();
    if !t.is_file() {
        let what = if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(invalid(format!("{what}, not a regular file: not read")));
    }
    let mut buf = Vec::with_capacity(1024);
    (&mut f).take(MAX_FILE as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_FILE {
        return Err(invalid(format!(
            "larger than {} KiB: not read",
            MAX_FILE / 1024
        )));
    }
    String::from_utf8(buf).map_err(|_| invalid("not UTF-8 text".into()))
}

/// Reads a small text file at `path`: non-blocking open, regular files only, at most
/// [`MAX_FILE`] bytes.
///
/// ```
/// let text = hc_netns::read_small("/proc/self/comm".as_ref()).unwrap();
/// assert!(!text.is_empty());
/// assert!(hc_netns::read_small("/dev/zero".as_ref()).is_err());
/// ```
pub fn read_small(path: &Path) -> std::io::Result<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path)?;
    read_bounded(f)
}

fn libc_flags() -> i32 {
    (OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits()
}

/// Reads `path` (relative, e.g. `etc/resolv.conf`) inside the directory tree rooted at `root`
/// (e.g. `/proc/PID/root`), as the container sees it: symlinks, absolute ones included, resolve
/// inside `root` and never above it. Then as [`read_small`]. On kernels without `openat2(2)`
/// (before Linux 5.6), the last component must not be a symlink.
pub fn read_in_root(root: &Path, path: &Path) -> std::io::Result<String> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_PATH).bits())
        .open(root)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(dir.as_fd(), path, how) {
        Ok(fd) => read_bounded(File::from(fd)),
        Err(nix::errno::Errno::ENOSYS) => {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc_flags() | OFlag::O_NOFOLLOW.bits())
                .open(root.join(path))?;
            read_bounded(f)
        }
        Err(e) => Err(std::io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_huge_files_are_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = read_small(&fifo).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let e = read_small(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'#'; MAX_FILE + 1]).unwrap();
        let e = read_small(&big).unwrap_err();
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
        let ok = d.path().join("ok");
        std::fs::write(&ok, "nameserver 10.96.0.10\n").unwrap();
        assert_eq!(read_small(&ok).unwrap(), "nameserver 10.96.0.10\n");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::write(root.join("run/real.conf"), "nameserver 10.96.0.10\n").unwrap();
        // An absolute link: inside the container it means <root>/run/real.conf.
        std::os::unix::fs::symlink("/run/real.conf", root.join("etc/resolv.conf")).unwrap();
        let text = read_in_root(&root, Path::new("etc/resolv.conf")).unwrap();
        assert_eq!(text, "nameserver 10.96.0.10\n");
        // A link to a file of the reader's own root that the container lacks: not found, and
        // never the reader's file.
        std::os::unix::fs::symlink("/etc/hostname", root.join("etc/hosts")).unwrap();
        assert!(read_in_root(&root, Path::new("etc/hosts")).is_err());
        // A device node in the container's root: refused, not read.
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let zero = root.join("etc/zero");
        mknod(
            &zero,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 5),
        )
        .unwrap();
        let e = read_in_root(&root, Path::new("etc/zero")).unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        // `..` does not climb out either.
        std::fs::write(d.path().join("outside"), "secret").unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("etc/up")).unwrap();
        assert!(read_in_root(&root, Path::new("etc/up")).is_err());
    }
}
