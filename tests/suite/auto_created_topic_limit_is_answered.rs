//! A send to an unknown topic auto-creates it only while the shard holds fewer than `topicsAutoCreateMax`
//! topics; past that it gets TOPIC_NOT_EXIST with a remark naming the limit and how to raise it, while
//! topics that exist keep taking sends, other connections are served, and updateTopic still creates topics.

use crate::common;

use crate::common::RawConn;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;

const AUTO_CREATE_MAX: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_created_topic_limit_is_answered() {
    let limit = format!("topicsAutoCreateMax={AUTO_CREATE_MAX}");
    let apogee = common::Standalone::start(1, &["-o", &limit]);
    let addr = apogee.shard_addr(0);
    let mut conn = RawConn::connect(&addr).unwrap();

    // The table starts with the broker's own topics (TBW102, the reply topic, ...); new topics are created
    // until it holds the limit, then refused.
    let mut created = Vec::new();
    let mut refusal = None;
    for i in 0..AUTO_CREATE_MAX + 4 {
        let topic = format!("Auto{i}");
        let r = conn.call(&common::raw_send_v2(&topic, b"x")).unwrap();
        if r.code == ResponseCode::Success as i32 {
            assert!(refusal.is_none(), "{topic} created after a refusal");
            created.push(topic);
        } else {
            refusal = Some(r);
        }
    }
    assert!(
        !created.is_empty(),
        "topics are auto-created below the limit"
    );
    let refusal = refusal.expect("sends past the limit are refused");
    assert_eq!(refusal.code, ResponseCode::TopicNotExist as i32);
    let remark = refusal.remark.unwrap_or_default();
    assert!(
        remark.contains(&format!("topicsAutoCreateMax={AUTO_CREATE_MAX}")),
        "{remark}"
    );
    assert!(remark.contains("updateTopic"), "{remark}");

    // Existing topics keep taking sends, on this connection and another.
    let r = conn.call(&common::raw_send_v2(&created[0], b"y")).unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    let mut other = RawConn::connect(&addr).unwrap();
    let r = other
        .call(&RemotingCommand::request(
            RequestCode::GetBrokerRuntimeInfo as i32,
            0,
        ))
        .unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32);

    // An explicit updateTopic is not an auto-creation: it still creates, and the topic takes sends.
    common::create_topic(&apogee.namesrv, "Explicit", 2).await;
    let r = other.call(&common::raw_send_v2("Explicit", b"z")).unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
}
