//! Serve the demo zone on a loopback port and break its UDP every other 10 seconds: something to
//! point `hc-cli probe --both` or an alerting drill at.
//!
//! ```text
//! cargo run -p hc-demo --example serve
//! ```

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), hc_demo::DemoError> {
    let (udp, tcp) = hc_demo::DemoServer::bind("127.0.0.1".parse().expect("an address"))?;
    let server = hc_demo::DemoServer::start(udp, tcp).await?;
    println!("answering on {} (UDP and TCP); Ctrl-C to stop", server.addr);
    let mut broken = false;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        broken = !broken;
        server.set_drop_udp(broken);
        println!("UDP {}", if broken { "dropped" } else { "answering" });
    }
}
