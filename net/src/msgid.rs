//! The offset message id: store host address + port + commit log offset, as upper-case hex.
//!
//! IPv4: `ip (4) | port (4) | offset (8)` = 16 bytes = 32 hex characters; IPv6: `ip (16) | port (4) | offset (8)`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{ProtocolError, Result};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The offset message id of a record stored at `offset` by `store_host`. One allocation (the id itself):
/// it is made for every stored message.
pub fn encode(store_host: SocketAddr, offset: u64) -> String {
    let mut raw = [0u8; 28];
    let ip_len = match store_host.ip() {
        IpAddr::V4(ip) => {
            raw[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            raw[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    raw[ip_len..ip_len + 4].copy_from_slice(&(store_host.port() as i32).to_be_bytes());
    raw[ip_len + 4..ip_len + 12].copy_from_slice(&offset.to_be_bytes());
    let raw = &raw[..ip_len + 12];
    let mut out = String::with_capacity(raw.len() * 2);
    for b in raw {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xF) as usize] as char);
    }
    out
}

/// The store host and commit log offset named by an offset message id.
pub fn decode(id: &str) -> Result<(SocketAddr, u64)> {
    let bad = || ProtocolError::MessageId(id.to_owned());
    if id.len() != 32 && id.len() != 56 {
        return Err(bad());
    }
    let mut raw = Vec::with_capacity(id.len() / 2);
    for pair in id.as_bytes().chunks(2) {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        raw.push(u8::from_str_radix(s, 16).map_err(|_| bad())?);
    }
    let (ip, rest): (IpAddr, &[u8]) = if raw.len() == 16 {
        (
            IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            &raw[4..],
        )
    } else {
        let mut o = [0u8; 16];
        o.copy_from_slice(&raw[..16]);
        (IpAddr::V6(Ipv6Addr::from(o)), &raw[16..])
    };
    let port = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let port = u16::try_from(port).map_err(|_| bad())?;
    let mut off = [0u8; 8];
    off.copy_from_slice(&rest[4..12]);
    Ok((SocketAddr::new(ip, port), u64::from_be_bytes(off)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn offset_message_id_matches_rocketmq_layout() {
        let addr = "127.0.0.1:10911".parse().unwrap();
        let id = super::encode(addr, 0x1234);
        assert_eq!(id, "7F00000100002A9F0000000000001234");
        assert_eq!(super::decode(&id).unwrap(), (addr, 0x1234));
        assert!(super::decode("zz").is_err());
    }

    #[test]
    fn an_ipv6_store_host_makes_a_56_digit_id_that_decodes_back() {
        let addr: std::net::SocketAddr = "[2001:db8::7]:10911".parse().unwrap();
        let id = super::encode(addr, u64::MAX - 1);
        assert_eq!(id.len(), 56);
        assert!(id.starts_with("20010DB8000000000000000000000007"));
        assert!(id.ends_with("00002A9FFFFFFFFFFFFFFFFE"));
        assert_eq!(super::decode(&id).unwrap(), (addr, u64::MAX - 1));
    }
}
