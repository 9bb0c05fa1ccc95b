//! `hc-cli netns list`: the network namespaces of this node.

use hc_netns::{NamespaceJson, NamespaceTable, ScanOptions};

use crate::cli::NetnsListArgs;
use crate::exit::{self, Context};
use crate::output::Out;

pub(crate) fn run(args: NetnsListArgs) -> exit::Result {
    let opts = ScanOptions {
        proc_root: args.proc.proc_root,
        ..ScanOptions::default()
    };
    // A --proc-root that is not a readable proc filesystem is a usage error.
    let scan = hc_netns::scan(&opts).usage()?;
    if let Some(note) = scan.denied_note() {
        eprintln!("warning: {note}");
    }
    let me = hc_netns::identity("/proc/self/ns/net".as_ref()).ok();
    let mut out = Out::new();
    if args.json {
        let host = |ns: &hc_netns::Namespace| me == Some((ns.dev, ns.inode));
        let v: Vec<NamespaceJson<'_>> = (scan.namespaces.iter())
            .map(|ns| NamespaceJson { ns, host: host(ns) })
            .collect();
        out.json(&v)?;
    } else {
        let table = NamespaceTable {
            namespaces: &scan.namespaces,
            me,
        };
        out.line(table.to_string().trim_end())?;
    }
    Ok(exit::HEALTHY)
}
