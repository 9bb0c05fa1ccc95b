//! The load model of the agent's query budget (`hc_agent::schedule`), as a table: for nodes in
//! {10, 100, 1,000, 5,000} and CoreDNS pods in {2, 10, 100}, the DNS queries per second on the
//! whole of CoreDNS, per CoreDNS pod and per node; the Kubernetes API requests per second of the
//! agents and of the controller; the time until a failed CoreDNS pod has been probed by 3 nodes;
//! and the time until every pod namespace of a node was checked.
//!
//! ```text
//! cargo run -p hc-agent --example load-model                  # the defaults, 110 namespaces a node
//! cargo run -p hc-agent --example load-model -- --namespaces 30 --query-budget 0.5
//! ```

use std::time::Duration;

use hc_agent::schedule::{Budget, controller_api, model};

fn main() {
    let mut b = Budget::default();
    let mut namespaces = 110;
    let mut sample = 100;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!(
                "load-model: {flag} {value:?}: expected --namespaces N, --query-budget QPS, --interval SECONDS or --sample N"
            );
            std::process::exit(2)
        };
        match flag.as_str() {
            "--namespaces" => namespaces = value.parse().unwrap_or_else(|_| bad()),
            "--query-budget" => {
                b.qps = value
                    .parse()
                    .ok()
                    .filter(|q| *q > 0.0)
                    .unwrap_or_else(|| bad())
            }
            "--interval" => {
                let s: f64 = value
                    .parse()
                    .ok()
                    .filter(|s| *s >= 1.0)
                    .unwrap_or_else(|| bad());
                b.interval = Duration::from_secs_f64(s);
            }
            "--sample" => sample = value.parse().unwrap_or_else(|_| bad()),
            _ => bad(),
        }
    }
    println!(
        "budget {} q/s per node, rounds of {:?}, Service over TCP every {} rounds, {} observers a minute per CoreDNS pod, every namespace every {:?}; {namespaces} pod namespaces per node; controller --sample {sample}",
        b.qps, b.interval, b.tcp_every, b.observers, b.netns_every
    );
    println!(
        "| nodes | CoreDNS pods | q/s per node | q/s on CoreDNS | q/s per CoreDNS pod | API req/s agents | API TLS handshakes/s (api-dns) | API req/s controller | agent reads/s (controller) | s to 3 observers | s to check every namespace |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for nodes in [10, 100, 1_000, 5_000] {
        for pods in [2, 10, 100] {
            let l = model(&b, nodes, pods, namespaces);
            println!(
                "| {nodes} | {pods} | {:.3} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.0} |",
                l.per_node,
                l.total,
                l.per_pod,
                l.api_agents,
                l.api_dns_handshakes,
                controller_api(),
                sample.min(nodes) as f64 / b.interval.as_secs_f64(),
                l.to_three_observers,
                l.netns_cycle
            );
        }
    }
}
