//! `hc-cli sweep`: probe from this namespace and every selected pod namespace at once.

use hc_netns::{NetnsError, NsReport, SweepConfig};

use crate::cli::SweepArgs;
use crate::exit;
use crate::output::Out;

pub(crate) fn run(args: SweepArgs) -> exit::Result {
    if args.query.targets.is_empty() {
        let e = anyhow::anyhow!("no target: give --target IP[:PORT] (repeatable)");
        return Err(exit::usage(e));
    }
    let mut cfg = SweepConfig::new(args.query.addrs());
    let name = args.query.name_or_default();
    cfg.probe = crate::cli::probe_template(name, &args.query.expect, args.timeout, 1)
        .with_parallel_a_aaaa(args.parallel_a_aaaa);
    // With --dns-service, the other targets are the Service's endpoints (the DNS pods).
    cfg.endpoints = (cfg.targets.iter().map(|t| t.ip()))
        .filter(|ip| !args.select.dns_service.is_empty() && !args.select.dns_service.contains(ip))
        .collect();
    cfg.dns_service = args.select.dns_service;
    cfg.netns = args.netns;
    cfg.netns_glob = args.select.netns_glob;
    cfg.proc_root = args.select.proc.proc_root;
    cfg.client_walks = if args.client_path { usize::MAX } else { 0 };
    let reports = crate::block_on(hc_netns::sweep(&cfg))?.map_err(|e| match e {
        // A flag's value is wrong: a --netns name, a --proc-root that is no proc filesystem.
        NetnsError::UnknownName { .. } | NetnsError::ProcRoot { .. } => exit::usage(e),
        e => exit::runtime(e),
    })?;
    let mut out = Out::new();
    if args.json {
        out.json(&reports)?;
    } else {
        for r in &reports {
            out.status(r.healthy(), r)?;
        }
    }
    Ok(exit::status(reports.iter().all(NsReport::healthy)))
}
