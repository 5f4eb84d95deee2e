use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::{payloads, Group};

/// Writes `bytes` to the peer port and reports whether the node closed the connection within 3 s.
fn closed_after(addr: std::net::SocketAddr, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

fn frame(body: &[u8], crc: u32) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&crc.to_be_bytes());
    f.extend_from_slice(body);
    f
}

#[test]
fn malformed_peer_frames_close_the_link_while_the_group_keeps_working() {
    let g = Group::start(3, |_| {});
    let leader = g.wait_leader();
    let target = g.peers[(leader + 1) % 3].addr;
    let oversized = [0xffu8, 0xff, 0xff, 0xf0, 0, 0, 0, 0];
    assert!(
        closed_after(target, &oversized),
        "an oversized length closes the link"
    );
    let body = b"\x08\x03\x10\x01";
    assert!(
        closed_after(target, &frame(body, crc32fast::hash(body) ^ 1)),
        "a bad crc closes the link"
    );
    let junk = [0xffu8; 12];
    assert!(
        closed_after(target, &frame(&junk, crc32fast::hash(&junk))),
        "an undecodable body closes the link"
    );
    // A well-formed message that names a node outside the group.
    let to = ((leader + 1) % 3) as u8 + 1;
    let stranger = [0x10, to, 0x18, 99]; // eraftpb.Message { to, from: 99 }
    assert!(
        closed_after(target, &frame(&stranger, crc32fast::hash(&stranger))),
        "a stranger's message closes the link"
    );
    let results = g.node(leader).propose(payloads("ok", 50, 8), 8);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    g.wait_applied(50);
}
