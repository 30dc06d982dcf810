//! The listening TCP sockets, straight from the kernel's socket diagnostics
//! (netlink `NETLINK_SOCK_DIAG`, what `ss -lt` asks). The request asks for
//! LISTEN sockets only, so one look costs the same with 10 or 10 000
//! connections in the namespace; `/proc/net/tcp` writes out every one of
//! them on each read. Any error here sends `portwatch` back to `/proc`.

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const HEADER: usize = 16;
/// `inet_diag_msg` up to the end of the addresses it carries.
const MESSAGE_MIN: usize = 40;

/// A netlink socket asking for listeners.
pub(crate) struct SockDiag {
    fd: OwnedFd,
    buffer: Vec<u8>,
    sequence: u32,
}

impl SockDiag {
    pub(crate) fn open() -> io::Result<Self> {
        // Non-blocking: the kernel answers a dump while it is asked (and
        // while it is read), so "nothing to read" means no answer is coming.
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkSockDiag,
        )?;
        Ok(Self {
            fd,
            buffer: vec![0; 32 * 1024],
            sequence: 0,
        })
    }

    /// The local addresses of the LISTEN sockets on `port`, IPv4 then IPv6.
    pub(crate) fn listeners(&mut self, port: u16) -> io::Result<Vec<IpAddr>> {
        let mut found = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            self.sequence = self.sequence.wrapping_add(1);
            let request = request(family, self.sequence);
            sendto(
                self.fd.as_raw_fd(),
                &request,
                &NetlinkAddr::new(0, 0),
                MsgFlags::empty(),
            )?;
            loop {
                let read = recv(self.fd.as_raw_fd(), &mut self.buffer, MsgFlags::empty())?;
                let bytes = self.buffer.get(..read).unwrap_or_default();
                if parse(bytes, port, &mut found)? {
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// `nlmsghdr` + `inet_diag_req_v2`: dump this family's TCP sockets in LISTEN.
fn request(family: AddressFamily, sequence: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + 56);
    bytes.extend_from_slice(&72u32.to_ne_bytes());
    bytes.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    bytes.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    bytes.extend_from_slice(&sequence.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    let family = u8::try_from(family as i32).unwrap_or(0);
    bytes.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
    bytes.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    bytes.resize(HEADER + 56, 0); // inet_diag_sockid: all zero for a dump
    bytes
}

/// Reads one datagram of answers into `found`; `Ok(true)` at the end of the dump.
fn parse(mut bytes: &[u8], port: u16, found: &mut Vec<IpAddr>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag answer");
    while bytes.len() >= HEADER {
        let length = u32::from_ne_bytes(word(bytes, 0).ok_or_else(bad)?) as usize;
        let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
        let payload = bytes.get(HEADER..length).ok_or_else(bad)?;
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = i32::from_ne_bytes(word(payload, 0).ok_or_else(bad)?);
                return Err(io::Error::from_raw_os_error(-code));
            }
            SOCK_DIAG_BY_FAMILY if payload.len() >= MESSAGE_MIN => {
                let (family, state) = (payload[0], payload[1]);
                let local_port = u16::from_be_bytes([payload[4], payload[5]]);
                if state == TCP_LISTEN && local_port == port {
                    let address = &payload[8..24];
                    if i32::from(family) == AddressFamily::Inet as i32 {
                        found.push(IpAddr::V4(Ipv4Addr::new(
                            address[0], address[1], address[2], address[3],
                        )));
                    } else if let Ok(octets) = <[u8; 16]>::try_from(address) {
                        found.push(IpAddr::V6(Ipv6Addr::from(octets)));
                    }
                }
            }
            _ => {}
        }
        // Messages are 4-byte aligned.
        let next = length.div_ceil(4) * 4;
        if length < HEADER || next > bytes.len() {
            break;
        }
        bytes = &bytes[next..];
    }
    Ok(false)
}

fn word(bytes: &[u8], at: usize) -> Option<[u8; 4]> {
    bytes.get(at..at + 4)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_request_is_a_listen_dump_of_one_family() {
        let bytes = request(AddressFamily::Inet6, 7);
        assert_eq!(bytes.len(), 72);
        assert_eq!(
            u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            72
        );
        assert_eq!(&bytes[16..20], &[10, IPPROTO_TCP, 0, 0]);
        assert_eq!(
            u32::from_ne_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
            1 << 10
        );
    }

    #[test]
    fn a_short_or_cut_answer_is_an_error_not_a_panic() {
        let mut found = Vec::new();
        let mut cut = 100u32.to_ne_bytes().to_vec();
        cut.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(parse(&cut, 80, &mut found).is_err());
        assert_eq!(parse(&[1, 2, 3], 80, &mut found).ok(), Some(false));
    }

    #[test]
    fn sees_real_listeners_of_both_families() {
        let mut diag = SockDiag::open().expect("NETLINK_SOCK_DIAG on Linux");
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = v4.local_addr().expect("addr").port();
        assert_eq!(
            diag.listeners(port).expect("dump"),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        let v6 = TcpListener::bind("[::1]:0").expect("bind v6");
        let port = v6.local_addr().expect("addr").port();
        assert_eq!(
            diag.listeners(port).expect("dump"),
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        drop(v6);
        assert_eq!(diag.listeners(port).expect("dump"), Vec::<IpAddr>::new());
    }
}
