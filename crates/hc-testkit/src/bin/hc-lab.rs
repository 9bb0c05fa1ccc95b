//! Builds a lab node (see `hc_testkit::Lab`), runs one command while it stands, then removes
//! it. For benchmarks and demos:
//!
//! ```text
//! hc-lab --dns 2 --pods 100 -- bash -c 'ip netns exec "$HC_LAB_NODE" hc-cli sweep ...'
//! hc-lab --ipv6 --nodelocal -- ...
//! ```
//!
//! The command gets `HC_LAB_NODE` (the node namespace), `HC_LAB_PODS` (client pod namespaces,
//! space-separated), `HC_LAB_GLOB` (a glob matching them), `HC_LAB_TARGETS` (the VIP and the DNS
//! pod addresses), `HC_LAB_TARGETS6` (with `--ipv6`: the IPv6 VIP and the DNS pods' IPv6
//! addresses, bracketed with port 53), `HC_LAB_NODELOCAL` (with `--nodelocal`: the node-local
//! cache's address and its PID) and `HC_LAB_EXPECT` (the answer). Its exit status is hc-lab's.

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: hc-lab [--dns N] [--pods N] [--ipv6] [--nodelocal] -- COMMAND [ARGS...]";
    let Some(split) = args.iter().position(|a| a == "--") else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (opts, cmd) = (&args[..split], &args[split + 1..]);
    let mut dns = 2usize;
    let mut pods = 3usize;
    let mut options = hc_testkit::LabOptions::default();
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match o.as_str() {
            "--ipv6" => {
                options = options.ipv6();
                continue;
            }
            "--nodelocal" => {
                options = options.nodelocal();
                continue;
            }
            _ => {}
        }
        let v = it.next().and_then(|v| v.parse().ok());
        match (o.as_str(), v) {
            ("--dns", Some(n)) if (1..=200).contains(&n) => dns = n,
            ("--pods", Some(n)) if n <= 2000 => pods = n,
            _ => {
                eprintln!("bad option {o}: {usage} (--dns 1-200, --pods 0-2000)");
                std::process::exit(2);
            }
        }
    }
    if cmd.is_empty() {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let lab = hc_testkit::Lab::with(dns, pods, options);
    let names: Vec<&str> = lab.pods.iter().map(|p| p.ns.name()).collect();
    let targets: Vec<String> = lab.targets().iter().map(|t| t.ip().to_string()).collect();
    let targets6: Vec<String> = lab.targets6().iter().map(ToString::to_string).collect();
    let nodelocal = (lab.nodelocal.as_ref())
        .map(|c| format!("{} {}", c.addr().ip(), c.pid()))
        .unwrap_or_default();
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .env("HC_LAB_NODE", lab.node.name())
        .env("HC_LAB_PODS", names.join(" "))
        .env("HC_LAB_GLOB", lab.client_glob())
        .env("HC_LAB_TARGETS", targets.join(" "))
        .env("HC_LAB_TARGETS6", targets6.join(" "))
        .env("HC_LAB_NODELOCAL", nodelocal)
        .env("HC_LAB_EXPECT", hc_testkit::LAB_API_IP.to_string())
        .status();
    drop(lab);
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("cannot run {}: {e}", cmd[0]);
            std::process::exit(2);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("hc-lab needs Linux network namespaces");
    std::process::exit(2);
}
