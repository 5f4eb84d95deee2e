//! Garbage, truncated frames, huge length fields, unknown codes, oversized messages, bad topic names and
//! timer messages whose time is not a number each
//! get their documented answer (an error response, or the connection closed), and the broker keeps
//! serving other connections.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{Message, Producer, ProducerConfig};
use apogee_net::codes::ResponseCode;
use apogee_net::RemotingCommand;

/// Sends raw bytes and reports whether the broker closed the connection (read returns 0 or an error).
fn closes_after(addr: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_isolated() {
    let apogee = common::Standalone::start(1, &["-o", "maxMessageSize=1024"]);
    let addr = apogee.shard_addr(0);
    common::create_topic(&apogee.namesrv, "Good", 1).await;

    // Malformed frames close only their own connection.
    assert!(
        closes_after(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "garbage"
    );
    assert!(
        closes_after(&addr, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
        "huge length"
    );
    assert!(
        closes_after(&addr, &[0, 0, 0, 12, 9, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8]),
        "unknown serialize type"
    );
    assert!(
        closes_after(
            &addr,
            &[0, 0, 0, 12, 0, 0, 0, 8, b'{', b'x', 0, 0, 0, 0, 0, 0]
        ),
        "bad JSON header"
    );
    // A truncated frame followed by the peer closing: nothing to answer, nothing stored.
    {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(&[0, 0, 1, 0, 1, 0, 0, 10, 1]).unwrap();
    }

    let (remoting, _) = Remoting::new();
    let unknown = remoting
        .invoke(
            &addr,
            RemotingCommand::request(9999, 0),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(unknown.code, ResponseCode::RequestCodeNotSupported as i32);
    assert!(unknown.remark.unwrap().contains("9999"));

    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let big = producer
        .send(Message::new("Good", vec![7u8; 2048]))
        .await
        .unwrap_err();
    assert_eq!(
        big.code(),
        Some(ResponseCode::MessageIllegal as i32),
        "{big}"
    );
    let queue = apogee_client::MessageQueue {
        topic: "bad topic!".into(),
        broker_name: "broker-a-0".into(),
        queue_id: 0,
    };
    let req = common::raw_send_v2(&queue.topic, b"x");
    let bad_topic = remoting
        .invoke(&addr, req, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(bad_topic.code, ResponseCode::SystemError as i32);
    assert!(bad_topic.remark.unwrap().contains("bad topic!"));

    // A timer message (RocketMQ 5) whose time is not a number gets RocketMQ's MESSAGE_ILLEGAL.
    let timed = producer
        .send(Message::new("Good", "at a time").with_property("TIMER_DELAY_SEC", "five"))
        .await
        .unwrap_err();
    assert_eq!(
        timed.code(),
        Some(ResponseCode::MessageIllegal as i32),
        "{timed}"
    );
    assert!(
        timed.to_string().contains("timer message illegal") && timed.to_string().contains("five"),
        "{timed}"
    );

    // After all that, the broker still serves.
    let ok = producer
        .send(Message::new("Good", "still here"))
        .await
        .unwrap();
    assert_eq!(
        ok.queue_offset, 0,
        "nothing from the bad requests was stored"
    );
}
