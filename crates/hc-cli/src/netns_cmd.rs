//! `hc-cli netns list`: the network namespaces of this node.

use std::io::Write;

use hc_netns::{Namespace, ScanOptions};
use serde::Serialize;

use crate::cli::NetnsListArgs;
use crate::exit;

/// One namespace in JSON. Field names are a contract.
#[derive(Debug, Serialize)]
pub(crate) struct JsonNetns {
    pub(crate) inode: u64,
    pub(crate) pid: Option<u32>,
    pub(crate) process: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) path: String,
    pub(crate) pod_uid: Option<String>,
    pub(crate) container_id: Option<String>,
    /// True for the namespace hc-cli itself runs in.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) host: bool,
}

impl JsonNetns {
    pub(crate) fn from_ns(ns: &Namespace, host: bool) -> Self {
        JsonNetns {
            inode: ns.inode,
            pid: ns.pid,
            process: ns.process.clone(),
            name: ns.name.clone(),
            path: ns.path.display().to_string(),
            pod_uid: ns.pod_uid.clone(),
            container_id: ns.container_id.clone(),
            host,
        }
    }
}

pub(crate) fn scan_options(proc_root: &std::path::Path) -> ScanOptions {
    ScanOptions {
        proc_root: proc_root.to_owned(),
        ..ScanOptions::default()
    }
}

pub(crate) fn run(args: NetnsListArgs) -> anyhow::Result<u8> {
    let scan = match hc_netns::scan(&scan_options(&args.proc.proc_root)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(exit::USAGE);
        }
    };
    if scan.denied > 0 {
        eprintln!(
            "warning: {} processes could not be inspected (reading other users' /proc/PID/ns/net needs CAP_SYS_PTRACE)",
            scan.denied
        );
    }
    let me = hc_netns::identity("/proc/self/ns/net".as_ref()).ok();
    let mut out = std::io::stdout().lock();
    if args.json {
        let v: Vec<JsonNetns> = scan
            .namespaces
            .iter()
            .map(|n| JsonNetns::from_ns(n, me == Some((n.dev, n.inode))))
            .collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<12} {:>8} {:<16} {:<24} {:<36} CONTAINER",
            "INODE", "PID", "PROCESS", "NAME", "POD UID"
        )?;
        for n in &scan.namespaces {
            let dash = || "-".to_owned();
            let mut name = n.name.clone().unwrap_or_else(dash);
            if me == Some((n.dev, n.inode)) {
                name.push_str(" (this)");
            }
            writeln!(
                out,
                "{:<12} {:>8} {:<16} {:<24} {:<36} {}",
                n.inode,
                n.pid.map_or_else(dash, |p| p.to_string()),
                n.process.clone().unwrap_or_else(dash),
                name,
                n.pod_uid.clone().unwrap_or_else(dash),
                n.container_id
                    .as_deref()
                    .map_or_else(dash, |c| c[..c.len().min(13)].to_owned()),
            )?;
        }
    }
    Ok(exit::HEALTHY)
}
