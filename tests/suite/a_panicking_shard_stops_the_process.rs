//! A shard thread that panics stops the whole process, with the panic logged and a non-zero exit code,
//! rather than leaving a process whose shard is gone but still in the name servers' routes. The panic is
//! injected with the test-only `APOGEE_TEST_PANIC_SHARD` environment variable (`src/shard.rs`).

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_panicking_shard_stops_the_process() {
    let store = tempfile::tempdir().unwrap();
    let ns_port = common::free_ports(3) - 1;
    let listen_port = common::free_ports(8);
    let mut child = Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args([
            "standalone",
            "--store",
            &store.path().display().to_string(),
            "--namesrv-addr",
            &format!("127.0.0.1:{ns_port}"),
            "--listen-port",
            &listen_port.to_string(),
            "--shards",
            "2",
        ])
        .env("APOGEE_TEST_PANIC_SHARD", "1")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apogee");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process outlived its panicking shard");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(70), "exit code; log:\n{log}");
    assert!(
        log.lines().any(|l| l.contains("panicked")
            && l.contains("shard-1")
            && l.contains("stopping the process")),
        "the panic is logged with its thread:\n{log}"
    );
}
