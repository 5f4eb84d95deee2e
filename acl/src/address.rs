//! Remote address patterns of `globalWhiteRemoteAddresses` and `whiteRemoteAddress` (RocketMQ's
//! `RemoteAddressStrategyFactory`):
//!
//! | pattern | matches |
//! |---|---|
//! | empty | nothing |
//! | `*`, `*.*.*.*`, `*:*:*:*:*:*:*:*` | every address |
//! | `192.168.0.1` (or an IPv6 address) | that address |
//! | `192.168.0.1,192.168.0.2` | any of them |
//! | `192.168.1.{1,2,3}` (or `fe80::{1,2}`) | the prefix with any of the endings |
//! | `192.168.*.*`, `192.168.1.1-200`, `10.*.1-9.*` | IPv4, each octet a number, `*` or a range `a-b` |
//!
//! IPv6 ranges (`fe80::1-ff`) are refused when the file is read: Apogee does not serve them yet.
//! An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`) is matched as its IPv4 address.

use std::net::IpAddr;

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressPattern {
    Nothing,
    Everything,
    AnyOf(Vec<IpAddr>),
    /// Inclusive ranges of each IPv4 octet.
    Octets([(u8, u8); 4]),
}

fn ip(text: &str, pattern: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{}` in `{pattern}` is not an IP address", text.trim()))
}

fn octet(text: &str, pattern: &str) -> Result<(u8, u8), String> {
    let bad =
        || format!("`{text}` in `{pattern}` is not an octet, `*` or a range `a-b` within 0-255");
    let t = text.trim();
    if t == "*" {
        return Ok((0, 255));
    }
    let (lo, hi) = match t.split_once('-') {
        Some((lo, hi)) => (
            lo.parse().map_err(|_| bad())?,
            hi.parse().map_err(|_| bad())?,
        ),
        None => {
            let n = t.parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl AddressPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let p = text.trim();
        if p.is_empty() {
            return Ok(Self::Nothing);
        }
        if matches!(p, "*" | "*.*.*.*" | "*:*:*:*:*:*:*:*") {
            return Ok(Self::Everything);
        }
        if let Some(inner) = p.strip_suffix('}') {
            let (head, list) = inner
                .split_once('{')
                .ok_or_else(|| format!("`{p}` ends in `}}` without a `{{`"))?;
            return list
                .split(',')
                .map(|end| ip(&format!("{head}{}", end.trim()), p))
                .collect::<Result<_, _>>()
                .map(Self::AnyOf);
        }
        if p.contains(',') {
            return p
                .split(',')
                .map(|a| ip(a, p))
                .collect::<Result<_, _>>()
                .map(Self::AnyOf);
        }
        if p.contains('*') || p.contains('-') {
            if p.contains(':') {
                return Err(format!(
                    "`{p}`: IPv6 ranges are not supported by Apogee; list the addresses instead"
                ));
            }
            let parts: Vec<&str> = p.split('.').collect();
            if parts.len() != 4 {
                return Err(format!(
                    "`{p}` does not have the 4 parts of an IPv4 pattern"
                ));
            }
            let mut octets = [(0, 0); 4];
            for (o, part) in octets.iter_mut().zip(parts) {
                *o = octet(part, p)?;
            }
            return Ok(Self::Octets(octets));
        }
        ip(p, p).map(|a| Self::AnyOf(vec![a]))
    }

    pub fn matches(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        match self {
            Self::Nothing => false,
            Self::Everything => true,
            Self::AnyOf(list) => list.iter().any(|a| a.to_canonical() == peer),
            Self::Octets(ranges) => match peer {
                IpAddr::V4(v4) => v4
                    .octets()
                    .iter()
                    .zip(ranges)
                    .all(|(o, (lo, hi))| (lo..=hi).contains(&o)),
                IpAddr::V6(_) => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, addr: &str) -> bool {
        AddressPattern::parse(pattern)
            .unwrap()
            .matches(addr.parse().unwrap())
    }

    #[test]
    fn rocketmq_patterns_match_as_documented() {
        assert!(!m("", "127.0.0.1"));
        assert!(m("*", "10.1.2.3") && m("*.*.*.*", "::1"));
        assert!(m("127.0.0.1", "127.0.0.1") && !m("127.0.0.1", "127.0.0.2"));
        assert!(m("10.0.0.1,10.0.0.2", "10.0.0.2") && !m("10.0.0.1,10.0.0.2", "10.0.0.3"));
        assert!(m("192.168.1.{1,2,3}", "192.168.1.3") && !m("192.168.1.{1,2,3}", "192.168.1.4"));
        assert!(m("192.168.*.*", "192.168.200.7") && !m("192.168.*.*", "192.169.0.1"));
        assert!(m("192.168.1.1-200", "192.168.1.200") && !m("192.168.1.1-200", "192.168.1.201"));
        assert!(m("::1", "::1") && m("fe80::{1,2}", "fe80::2"));
        assert!(
            m("127.0.0.1", "::ffff:127.0.0.1"),
            "IPv4-mapped peers match as IPv4"
        );
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for (p, says) in [
            ("192.168.1.300", "not an IP"),
            ("192.168.1.9-2", "range"),
            ("192.168.*", "4 parts"),
            ("fe80::1-ff", "IPv6 ranges"),
            ("10.0.0.{1,x}", "not an IP"),
        ] {
            let e = AddressPattern::parse(p).unwrap_err();
            assert!(e.contains(says), "{p}: {e}");
        }
    }
}
