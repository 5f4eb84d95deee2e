//! An existing RocketMQ client, installed from a package registry, produces to and consumes from Apogee
//! unchanged: the Apache RocketMQ C++ client (`librocketmq`), as the PyPI package `rocketmq` 0.4.4 ships it
//! in its manylinux wheel, driven by `tests/suite/third_party/rocketmq_cpp_client.py`.
//!
//! The package is installed into `target/third-party-venv` on first use (needs `python3` with `venv`, and
//! PyPI). Its messages are then read back with Apogee's own client to check tags and keys crossed over.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_client_produces_and_consumes() {
    let python = common::third_party_python();
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "CppTopic", 2).await;
    let home = tempfile::tempdir().unwrap(); // the C++ client logs under $HOME/logs
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/suite/third_party/rocketmq_cpp_client.py");
    let namesrv = apogee.namesrv.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(&namesrv)
            .arg("CppTopic")
            .env("HOME", home.path())
            .output()
            .expect("run the C++ client")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("SENT status=0"))
        .collect();
    assert_eq!(sent.len(), 5, "every send is SEND_OK:\n{stdout}");
    let consumed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CONSUMED "))
        .unwrap_or_default();
    assert_eq!(
        consumed, "from-cpp-0,from-cpp-1,from-cpp-2,from-cpp-3,from-cpp-4",
        "{stdout}"
    );

    // What the C++ client stored reads back with Apogee's client, tags and keys included.
    let reader = common::pull_consumer(&apogee.namesrv, "rust-reader");
    reader.subscribe("CppTopic", "CppTag").await.unwrap();
    let seen = common::drain_messages(&reader, 5, Duration::from_secs(20)).await;
    assert_eq!(seen.len(), 5);
    for m in &seen {
        assert_eq!(m.tags(), Some("CppTag"));
        let body = String::from_utf8(m.body.to_vec()).unwrap();
        let n = body.trim_start_matches("from-cpp-");
        assert_eq!(m.keys(), vec![format!("cpp-key-{n}").as_str()]);
    }
}
