//! A connection with `connectionBytesInFlightMax` bytes of requests being served gets SYSTEM_BUSY
//! (`[TOO_MANY_REQUESTS]`, RocketMQ's answer) for a new request that would pass it, keeps being read (its
//! parked requests still answer), and is served again once they did; other connections are served all along.

use crate::common;

use crate::common::RawConn;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::pull_flag;
use apogee_net::RemotingCommand;

const BUDGET_BYTES: usize = 1024 * 1024;

/// A long-polling pull of queue 1 carrying `junk` body bytes (ignored by the broker, but counted: the frame
/// is held while the pull is parked).
fn parked_pull(opaque: i32, junk: usize) -> RemotingCommand {
    let mut pull = common::raw_pull("g", "T", 1, 0);
    pull.ext_fields
        .insert("sysFlag".into(), pull_flag::SUSPEND.to_string());
    pull.ext_fields
        .insert("suspendTimeoutMillis".into(), "20000".into());
    pull.opaque = opaque;
    pull.with_body(vec![0u8; junk])
}

fn send_to_queue(conn: &mut RawConn, queue: i32, body: &[u8]) -> RemotingCommand {
    let mut send = common::raw_send_v2("T", body);
    // SEND_MESSAGE_V2's short keys: `e` is the queue id.
    send.ext_fields.insert("e".into(), queue.to_string());
    conn.call(&send).expect("the send is answered")
}

#[test]
fn bytes_in_flight_limit_answers_system_busy() {
    let budget = format!("connectionBytesInFlightMax={BUDGET_BYTES}");
    let apogee = common::Standalone::start(1, &["-o", &budget]);
    let addr = apogee.shard_addr(0);
    let mut other = RawConn::connect(&addr).unwrap();
    // Auto-creates T (4 queues) with a message in queue 0; queue 1 stays empty, so pulls of it park.
    let sent = send_to_queue(&mut other, 0, b"first");
    assert_eq!(sent.code, ResponseCode::Success as i32, "{:?}", sent.remark);

    let mut busy_conn = RawConn::connect(&addr).unwrap();
    let junk = 400 * 1024;
    busy_conn.send(&parked_pull(1, junk)).unwrap();
    busy_conn.send(&parked_pull(2, junk)).unwrap();
    // 800 KiB are parked; another 400 KiB would pass 1 MiB.
    busy_conn.send(&parked_pull(3, junk)).unwrap();
    let busy = busy_conn
        .recv()
        .expect("the third pull is answered at once");
    assert_eq!(busy.opaque, 3);
    assert_eq!(busy.code, ResponseCode::SystemBusy as i32);
    let remark = busy.remark.unwrap_or_default();
    assert!(remark.starts_with("[TOO_MANY_REQUESTS]"), "{remark}");
    assert!(remark.contains(&BUDGET_BYTES.to_string()), "{remark}");
    assert!(remark.contains("connectionBytesInFlightMax"), "{remark}");

    // Other connections are served meanwhile, and so are small requests... that fit on the busy one.
    let info = other
        .call(&RemotingCommand::request(
            RequestCode::GetBrokerRuntimeInfo as i32,
            9,
        ))
        .unwrap();
    assert_eq!(info.code, ResponseCode::Success as i32);
    let mut fresh = RawConn::connect(&addr).unwrap();
    let sent = send_to_queue(&mut fresh, 0, b"second");
    assert_eq!(sent.code, ResponseCode::Success as i32, "{:?}", sent.remark);

    // A message in queue 1 wakes both parked pulls; their bytes are freed and the connection takes a big
    // request again.
    let sent = send_to_queue(&mut other, 1, b"wake");
    assert_eq!(sent.code, ResponseCode::Success as i32, "{:?}", sent.remark);
    let mut found = Vec::new();
    for _ in 0..2 {
        let r = busy_conn.recv().expect("the parked pulls answer");
        assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
        found.push(r.opaque);
    }
    found.sort();
    assert_eq!(found, [1, 2]);
    let mut again = parked_pull(4, junk);
    again.ext_fields.insert("sysFlag".into(), "0".into());
    let r = busy_conn.call(&again).expect("answered");
    assert_eq!(r.opaque, 4);
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
}
