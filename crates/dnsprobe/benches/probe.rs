//! Probe cost against a real local server (dnsmasq on loopback).
//!
//! `cargo bench -p dnsprobe` — see docs/performance.md for recorded figures and
//! `scripts/bench-probe.sh` for the whole-process comparison with `dig`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dnsprobe::{ProbeSpec, TransportMode};
use hc_testkit::{Dnsmasq, loopback};

fn bench(c: &mut Criterion) {
    let api: IpAddr = "10.96.0.1".parse().unwrap_or(IpAddr::from([10, 96, 0, 1]));
    let server = Dnsmasq::start(
        loopback(),
        &[("kubernetes.default.svc.cluster.local", api)],
        "cluster.local",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut spec = ProbeSpec::new(server.addr());
    spec.timeout = Duration::from_secs(2);

    let mut g = c.benchmark_group("probe");
    g.bench_function("udp", |b| {
        b.iter(|| black_box(rt.block_on(dnsprobe::probe(&spec))))
    });
    let mut tcp = spec.clone();
    tcp.transport = TransportMode::Tcp;
    g.bench_function("tcp", |b| {
        b.iter(|| black_box(rt.block_on(dnsprobe::probe(&tcp))))
    });
    g.sample_size(20);
    let many = vec![spec.clone(); 1000];
    g.bench_function("udp_1000_concurrent", |b| {
        b.iter(|| {
            let reports = rt.block_on(dnsprobe::probe_many(&many, Duration::from_secs(5)));
            let ok = reports.iter().filter(|r| r.healthy()).count();
            assert_eq!(
                ok, 1000,
                "every probe must be answered for the figure to mean anything"
            );
            black_box(reports)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
