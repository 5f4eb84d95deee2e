//! A topic that a send auto-creates reaches the name servers at once, as an increment (that topic only, not
//! the whole table), and topics created together go out together: the send path only wakes the
//! registration task. A second "name server" that only records what it is told shows it.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use apogee_net::body::from_json;
use apogee_net::body::topic_config::RegisterBrokerBody;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::{frame, RemotingCommand};
use bytes::BytesMut;

/// Topic names of every REGISTER_BROKER it receives, answered SUCCESS.
fn recording_nameserver() -> (String, mpsc::Receiver<BTreeSet<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = BytesMut::new();
                let mut chunk = [0u8; 64 * 1024];
                loop {
                    while let Ok(Some(req)) = frame::decode(&mut buf) {
                        if req.code == RequestCode::RegisterBroker as i32 {
                            let body: RegisterBrokerBody = from_json(&req.body).unwrap();
                            let topics = body.topic_config_serialize_wrapper.topic_config_table;
                            if tx.send(topics.into_keys().collect()).is_err() {
                                return;
                            }
                        }
                        let mut out = BytesMut::new();
                        frame::encode(&req.response_to(ResponseCode::Success, None), &mut out)
                            .unwrap();
                        if conn.write_all(&out).is_err() {
                            return;
                        }
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Sends one message to each topic, all written at once on one connection; waits for every answer.
fn send_to_new_topics(broker: &str, topics: &[String]) {
    let mut conn = TcpStream::connect(broker).unwrap();
    let mut out = BytesMut::new();
    for (i, t) in topics.iter().enumerate() {
        let mut req: RemotingCommand = common::raw_send_v2(t, b"hello");
        req.opaque = i as i32 + 1;
        frame::encode(&req, &mut out).unwrap();
    }
    conn.write_all(&out).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut buf, mut chunk, mut answered) = (BytesMut::new(), [0u8; 64 * 1024], 0);
    while answered < topics.len() {
        while let Some(r) = frame::decode(&mut buf).unwrap() {
            assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
            answered += 1;
        }
        if answered < topics.len() {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "the broker closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[test]
fn auto_created_topics_are_registered_at_once_as_one_coalesced_increment() {
    let (recorder, registrations) = recording_nameserver();
    let (ns_port, listen_port) = (common::free_ports(3) - 1, common::free_ports(4));
    let store = tempfile::tempdir().unwrap();
    // Standalone: the embedded name server listens on the first address; the broker registers with both.
    let args = [
        "standalone",
        "--store",
        &store.path().display().to_string(),
        "--namesrv-addr",
        &format!("127.0.0.1:{ns_port};{recorder}"),
        "--listen-port",
        &listen_port.to_string(),
        "--shards",
        "1",
    ]
    .map(String::from);
    let _apogee = common::Process::spawn(&args, "apogee started");
    let broker = format!("127.0.0.1:{listen_port}");
    // The start-up registration: the whole table (the default topic at least).
    let full = registrations
        .recv_timeout(Duration::from_secs(10))
        .expect("the start-up registration");
    assert!(full.contains("TBW102"), "{full:?}");

    let one = vec!["NewTopicAlone".to_string()];
    let sent = Instant::now();
    send_to_new_topics(&broker, &one);
    let increment = registrations
        .recv_timeout(Duration::from_secs(5))
        .expect("an increment registration after the auto-creation");
    assert_eq!(
        increment,
        one.iter().cloned().collect(),
        "only the new topic"
    );
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "registered {:?} after the send (the periodic registration is 30 s)",
        sent.elapsed()
    );

    // Twenty topics created together: a few increments between them, never the whole table, and all
    // twenty reach the name server.
    let burst: Vec<String> = (0..20).map(|i| format!("Burst{i}")).collect();
    send_to_new_topics(&broker, &burst);
    let (mut seen, mut increments) = (BTreeSet::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < burst.len() && Instant::now() < deadline {
        if let Ok(topics) = registrations.recv_timeout(Duration::from_millis(100)) {
            assert!(
                !topics.contains("TBW102"),
                "an increment, not the whole table: {topics:?}"
            );
            increments += 1;
            seen.extend(topics);
        }
    }
    assert_eq!(seen, burst.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        increments <= 3,
        "twenty topics created together took {increments} registrations"
    );
}
