//! List the network namespaces of this machine, then diagnose the path from one of them to a
//! DNS target.
//!
//! ```text
//! cargo run -p hc-netns --example diagnose                       # list only
//! cargo run -p hc-netns --example diagnose -- NETNS_NAME 10.96.0.10  # and diagnose (as root)
//! ```

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scan = hc_netns::scan(&hc_netns::ScanOptions::default())?;
    for ns in &scan.namespaces {
        println!(
            "{:>12} {:<24} pod={}",
            ns.inode,
            ns.label(),
            ns.pod_uid.as_deref().unwrap_or("-")
        );
    }
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(target)) = (args.next(), args.next()) else {
        return Ok(());
    };
    let target: std::net::SocketAddr = format!("{target}:53").parse()?;
    let ns = scan
        .namespaces
        .iter()
        .find(|n| n.name.as_deref() == Some(name.as_str()))
        .ok_or_else(|| format!("no namespace named {name}"))?;
    let pod = hc_netns::snapshot(Some(&ns.path), &[target.ip()])?;
    let node = hc_netns::snapshot(None, &[])?;
    let findings = hc_netns::diagnose_path(&pod, Some(&node), &[target]);
    if findings.is_empty() {
        println!("{name}: the path to {target} looks fine");
    }
    for f in findings {
        println!("{name}: {f}");
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {}
