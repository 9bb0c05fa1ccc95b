//! A small blocking nfnetlink client: one dump request (the conntrack table, the nftables
//! rules), its replies decoded one message at a time by `netlink-packet-netfilter`.
//!
//! Blocking on purpose: it runs on the thread that entered the namespace (a netlink socket
//! belongs to the namespace it was created in), bounded by a receive timeout and a cap on the
//! messages read, so a huge table or a stuck kernel cannot hold the caller.

use std::io;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

/// How long one dump may take in all.
const DUMP_TIME: Duration = Duration::from_secs(5);

/// Why a dump gave no (complete) answer.
#[derive(Debug)]
pub(crate) enum DumpError {
    /// The socket, the request or the kernel's error reply.
    Io(io::Error),
    /// More than the cap of messages, or longer than [`DUMP_TIME`].
    TooLarge(&'static str),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Io(e) if e.raw_os_error() == Some(1) => write!(
                f,
                "{e} (reading netfilter state over netlink needs CAP_NET_ADMIN)"
            ),
            DumpError::Io(e) => e.fmt(f),
            DumpError::TooLarge(why) => f.write_str(why),
        }
    }
}

/// Sends `request` as a dump (NLM_F_DUMP) in the caller's network namespace and hands each
/// decoded reply to `each`, at most `max_messages` of them. Messages the decoder cannot read
/// are counted and skipped (the return value), never fatal: one odd rule does not hide the
/// others.
pub(crate) fn dump(
    request: NetfilterMessage,
    max_messages: usize,
    mut each: impl FnMut(NetfilterMessageInner, &netlink_packet_netfilter::NetfilterHeader),
) -> Result<usize, DumpError> {
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(DumpError::Io)?;
    socket.bind_auto().map_err(DumpError::Io)?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(DumpError::Io)?;
    socket2::SockRef::from(&socket)
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(DumpError::Io)?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(request));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0).map_err(DumpError::Io)?;

    let started = Instant::now();
    let (mut seen, mut undecodable) = (0usize, 0usize);
    let mut rx = vec![0u8; 1 << 16];
    loop {
        if started.elapsed() > DUMP_TIME {
            return Err(DumpError::TooLarge("the dump took longer than 5 s"));
        }
        let n = socket.recv(&mut &mut rx[..], 0).map_err(DumpError::Io)?;
        let mut at = 0;
        while at < n {
            let bytes = &rx[at..n];
            let len = match NetlinkBuffer::new_checked(bytes) {
                Ok(b) => b.length() as usize,
                Err(_) => break,
            };
            if len == 0 {
                break;
            }
            let msg =
                NetlinkMessage::<NetfilterMessage>::deserialize(&bytes[..len.min(bytes.len())]);
            at += (len + 3) & !3;
            match msg {
                Ok(m) => match m.payload {
                    NetlinkPayload::Done(_) => return Ok(undecodable),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(DumpError::Io(e.to_io()));
                    }
                    NetlinkPayload::InnerMessage(inner) => {
                        seen += 1;
                        if seen > max_messages {
                            return Err(DumpError::TooLarge("more messages than the cap"));
                        }
                        each(inner.inner, &inner.header);
                    }
                    _ => {}
                },
                Err(_) => undecodable += 1,
            }
        }
    }
}

/// Runs `work` (a netfilter dump, or a read of its /proc statistics) with the network namespace at `path` (`None`: the caller's own, on a
/// thread of its own so that no runtime thread blocks on the socket), its error named after
/// `what` and the namespace.
pub(crate) fn dump_in<T: Send>(
    path: Option<&std::path::Path>,
    what: &str,
    work: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, crate::error::NetnsError> {
    use crate::error::NetnsError;
    let label = path.map_or_else(
        || "the current namespace".into(),
        |p| p.display().to_string(),
    );
    let got = match path {
        Some(p) => crate::enter::run_in(p, work)?,
        None => std::thread::scope(|s| s.spawn(work).join()).map_err(|_| NetnsError::Thread {
            path: "/proc/self/ns/net".into(),
        })?,
    };
    got.map_err(|detail| NetnsError::Netlink {
        namespace: label,
        detail: format!("{what}: {detail}"),
    })
}
