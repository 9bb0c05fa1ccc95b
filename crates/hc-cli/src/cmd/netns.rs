//! `hc-cli netns list`: the network namespaces of this node.

use hc_netns::{NamespaceJson, ScanOptions};

use crate::cli::NetnsListArgs;
use crate::exit::{self, Context};
use crate::output::Out;

pub(crate) fn run(args: NetnsListArgs) -> exit::Result {
    let scan = hc_netns::scan(&ScanOptions {
        proc_root: args.proc.proc_root,
        ..ScanOptions::default()
    })
    .usage()?; // --proc-root is not a readable proc filesystem
    if scan.denied > 0 {
        eprintln!(
            "warning: {} processes could not be inspected (reading other users' /proc/PID/ns/net needs CAP_SYS_PTRACE)",
            scan.denied
        );
    }
    let me = hc_netns::identity("/proc/self/ns/net".as_ref()).ok();
    let is_me = |n: &hc_netns::Namespace| me == Some((n.dev, n.inode));
    let mut out = Out::new();
    if args.json {
        let v: Vec<NamespaceJson<'_>> = scan
            .namespaces
            .iter()
            .map(|ns| NamespaceJson {
                ns,
                host: is_me(ns),
            })
            .collect();
        out.json(&v)?;
        return Ok(exit::HEALTHY);
    }
    out.line(format_args!(
        "{:<12} {:>8} {:<16} {:<24} {:<36} CONTAINER",
        "INODE", "PID", "PROCESS", "NAME", "POD UID"
    ))?;
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    for n in &scan.namespaces {
        let mut name = dash(n.name.clone());
        if is_me(n) {
            name.push_str(" (this)");
        }
        let container = n
            .container_id
            .as_deref()
            .map(|c| c[..c.len().min(13)].to_owned());
        out.line(format_args!(
            "{:<12} {:>8} {:<16} {:<24} {:<36} {}",
            n.inode,
            dash(n.pid.map(|p| p.to_string())),
            dash(n.process.clone()),
            name,
            dash(n.pod_uid.clone()),
            dash(container),
        ))?;
    }
    Ok(exit::HEALTHY)
}
