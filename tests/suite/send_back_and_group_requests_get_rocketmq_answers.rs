//! Bad send-backs and subscription group requests get RocketMQ's codes and remarks, and touch nothing
//! stored: an unknown group (with autoCreateSubscriptionGroup=false) is SUBSCRIPTION_GROUP_NOT_EXIST, an
//! offset where no message starts is SYSTEM_ERROR "look message by offset failed", a bad group name is
//! INVALID_PARAMETER, a DELAY that is not a number is MESSAGE_ILLEGAL, a send to the schedule topic is
//! refused. Groups are created (with their retry topic), listed and deleted; delay level -1 sends a message
//! straight to the dead-letter queue, and so does a plain send to a retry topic past maxReconsumeTimes.

use crate::common;

use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{Admin, Message, Producer, ProducerConfig};
use apogee_net::body::subscription_group::SubscriptionGroupConfig;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{ConsumerSendMsgBackRequest, OffsetResponse, QueueRequest};
use apogee_net::RemotingCommand;

const TIMEOUT: Duration = Duration::from_secs(5);

fn send_back(group: &str, offset: i64, delay_level: i32) -> RemotingCommand {
    let h = ConsumerSendMsgBackRequest {
        offset,
        group: group.into(),
        delay_level,
        origin_msg_id: None,
        origin_topic: Some("Pay".into()),
        unit_mode: false,
        max_reconsume_times: None,
    };
    RemotingCommand::request(RequestCode::ConsumerSendMsgBack as i32, 0).with_ext_fields(h.to_ext())
}

/// GET_MAX_OFFSET straight to the broker (works for topics without a readable route).
async fn max_offset(remoting: &Remoting, addr: &str, topic: &str, queue_id: i32) -> i64 {
    let req = RemotingCommand::request(RequestCode::GetMaxOffset as i32, 0).with_ext_fields(
        QueueRequest {
            topic: topic.into(),
            queue_id,
        }
        .to_ext(),
    );
    let r = remoting.invoke_ok(addr, req, TIMEOUT).await.unwrap();
    OffsetResponse::from_ext(&r.ext_fields).unwrap().offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_back_and_group_requests_get_rocketmq_answers() {
    let apogee = common::Standalone::start(1, &["-o", "autoCreateSubscriptionGroup=false"]);
    let addr = apogee.shard_addr(0);
    let mq = common::create_topic(&apogee.namesrv, "Pay", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    producer
        .send_to_queue(Message::new("Pay", "m"), &mq)
        .await
        .unwrap();
    let reader = common::pull_consumer(&apogee.namesrv, "reader");
    reader.assign(vec![mq.clone()]).await.unwrap();
    let stored = common::drain_messages(&reader, 1, TIMEOUT).await.remove(0);
    let (remoting, _) = Remoting::new();
    let admin = Admin::new(&apogee.namesrv);

    // Unknown group, auto-creation off.
    let r = remoting
        .invoke(
            &addr,
            send_back("ghost", stored.commit_log_offset, 0),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SubscriptionGroupNotExist as i32);
    assert!(r
        .remark
        .unwrap()
        .starts_with("subscription group not exist, ghost"));

    // A group created by the admin gets its retry topic, routed.
    let mut config = SubscriptionGroupConfig::new("known");
    config.retry_max_times = 5;
    assert_eq!(
        admin
            .create_subscription_group("DefaultCluster", &config)
            .await
            .unwrap(),
        1
    );
    let listed = admin.subscription_groups_on(&addr).await.unwrap();
    assert_eq!(
        listed
            .subscription_group_table
            .get("known")
            .map(|g| g.retry_max_times),
        Some(5)
    );
    let retry = common::eventually(Duration::from_secs(10), || async {
        admin
            .queues("%RETRY%known")
            .await
            .ok()
            .filter(|q| q.len() == 1)
    })
    .await;
    assert!(retry.is_some(), "the retry topic is routed with one queue");
    let bad_name = admin
        .create_subscription_group_on(&addr, &SubscriptionGroupConfig::new("no spaces"))
        .await
        .unwrap_err();
    assert_eq!(
        bad_name.code(),
        Some(ResponseCode::InvalidParameter as i32),
        "{bad_name}"
    );
    assert!(
        bad_name.to_string().contains("illegal characters"),
        "{bad_name}"
    );

    // Offsets where no message starts: past the end, inside a record, negative.
    for offset in [1 << 40, stored.commit_log_offset + 1, -5] {
        let r = remoting
            .invoke(&addr, send_back("known", offset, 0), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(r.code, ResponseCode::SystemError as i32, "offset {offset}");
        assert_eq!(
            r.remark.as_deref(),
            Some(format!("look message by offset failed, {offset}").as_str())
        );
    }
    // A DELAY that is not a level, and a send to the schedule topic.
    let bad_delay = producer
        .send_to_queue(Message::new("Pay", "x").with_property("DELAY", "soon"), &mq)
        .await
        .unwrap_err();
    assert_eq!(
        bad_delay.code(),
        Some(ResponseCode::MessageIllegal as i32),
        "{bad_delay}"
    );
    let r = remoting
        .invoke(
            &addr,
            common::raw_send_v2("SCHEDULE_TOPIC_XXXX", b"x"),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SystemError as i32);
    assert!(r
        .remark
        .unwrap()
        .contains("conflict with system reserved words"));

    // Nothing of that was stored anywhere.
    assert_eq!(max_offset(&remoting, &addr, "Pay", 0).await, 1);
    assert_eq!(max_offset(&remoting, &addr, "%RETRY%known", 0).await, 0);
    for level_queue in 0..18 {
        assert_eq!(
            max_offset(&remoting, &addr, "SCHEDULE_TOPIC_XXXX", level_queue).await,
            0
        );
    }

    // Delay level -1: straight to the dead-letter queue, which is created write-only.
    let r = remoting
        .invoke(
            &addr,
            send_back("known", stored.commit_log_offset, -1),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    assert_eq!(max_offset(&remoting, &addr, "%DLQ%known", 0).await, 1);
    let dlq = common::eventually(Duration::from_secs(10), || async {
        admin.queues("%DLQ%known").await.ok()
    })
    .await
    .unwrap();
    assert!(
        dlq.is_empty(),
        "the DLQ is not readable until an operator says so"
    );

    // A plain send to a retry topic (the Java client's fallback): the group must exist, and past its
    // maxReconsumeTimes (5 for this group) the message is dead-lettered.
    let retry_send = |topic: &str, reconsume_times: i32| {
        let header = apogee_net::headers::SendMessageRequest {
            producer_group: "pg".into(),
            topic: topic.into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            reconsume_times,
            properties: "DELAY\u{1}9\u{2}".into(),
            ..Default::default()
        };
        RemotingCommand::request(RequestCode::SendMessageV2 as i32, 0)
            .with_body(b"again".to_vec())
            .with_ext_fields(header.to_ext_v2())
    };
    let r = remoting
        .invoke(&addr, retry_send("%RETRY%ghost", 1), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SubscriptionGroupNotExist as i32);
    let r = remoting
        .invoke(&addr, retry_send("%RETRY%known", 6), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    assert_eq!(max_offset(&remoting, &addr, "%DLQ%known", 0).await, 2);
    assert_eq!(max_offset(&remoting, &addr, "%RETRY%known", 0).await, 0);

    // Deleted: gone from the list, and send-backs for it are refused again.
    admin
        .delete_subscription_group("DefaultCluster", "known", true)
        .await
        .unwrap();
    let listed = admin.subscription_groups_on(&addr).await.unwrap();
    assert!(!listed.subscription_group_table.contains_key("known"));
    let r = remoting
        .invoke(
            &addr,
            send_back("known", stored.commit_log_offset, 0),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SubscriptionGroupNotExist as i32);
}
