//! A burst of sends to 2,000 new topics auto-creates them all; the topic table is written a few times for
//! the burst (changes made while a write is in flight go into the next write), not once per topic. Every
//! send is answered only once a write holding its topic is on disk: after a SIGKILL the table on disk
//! lists every topic whose send was answered (a first burst of 500 shows it; fewer topics keep the store's
//! thousands of queue files, and the test, small).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use apogee_engine::metadata::{self, Kind};
use apogee_net::body::topic_config::TopicConfigSerializeWrapper;
use apogee_net::codes::ResponseCode;
use apogee_net::{frame, RemotingCommand};
use bytes::BytesMut;

const TOPICS: usize = 2_000;
const TOPICS_BEFORE_SIGKILL: usize = 500;
const CONNECTIONS: usize = 4;

/// Sends one message to each topic, pipelined on a few connections; waits for every answer.
fn send_to_new_topics(broker: &str, topics: &[String]) {
    let threads: Vec<_> = topics
        .chunks(topics.len().div_ceil(CONNECTIONS))
        .map(|chunk| {
            let (broker, chunk) = (broker.to_owned(), chunk.to_vec());
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(&broker).unwrap();
                let mut out = BytesMut::new();
                for (i, t) in chunk.iter().enumerate() {
                    let mut req: RemotingCommand = common::raw_send_v2(t, b"hello");
                    req.opaque = i as i32 + 1;
                    frame::encode(&req, &mut out).unwrap();
                }
                conn.write_all(&out).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(60)))
                    .unwrap();
                let (mut buf, mut bytes, mut answered) = (BytesMut::new(), vec![0u8; 64 * 1024], 0);
                while answered < chunk.len() {
                    while let Some(r) = frame::decode(&mut buf).unwrap() {
                        assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
                        answered += 1;
                    }
                    if answered < chunk.len() {
                        let n = conn.read(&mut bytes).unwrap();
                        assert!(n > 0, "the broker closed the connection");
                        buf.extend_from_slice(&bytes[..n]);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn topics_on_disk(store: &std::path::Path) -> TopicConfigSerializeWrapper {
    metadata::read_json(
        &store.join("shard-0/config/topics"),
        Kind::Topics,
        "topic table",
    )
    .unwrap()
    .expect("the topic table exists")
}

#[test]
fn auto_created_topics_are_written_in_batches_and_survive_sigkill() {
    let mut s = common::Standalone::start(1, &["-o", "flushDiskType=SYNC_FLUSH"]);
    let broker = s.shard_addr(0);

    let first: Vec<String> = (0..TOPICS_BEFORE_SIGKILL)
        .map(|i| format!("Burst1T{i}"))
        .collect();
    let started = Instant::now();
    send_to_new_topics(&broker, &first);
    eprintln!(
        "{TOPICS_BEFORE_SIGKILL} auto-created topics answered in {:?}",
        started.elapsed()
    );
    s.restart(false);
    let table = topics_on_disk(&s.store);
    let missing: Vec<&String> = first
        .iter()
        .filter(|t| !table.topic_config_table.contains_key(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "{} answered topics missing from the table after SIGKILL, e.g. {:?}",
        missing.len(),
        missing.first()
    );

    let second: Vec<String> = (0..TOPICS).map(|i| format!("Burst2T{i}")).collect();
    let started = Instant::now();
    send_to_new_topics(&s.shard_addr(0), &second);
    eprintln!(
        "{TOPICS} auto-created topics answered in {:?}",
        started.elapsed()
    );
    let log = s.process.stop();
    let writes: u64 = log
        .iter()
        .find(|l| l.contains("metadata table writer stopped") && l.contains("topics"))
        .and_then(|l| l.split("writes=").nth(1))
        .and_then(|w| w.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no topic table writer count in the log:\n{}",
                log.join("\n")
            )
        });
    eprintln!("topic table writes for {TOPICS} topics: {writes}");
    assert!(
        writes <= (TOPICS / 10) as u64,
        "{writes} topic table writes for {TOPICS} new topics: changes were not coalesced"
    );
    assert_eq!(
        topics_on_disk(&s.store).topic_config_table.len(),
        table.topic_config_table.len() + TOPICS
    );
}
