//! A client that sends pulls and never reads the answers cannot make the broker hold more than twice its
//! `connectionBytesInFlightMax` in queued responses: the connection is closed, the reason logged, and
//! other connections are served all along.

use crate::common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::common::RawConn;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;

const BUDGET_BYTES: usize = 1024 * 1024;

#[test]
fn a_peer_that_never_reads_its_responses_is_disconnected() {
    let budget = format!("connectionBytesInFlightMax={BUDGET_BYTES}");
    let mut apogee = common::Standalone::start(1, &["-o", &budget]);
    let addr = apogee.shard_addr(0);
    let mut other = RawConn::connect(&addr).unwrap();
    // 16 MiB in queue 0 of T: each pull answers up to 4 MiB of it.
    let body = vec![7u8; 256 * 1024];
    for _ in 0..64 {
        let r = other.call(&common::raw_send_v2("T", &body)).unwrap();
        assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    }

    let mut silent = RawConn::connect(&addr).unwrap();
    // A small receive window, so the kernel holds little on our side.
    let small: libc::c_int = 4096;
    // SAFETY: setsockopt on an open socket with a pointer to a c_int and its size.
    unsafe {
        libc::setsockopt(
            silent.stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &small as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    for i in 0..16 {
        let mut pull = common::raw_pull("g", "T", 0, (i % 4) * 16);
        pull.opaque = i as i32 + 1;
        if silent.send(&pull).is_err() {
            break; // already closed
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    apogee.process.wait_for(
        "the peer does not read its responses",
        Duration::from_secs(20),
    );

    // Others are served meanwhile.
    let r = other
        .call(&RemotingCommand::request(
            RequestCode::GetBrokerRuntimeInfo as i32,
            0,
        ))
        .unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32);

    // Reading now drains what the kernels held, then ends: the broker closed the connection rather than
    // keeping 16 pulls' worth (64 MiB) of answers for it.
    silent
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut total, mut chunk) = (0usize, vec![0u8; 256 * 1024]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        match silent.stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(
        closed,
        "the silent connection is closed (read {total} bytes)"
    );
    assert!(
        total < 16 * 4 * 1024 * 1024,
        "far less than every answer was kept for it: {total} bytes"
    );
    let r = other.call(&common::raw_send_v2("T", b"after")).unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32);
}
