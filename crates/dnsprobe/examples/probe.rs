//! Probe one DNS server over UDP and TCP and print what came back.
//!
//! ```text
//! cargo run -p dnsprobe --example probe -- 10.96.0.10 [NAME]
//! ```

use std::time::Duration;

use dnsprobe::{ProbeSpec, TransportMode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target = dnsprobe::parse_target(&args.next().ok_or("usage: probe IP[:PORT] [NAME]")?, 53)?;
    let mut spec = ProbeSpec::new(target);
    if let Some(name) = args.next() {
        spec.name = dnsprobe::parse_name(&name)?;
    }
    spec.transport = TransportMode::Both;
    spec.timeout = Duration::from_secs(1);
    for report in dnsprobe::probe(&spec).await {
        match &report.failure {
            None => println!(
                "{} {}: {:?} in {:?}",
                report.target, report.transport, report.answers, report.rtt
            ),
            Some(failure) => {
                println!(
                    "{} {}: {} ({})",
                    report.target,
                    report.transport,
                    failure,
                    failure.kind()
                )
            }
        }
    }
    Ok(())
}
