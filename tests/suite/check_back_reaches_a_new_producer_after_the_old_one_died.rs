//! A producer process SIGKILLed between its half message and END leaves the message undecided; a new
//! producer process of the same group answers the broker's check-back, and the message is delivered once.
//!
//! The dying producer is this test binary itself, started again to run the ignored helper below.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use apogee_client::{
    LocalTransactionState, Message, MessageExt, ProducerConfig, TransactionProducer,
};

const GROUP: &str = "tx-survivors";
const NAMESRV_ENV: &str = "TX_TEST_NAMESRV";

/// The producer that dies: sends a half message, says so, and hangs inside its local transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of producer_killed_before_end_is_answered_by_a_new_producer"]
async fn helper_producer_that_hangs_before_end() {
    let namesrv = std::env::var(NAMESRV_ENV).expect("started by the test below");
    let producer =
        TransactionProducer::start(ProducerConfig::new(&namesrv, GROUP), |_: &MessageExt| {
            LocalTransactionState::Unknown
        })
        .await
        .unwrap();
    producer
        .send_in_transaction(Message::new("Survive", "orphan"), |_| {
            println!("HALF_SENT");
            std::thread::sleep(Duration::from_secs(120));
            LocalTransactionState::Commit
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_killed_before_end_is_answered_by_a_new_producer() {
    let apogee = common::Standalone::start(
        1,
        &[
            "-o",
            "transactionTimeOut=500",
            "-o",
            "transactionCheckInterval=300",
        ],
    );
    let mq = common::create_topic(&apogee.namesrv, "Survive", 1).await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            common::exact_test_name(module_path!(), "helper_producer_that_hangs_before_end")
                .as_str(),
            "--nocapture",
        ])
        .env(NAMESRV_ENV, &apogee.namesrv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let sent = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(50)
            .any(|l| l.is_ok_and(|l| l.contains("HALF_SENT")))
    });
    let sent = tokio::time::timeout(Duration::from_secs(30), sent).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        matches!(sent, Ok(Ok(true))),
        "the helper sent its half message"
    );

    let consumer = common::pull_consumer(&apogee.namesrv, "survive-reader");
    consumer.assign(mq).await.unwrap();
    let heir = TransactionProducer::start(
        ProducerConfig::new(&apogee.namesrv, GROUP),
        |m: &MessageExt| {
            assert_eq!(m.body.as_ref(), b"orphan");
            LocalTransactionState::Commit
        },
    )
    .await
    .unwrap();
    let got = common::drain(&consumer, 2, Duration::from_secs(6)).await;
    assert_eq!(
        got,
        vec!["orphan".to_owned()],
        "committed by the new producer, once"
    );
    drop(heir);
}
