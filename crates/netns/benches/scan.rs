//! Enumeration cost: a fake proc tree of 10,000 processes in 110 namespaces (a busy node with
//! 110 pods), and this machine's real /proc. `cargo bench -p hc-netns`.

#[cfg(target_os = "linux")]
mod bench {
    use std::fs;
    use std::path::Path;

    use criterion::Criterion;
    use hc_netns::{ScanOptions, scan};

    const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn fake(root: &Path, processes: u32, namespaces: u32) {
        fs::create_dir_all(root.join("nsfs")).unwrap_or_else(|e| panic!("{e}"));
        for n in 0..namespaces {
            fs::write(root.join("nsfs").join(n.to_string()), "").unwrap_or_else(|e| panic!("{e}"));
        }
        for pid in 1..=processes {
            let d = root.join("proc").join(pid.to_string());
            fs::create_dir_all(d.join("ns")).unwrap_or_else(|e| panic!("{e}"));
            let n = pid % namespaces;
            fs::hard_link(root.join("nsfs").join(n.to_string()), d.join("ns/net"))
                .unwrap_or_else(|e| panic!("{e}"));
            fs::write(d.join("comm"), "pause\n").unwrap_or_else(|e| panic!("{e}"));
            let uid = format!("{n:08x}-0000-4000-8000-000000000000");
            fs::write(
                d.join("cgroup"),
                format!("0::/kubepods/besteffort/pod{uid}/{CID}\n"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    pub(crate) fn run(c: &mut Criterion) {
        let dir = std::env::temp_dir().join(format!("hc-scan-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fake(&dir, 10_000, 110);
        let opts = ScanOptions {
            proc_root: dir.join("proc"),
            netns_dirs: vec![],
        };
        assert_eq!(scan(&opts).map(|s| s.namespaces.len()).unwrap_or(0), 110);
        let mut g = c.benchmark_group("scan");
        g.sample_size(20);
        g.bench_function("fake_10000_processes_110_netns", |b| b.iter(|| scan(&opts)));
        g.bench_function("real_proc", |b| b.iter(|| scan(&ScanOptions::default())));
        g.finish();
        let _ = fs::remove_dir_all(&dir);
    }
}

#[cfg(target_os = "linux")]
criterion::criterion_group!(benches, bench::run);
#[cfg(target_os = "linux")]
criterion::criterion_main!(benches);

#[cfg(not(target_os = "linux"))]
fn main() {}
