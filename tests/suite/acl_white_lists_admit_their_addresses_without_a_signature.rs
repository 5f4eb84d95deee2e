//! plain_acl.yml's white lists, from real sockets on two loopback addresses: a peer in
//! `globalWhiteRemoteAddresses` (127.0.0.1) is served unsigned, while the same unsigned request from an
//! address outside it (127.0.0.2) is refused with NO_PERMISSION; an account's `whiteRemoteAddress`
//! (127.0.0.3) admits its key without a signature, and nowhere else (RocketMQ's rule: white lists admit,
//! they never restrict a key to them).

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig};
use apogee_net::{frame, RemotingCommand};
use bytes::BytesMut;

const TOPIC: &str = "acl_white";

const PLAIN_ACL: &str = "\
globalWhiteRemoteAddresses:
  - 127.0.0.1
accounts:
  - accessKey: white-account
    secretKey: white-secret
    whiteRemoteAddress: 127.0.0.3
    defaultTopicPerm: DENY
";

/// Sends `request` from a socket bound to `from` and returns the broker's answer.
fn call_from(from: &str, broker: &str, mut request: RemotingCommand) -> RemotingCommand {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket
        .bind(&local.into())
        .expect("bind a second loopback address");
    let remote: SocketAddr = broker.parse().unwrap();
    socket
        .connect_timeout(&remote.into(), Duration::from_secs(5))
        .expect("connect to the broker");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    request.opaque = 77;
    let mut out = BytesMut::new();
    frame::encode(&request, &mut out).unwrap();
    stream.write_all(&out).unwrap();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(answer) = frame::decode(&mut buf).expect("a well-formed answer") {
            assert_eq!(answer.opaque, 77);
            return answer;
        }
        let n = stream.read(&mut chunk).expect("an answer within 10 s");
        assert!(n > 0, "the broker closed the connection without answering");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn assert_refused(answer: &RemotingCommand, remark: &str) {
    assert_eq!(
        answer.code, 16,
        "NO_PERMISSION expected: {:?}",
        answer.remark
    );
    assert_eq!(answer.remark.as_deref(), Some(remark));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_white_lists_admit_their_addresses_without_a_signature() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, PLAIN_ACL).unwrap();
    let acl_opt = format!("aclFile={}", acl_file.display());
    let apogee = common::Standalone::start(1, &["-o", "aclEnable=true", "-o", &acl_opt]);
    // From 127.0.0.1 (globally white-listed) the native client needs no credentials at all.
    common::create_topic(&apogee.namesrv, TOPIC, 1).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "white_pg"))
        .await
        .unwrap();
    producer
        .send(Message::new(TOPIC, b"from 127.0.0.1".to_vec()))
        .await
        .expect("an unsigned send from a white-listed address is served");

    let broker = apogee.shard_addr(0);
    let send = || common::raw_send_v2(TOPIC, b"raw");
    assert_eq!(call_from("127.0.0.1", &broker, send()).code, 0);
    assert_refused(
        &call_from("127.0.0.2", &broker, send()),
        "No accessKey is configured",
    );

    // The account's own white list admits its key unsigned from 127.0.0.3 only.
    let key_only = || send().with_ext("AccessKey", "white-account");
    assert_eq!(call_from("127.0.0.3", &broker, key_only()).code, 0);
    assert_refused(
        &call_from("127.0.0.2", &broker, key_only()),
        "Check signature failed for accessKey=white-account",
    );
    // Signed from 127.0.0.2, the key is authenticated and its permissions apply (topics: DENY).
    let mut signed = send();
    apogee_net::signature::sign(&mut signed, "white-account", "white-secret", None).unwrap();
    assert_refused(
        &call_from("127.0.0.2", &broker, signed),
        "No default permission for topic:acl_white",
    );
}
