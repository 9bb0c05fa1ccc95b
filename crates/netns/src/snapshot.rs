//! Reading a namespace's links, addresses and routes over rtnetlink, and asking the kernel for
//! the route to each DNS target (`ip route get`).

use std::net::IpAddr;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};

use crate::diagnose::{Address, Link, Lookup, NetSnapshot, Route};
use crate::error::NetnsError;

/// Takes a snapshot of the namespace at `path` (`None`: the caller's own), with a route lookup
/// for each of `targets`. Runs on a dedicated thread with its own small runtime: the netlink
/// socket is created inside the namespace.
pub fn snapshot(path: Option<&Path>, targets: &[IpAddr]) -> Result<NetSnapshot, NetnsError> {
    let label = path.map_or_else(
        || "the current namespace".to_owned(),
        |p| p.display().to_string(),
    );
    let work = || take(&label, targets);
    match path {
        Some(p) => crate::enter::run_in(p, work)?,
        None => std::thread::scope(|s| s.spawn(work).join()).map_err(|_| NetnsError::Thread {
            path: "/proc/self/ns/net".into(),
        })?,
    }
}

fn take(label: &str, targets: &[IpAddr]) -> Result<NetSnapshot, NetnsError> {
    let err = |detail: String| NetnsError::Netlink {
        namespace: label.to_owned(),
        detail,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| err(format!("runtime: {e}")))?;
    rt.block_on(async {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| err(format!("socket: {e}")))?;
        let conn = tokio::spawn(conn);
        let mut snap = NetSnapshot::default();

        let mut links = handle.link().get().execute();
        while let Some(m) = links
            .try_next()
            .await
            .map_err(|e| err(format!("link dump: {e}")))?
        {
            let mut l = Link {
                index: m.header.index,
                up: m.header.flags.contains(LinkFlags::Up),
                lower_up: m.header.flags.contains(LinkFlags::LowerUp),
                loopback: m.header.flags.contains(LinkFlags::Loopback),
                ..Link::default()
            };
            for a in m.attributes {
                match a {
                    LinkAttribute::IfName(n) => l.name = n,
                    LinkAttribute::Link(i) => l.peer_index = Some(i),
                    LinkAttribute::LinkNetNsId(i) => l.peer_netnsid = Some(i),
                    LinkAttribute::Controller(i) => l.master = Some(i),
                    LinkAttribute::LinkInfo(infos) => {
                        for i in infos {
                            if let LinkInfo::Kind(k) = i {
                                l.kind = Some(kind_name(&k));
                            }
                        }
                    }
                    _ => {}
                }
            }
            snap.links.push(l);
        }

        let mut addrs = handle.address().get().execute();
        while let Some(m) = addrs
            .try_next()
            .await
            .map_err(|e| err(format!("address dump: {e}")))?
        {
            let ip = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let ip = ip.or_else(|| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = ip {
                snap.addresses.push(Address {
                    index: m.header.index,
                    ip,
                    prefix_len: m.header.prefix_len,
                });
            }
        }

        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = family;
            let mut routes = handle.route().get(msg).execute();
            while let Some(m) = routes
                .try_next()
                .await
                .map_err(|e| err(format!("route dump: {e}")))?
            {
                if let Some(r) = route(&m) {
                    snap.routes.push(r);
                }
            }
        }

        for ip in targets {
            let mut msg = RouteMessage::default();
            msg.header.address_family = if ip.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            msg.header.destination_prefix_length = if ip.is_ipv4() { 32 } else { 128 };
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(*ip)));
            let lookup = match handle.route().get(msg).execute().try_next().await {
                Ok(Some(m)) => Lookup::Route {
                    oif: m.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Oif(i) => Some(*i),
                        _ => None,
                    }),
                    gateway: m.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => addr(g),
                        _ => None,
                    }),
                },
                Ok(None) => Lookup::Unreachable("no answer".into()),
                Err(rtnetlink::Error::NetlinkError(e)) => Lookup::Unreachable(
                    e.code
                        .map(|c| std::io::Error::from_raw_os_error(-c.get()).to_string())
                        .unwrap_or_else(|| e.to_string()),
                ),
                Err(e) => return Err(err(format!("route lookup of {ip}: {e}"))),
            };
            snap.lookups.push((*ip, lookup));
        }
        drop(handle);
        conn.abort();
        Ok(snap)
    })
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Veth => "veth".into(),
        InfoKind::Bridge => "bridge".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A main-table route, or `None` for other tables.
fn route(m: &RouteMessage) -> Option<Route> {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    let mut r = Route {
        dst: None,
        prefix_len: m.header.destination_prefix_length,
        oif: None,
        gateway: None,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => r.dst = addr(d),
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::Gateway(g) => r.gateway = addr(g),
            _ => {}
        }
    }
    // A default route carries no destination: say its family, so that an IPv6 default route
    // is not taken for an IPv4 one.
    if r.dst.is_none() {
        r.dst = match m.header.address_family {
            AddressFamily::Inet => Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            AddressFamily::Inet6 => Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
            _ => None,
        };
    }
    Some(r)
}
