use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `dnsmasq` serving fixed records on one loopback address; killed on drop.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    also: Vec<SocketAddr>,
    hosts: PathBuf,
}

/// How to start one: where it listens, what it serves, and whether it caches and forwards.
struct Setup<'a> {
    ips: &'a [IpAddr],
    port: u16,
    records: &'a [(&'a str, IpAddr)],
    /// Names under it not in `records` get NXDOMAIN.
    local_domain: Option<&'a str>,
    /// A cache (of this many entries) instead of none.
    cache_size: Option<u32>,
    extra: &'a [&'a str],
}

impl Dnsmasq {
    /// Starts dnsmasq on `ip` (a free port) answering `records` (name, address; a name may
    /// appear many times). Names under `local_domain` that are not in `records` get NXDOMAIN.
    /// Panics with what to install when dnsmasq is missing.
    pub fn start(ip: IpAddr, records: &[(&str, IpAddr)], local_domain: &str) -> Dnsmasq {
        Self::start_with(ip, records, local_domain, &[])
    }

    /// As [`Dnsmasq::start`], with extra dnsmasq arguments.
    pub fn start_with(
        ip: IpAddr,
        records: &[(&str, IpAddr)],
        local_domain: &str,
        extra: &[&str],
    ) -> Dnsmasq {
        let port = crate::free_port(ip);
        let setup = Setup {
            ips: &[ip],
            port,
            records,
            local_domain: Some(local_domain),
            cache_size: None,
            extra,
        };
        Self::spawn(Command::new("dnsmasq"), &setup, None)
    }

    /// Starts dnsmasq inside `netns` on `ip:port` (an address of that namespace), as
    /// [`Dnsmasq::start_in_addrs`].
    #[cfg(target_os = "linux")]
    pub fn start_in(
        netns: &crate::Netns,
        ip: IpAddr,
        port: u16,
        records: &[(&str, IpAddr)],
        local_domain: &str,
    ) -> Dnsmasq {
        Self::start_in_addrs(netns, &[ip], port, records, local_domain)
    }

    /// Starts dnsmasq inside `netns` on each of `ips` (addresses of that namespace, IPv4 and
    /// IPv6 alike), port `port`, as a lab's CoreDNS: `records`, NXDOMAIN for other names under
    /// `local_domain`, and NXDOMAIN for every name outside it too (as CoreDNS answers what its
    /// upstream does not know). [`Dnsmasq::addr`] is the first.
    #[cfg(target_os = "linux")]
    pub fn start_in_addrs(
        netns: &crate::Netns,
        ips: &[IpAddr],
        port: u16,
        records: &[(&str, IpAddr)],
        local_domain: &str,
    ) -> Dnsmasq {
        let setup = Setup {
            ips,
            port,
            records,
            local_domain: Some(local_domain),
            cache_size: None,
            extra: &["--address=/#/"],
        };
        Self::spawn(netns.command("dnsmasq"), &setup, Some(netns.path()))
    }

    /// Starts a caching forwarder inside `netns` on `ip:port`, as NodeLocal DNSCache is: names
    /// under `domain` are asked of `upstream` and cached (for at least an hour, whatever the
    /// TTL), negative answers are not cached, everything else is refused.
    #[cfg(target_os = "linux")]
    pub fn start_cache_in(
        netns: &crate::Netns,
        ip: IpAddr,
        port: u16,
        upstream: SocketAddr,
        domain: &str,
    ) -> Dnsmasq {
        let server = format!(
            "--server=/{}/{}#{}",
            domain.trim_matches('.'),
            upstream.ip(),
            upstream.port()
        );
        let extra = [server.as_str(), "--min-cache-ttl=3600", "--no-negcache"];
        let setup = Setup {
            ips: &[ip],
            port,
            records: &[],
            local_domain: None,
            cache_size: Some(1000),
            extra: &extra,
        };
        Self::spawn(netns.command("dnsmasq"), &setup, Some(netns.path()))
    }

    fn spawn(mut cmd: Command, setup: &Setup<'_>, netns_path: Option<String>) -> Dnsmasq {
        let hosts =
            std::env::temp_dir().join(format!("{}.hosts", crate::unique_name("hc-dnsmasq-")));
        let mut f = std::fs::File::create(&hosts).unwrap();
        for (name, addr) in setup.records {
            writeln!(f, "{addr} {}", name.trim_end_matches('.')).unwrap();
        }
        drop(f);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
        ])
        .arg(format!("--cache-size={}", setup.cache_size.unwrap_or(0)))
        .args(setup.ips.iter().map(|ip| format!("--listen-address={ip}")))
        .arg(format!("--port={}", setup.port))
        .arg(format!("--addn-hosts={}", hosts.display()))
        .args(
            setup
                .local_domain
                .map(|d| format!("--local=/{}/", d.trim_matches('.'))),
        )
        .args(setup.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if setup.ips.iter().any(|ip| ip.is_loopback() && ip.is_ipv6()) {
            // Loopback ::1 lives on lo; dnsmasq needs the interface to bind an IPv6 address.
            cmd.arg("--interface=lo");
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start dnsmasq ({e}): install it with `apt-get install dnsmasq-base` (.ci/run does)"
            ),
        };
        let mut all = setup.ips.iter().map(|ip| SocketAddr::new(*ip, setup.port));
        let addr = all.next().expect("dnsmasq needs an address to listen on");
        let mut server = Dnsmasq {
            child,
            addr,
            also: all.collect(),
            hosts,
        };
        server.wait_ready(netns_path);
        server
    }

    fn wait_ready(&mut self, netns_path: Option<String>) {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("dnsmasq exited at start ({status}): {err}");
            }
            // Ready = answers a real query over UDP and accepts TCP (it binds them one by one),
            // on every address.
            let addrs: Vec<SocketAddr> = std::iter::once(self.addr)
                .chain(self.also.iter().copied())
                .collect();
            let check = move || {
                addrs.iter().all(|addr| {
                    answers_udp(*addr)
                        && TcpStream::connect_timeout(addr, Duration::from_millis(100)).is_ok()
                })
            };
            let ready = match &netns_path {
                None => check(),
                #[cfg(target_os = "linux")]
                Some(path) => crate::netns::run_in(path, check),
                #[cfg(not(target_os = "linux"))]
                Some(_) => unreachable!("network namespaces are Linux-only"),
            };
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("dnsmasq did not listen on {} within 10s", self.addr);
    }

    /// Where it listens (UDP and TCP); the first address when it listens on several.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that replaces the records it serves (from another thread too).
    #[cfg(target_os = "linux")]
    pub fn records(&self) -> Records {
        Records {
            hosts: self.hosts.clone(),
            pid: self.child.id(),
        }
    }

    /// Its process ID (to stop it from a script).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every address it listens on.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr)
            .chain(self.also.iter().copied())
            .collect()
    }

    /// Kills the server now (the port then refuses).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.hosts);
    }
}

fn answers_udp(addr: SocketAddr) -> bool {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii("ready.invalid.").unwrap(),
        RecordType::A,
    ));
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .unwrap();
    let Ok(sock) = std::net::UdpSocket::bind(bind) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    if sock.connect(addr).is_err() || sock.send(&q.to_vec().unwrap()).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    sock.recv(&mut buf).is_ok()
}

/// Replaces what a running [`Dnsmasq`] serves: its hosts file rewritten, then SIGHUP (dnsmasq
/// clears its cache and reads the file again).
#[cfg(target_os = "linux")]
#[derive(Debug, Clone)]
pub struct Records {
    hosts: PathBuf,
    pid: u32,
}

#[cfg(target_os = "linux")]
impl Records {
    /// Serves exactly `records` (name, address) from now on.
    pub fn set(&self, records: &[(String, IpAddr)]) {
        let tmp = self.hosts.with_extension("new");
        let mut text = String::new();
        for (name, addr) in records {
            text.push_str(&format!("{addr} {}\n", name.trim_end_matches('.')));
        }
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.hosts).unwrap();
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
    }
}
