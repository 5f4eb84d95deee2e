//! Half messages sent by an existing RocketMQ client (the Apache RocketMQ C++ client, PyPI `rocketmq`
//! 0.4.4, driven by `tests/suite/third_party/rocketmq_cpp_half_messages.py`) are invisible until ended; END
//! commit delivers one to the same client's push consumer, END rollback never delivers the other.
//!
//! That package's binding exposes no transactional producer (its C API has none), so the half messages
//! are marked TRAN_MSG=true as RocketMQ's transactional producers mark them, and END_TRANSACTION is sent as
//! RocketMQ's producer sends it, from the offsets the broker answered.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::EndTransactionRequest;
use apogee_net::properties;
use apogee_net::record;
use apogee_net::RemotingCommand;

async fn python(args: Vec<String>) -> String {
    let python = common::third_party_python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/suite/third_party/rocketmq_cpp_half_messages.py");
    let home = tempfile::tempdir().unwrap(); // the C++ client logs under $HOME/logs
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(args)
            .env("HOME", home.path())
            .output()
            .expect("run the C++ client")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_half_messages_are_committed_and_rolled_back() {
    let apogee = common::Standalone::start(1, &[]);
    let mq = common::create_topic(&apogee.namesrv, "CppTx", 1)
        .await
        .remove(0);
    let sent = python(vec![apogee.namesrv.clone(), "CppTx".into(), "send".into()]).await;
    let halves: Vec<(&str, &str)> = sent
        .lines()
        .filter_map(|l| l.strip_prefix("HALF "))
        .filter(|l| l.ends_with("status=0"))
        .filter_map(|l| {
            let mut w = l.split(' ');
            Some((w.next()?, w.next()?))
        })
        .collect();
    assert_eq!(halves.len(), 2, "both half messages SEND_OK:\n{sent}");
    let admin = apogee_client::Admin::new(&apogee.namesrv);
    assert_eq!(
        admin.max_offset(&mq).await.unwrap(),
        0,
        "invisible in their topic"
    );

    // Where the broker stored them: the half queue, found by their UNIQ_KEY (the client's message id).
    let (remoting, _) = Remoting::new();
    let addr = apogee.shard_addr(0);
    let pull = common::raw_pull("finder", "RMQ_SYS_TRANS_HALF_TOPIC", 0, 0);
    let r = remoting
        .invoke(&addr, pull, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    let stored = record::decode_all(&r.body).unwrap();
    for (body, msg_id) in &halves {
        let rec = stored
            .iter()
            .find(|r| properties::get(&r.properties, "UNIQ_KEY") == Some(*msg_id))
            .unwrap_or_else(|| panic!("half message {msg_id} stored"));
        assert_eq!(
            properties::get(&rec.properties, "REAL_TOPIC"),
            Some("CppTx")
        );
        let end = EndTransactionRequest {
            producer_group: "CPP_TX_PRODUCER".into(),
            tran_state_table_offset: rec.queue_offset,
            commit_log_offset: rec.physical_offset,
            commit_or_rollback: if *body == "cpp-commit" { 8 } else { 12 },
            msg_id: msg_id.to_string(),
            transaction_id: Some(msg_id.to_string()),
            ..Default::default()
        };
        let req = RemotingCommand::request(RequestCode::EndTransaction as i32, 0)
            .with_ext_fields(end.to_ext());
        let r = remoting
            .invoke(&addr, req, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            r.code,
            ResponseCode::Success as i32,
            "{body}: {:?}",
            r.remark
        );
    }

    let consumed = python(vec![
        apogee.namesrv.clone(),
        "CppTx".into(),
        "consume".into(),
        "CPP_TX_CONSUMER".into(),
        "5".into(),
    ])
    .await;
    let got = consumed
        .lines()
        .find_map(|l| l.strip_prefix("CONSUMED "))
        .unwrap_or_default();
    assert_eq!(
        got, "cpp-commit",
        "the commit once, never the rollback:\n{consumed}"
    );
}
