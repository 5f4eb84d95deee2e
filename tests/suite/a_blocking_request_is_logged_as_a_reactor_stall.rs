//! A request that blocks its shard's thread (the test hook `APOGEE_TEST_BLOCK_SHARD_MS`, honoured only when
//! set) is logged as a reactor stall naming the request code that ran, is counted in the shard's stall
//! maximum, and the shard serves on afterwards.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::RawConn;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;

const BLOCK_MS: u64 = 60;

#[test]
fn a_blocking_request_is_logged_as_a_reactor_stall() {
    let metrics_port = common::free_ports(3);
    let mut apogee = common::Standalone::start_with_env(
        1,
        &["-o", &format!("metricsPort={metrics_port}")],
        &[("APOGEE_TEST_BLOCK_SHARD_MS", &BLOCK_MS.to_string())],
    );
    let addr = apogee.shard_addr(0);
    let info = RemotingCommand::request(RequestCode::GetBrokerRuntimeInfo as i32, 0);
    let mut conn = RawConn::connect(&addr).unwrap();
    let started = Instant::now();
    let r = conn.call(&info).expect("answered");
    assert_eq!(r.code, ResponseCode::Success as i32);
    assert!(started.elapsed() >= Duration::from_millis(BLOCK_MS));

    apogee
        .process
        .wait_for("reactor stall", Duration::from_secs(10));
    let line = apogee
        .process
        .lines
        .iter()
        .find(|l| l.contains("reactor stall"))
        .cloned()
        .unwrap_or_default();
    let code = RequestCode::GetBrokerRuntimeInfo as i32;
    assert!(
        line.contains(&format!("request code {code} ran")),
        "the stall names what ran: {line}"
    );
    // Whether it also says the thread was off its CPU depends on the machine's load, not on the broker.

    // The shard serves on, and its stall maximum holds the block.
    let mut other = RawConn::connect(&addr).unwrap();
    let topics = RemotingCommand::request(RequestCode::GetAllTopicConfig as i32, 0);
    let r = other.call(&topics).expect("served after the stall");
    assert_eq!(r.code, ResponseCode::Success as i32);
    let metrics = format!("127.0.0.1:{metrics_port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let value = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0.0)
    };
    let floor = (BLOCK_MS as f64 - 10.0) / 1000.0;
    let (mut max, mut on_cpu_max) = (0.0, 0.0);
    while Instant::now() < deadline && (max < floor || on_cpu_max <= 0.0) {
        std::thread::sleep(Duration::from_millis(200));
        let text = common::http_get(&metrics, "/metrics").unwrap_or_default();
        max = value(&text, "apogee_reactor_stall_max_seconds{");
        on_cpu_max = value(&text, "apogee_reactor_stall_on_cpu_max_seconds{");
    }
    assert!(
        max >= floor,
        "the stall maximum holds the {BLOCK_MS} ms block: {max}"
    );
    // The block spins, so part of it is on-CPU time; how much depends on what else the machine runs.
    assert!(
        on_cpu_max > 0.0 && on_cpu_max <= max,
        "on-CPU stall maximum {on_cpu_max}, stall maximum {max}"
    );
}
