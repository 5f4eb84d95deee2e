//! A shard serving `connectionsPerShardMax` connections closes a new one at once (the reason logged), while
//! the connections it already serves keep being answered; once one of them closes, a new one is served.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::RawConn;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;

fn runtime_info() -> RemotingCommand {
    RemotingCommand::request(RequestCode::GetBrokerRuntimeInfo as i32, 0)
}

fn served(conn: &mut RawConn) -> bool {
    conn.call(&runtime_info())
        .is_some_and(|r| r.code == ResponseCode::Success as i32)
}

#[test]
fn connection_limit_refuses_new_connections_and_serves_old_ones() {
    let mut apogee = common::Standalone::start(1, &["-o", "connectionsPerShardMax=3"]);
    let addr = apogee.shard_addr(0);
    let mut old: Vec<RawConn> = (0..3).map(|_| RawConn::connect(&addr).unwrap()).collect();
    for (i, c) in old.iter_mut().enumerate() {
        assert!(served(c), "connection {i} within the limit is served");
    }

    // The fourth is accepted by the kernel, then closed by the broker without an answer.
    for _ in 0..3 {
        let mut extra = RawConn::connect(&addr).unwrap();
        let started = Instant::now();
        assert!(
            extra.call(&runtime_info()).is_none(),
            "a connection past the limit is closed, not served"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "closed at once");
    }

    // The old ones are still served, also after the refusals.
    for (i, c) in old.iter_mut().enumerate() {
        assert!(served(c), "connection {i} is still served");
    }

    // One closes; its place is free again (the count follows closes, not just accepts).
    drop(old.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut again = false;
    while Instant::now() < deadline && !again {
        again = RawConn::connect(&addr).is_ok_and(|mut c| served(&mut c));
        if !again {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(
        again,
        "a connection is served once one of the old ones closed"
    );
    for c in old.iter_mut() {
        assert!(served(c));
    }

    let log = apogee.process.stop().join("\n");
    let refusals = log
        .lines()
        .filter(|l| l.contains("connection refused: this shard already serves its limit"))
        .count();
    // Three refusals within a second make one line (rate-limited), and the line names the limit.
    assert!(refusals >= 1, "the refusal is logged:\n{log}");
    assert!(refusals < 3, "the refusal log is rate-limited:\n{log}");
    assert!(log.contains("limit=3"), "{log}");
}
