//! Consumers subscribing with SQL92 selectors receive exactly the messages whose properties match (two
//! groups, two selectors, a push and a pull consumer, on two shards); a message lacking a property is
//! not matched by a comparison with it. A selector that does not parse is refused with the parser's
//! message, at subscription (CHECK_CLIENT_CONFIG) and on a pull; a broker without
//! `enablePropertyFilter` refuses SQL92 as RocketMQ does.

use crate::common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{
    ClientError, ConsumeResult, Message, MessageSelector, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig,
};
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::pull_flag;

const TOPIC: &str = "Orders";
const PUSH_SELECTOR: &str = "a >= 30 AND region IN ('eu','us')";
const PULL_SELECTOR: &str = "region = 'ap' OR a BETWEEN 5 AND 9";

/// Message i: property `a` = i (except 60..63, which lack it), `region` by i % 3.
fn message(i: usize) -> Message {
    let region = ["eu", "us", "ap"][i % 3];
    let m = Message::new(TOPIC, format!("m{i}"))
        .with_tags("t")
        .with_property("region", region);
    if i < 60 {
        m.with_property("a", i.to_string())
    } else {
        m
    }
}

fn expected(matches: impl Fn(Option<usize>, &str) -> bool) -> BTreeSet<String> {
    (0..63)
        .filter(|i| matches((*i < 60).then_some(*i), ["eu", "us", "ap"][i % 3]))
        .map(|i| format!("m{i}"))
        .collect()
}

fn pull_with(selector: &str) -> apogee_net::RemotingCommand {
    let mut req = common::raw_pull("raw", TOPIC, 0, 0);
    let flag = pull_flag::SUBSCRIPTION.to_string();
    req.ext_fields.insert("sysFlag".into(), flag);
    req.ext_fields
        .insert("subscription".into(), selector.into());
    req.ext_fields
        .insert("expressionType".into(), "SQL92".into());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_with_sql_selectors_receive_exactly_their_matches() {
    let apogee = common::Standalone::start(2, &["-o", "enablePropertyFilter=true"]);
    common::create_topic(&apogee.namesrv, TOPIC, 2).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..63 {
        producer.send(message(i)).await.unwrap();
    }
    let push_want = expected(|a, r| a.is_some_and(|a| a >= 30) && (r == "eu" || r == "us"));
    let pull_want = expected(|a, r| r == "ap" || a.is_some_and(|a| (5..=9).contains(&a)));
    assert!(push_want.contains("m30") && !push_want.contains("m32") && !push_want.contains("m60"));
    assert!(pull_want.contains("m62") && pull_want.contains("m5") && !pull_want.contains("m60"));

    let mut config = PushConsumerConfig::new(&apogee.namesrv, "sql-push");
    config.consume_from = apogee_client::consumer::ConsumeFrom::FirstOffset;
    let push = PushConsumer::new(config);
    push.subscribe(TOPIC, MessageSelector::sql(PUSH_SELECTOR));
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    push.start(move |batch| {
        let mut g = sink.lock().unwrap();
        g.extend(
            batch
                .iter()
                .map(|m| String::from_utf8_lossy(&m.body).into_owned()),
        );
        ConsumeResult::Success
    })
    .await
    .unwrap();

    let pull = common::pull_consumer(&apogee.namesrv, "sql-pull");
    pull.subscribe(TOPIC, MessageSelector::sql(PULL_SELECTOR))
        .await
        .unwrap();
    let pulled = common::drain(&pull, pull_want.len(), Duration::from_secs(8)).await;
    assert_eq!(
        pulled.len(),
        pull_want.len(),
        "no duplicates, nothing extra"
    );
    let extra = pull.poll(Duration::from_millis(300)).await;
    assert!(
        extra.is_empty(),
        "unmatched messages delivered: {}",
        extra.len()
    );
    assert_eq!(pulled.into_iter().collect::<BTreeSet<_>>(), pull_want);

    common::eventually(Duration::from_secs(15), || async {
        (got.lock().unwrap().len() >= push_want.len()).then_some(())
    })
    .await;
    // A little longer: anything unmatched that were delivered would show now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pushed = got.lock().unwrap().clone();
    assert_eq!(
        pushed.len(),
        push_want.len(),
        "no duplicates, nothing extra"
    );
    assert_eq!(pushed.into_iter().collect::<BTreeSet<_>>(), push_want);
    // A pull without its subscription (as Java's push consumer pulls) uses the selector the group's
    // heartbeat registered on the broker.
    let (remoting, _) = Remoting::new();
    let mut from_heartbeat = Vec::new();
    for queue_id in 0..2 {
        let r = remoting
            .invoke(
                &apogee.shard_addr(0),
                common::raw_pull("sql-push", TOPIC, queue_id, 0),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        if r.code == ResponseCode::Success as i32 {
            let records = apogee_net::record::decode_all(&r.body).unwrap();
            from_heartbeat.extend(
                records
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned()),
            );
        }
    }
    assert!(
        !from_heartbeat.is_empty(),
        "shard 0 holds matches of the push selector"
    );
    assert!(
        from_heartbeat.iter().all(|b| push_want.contains(b)),
        "{from_heartbeat:?}"
    );
    push.shutdown().await;

    // A bad selector: refused at subscription with the parser's message ...
    let bad = common::pull_consumer(&apogee.namesrv, "sql-bad");
    match bad.subscribe(TOPIC, MessageSelector::sql("a > 'x'")).await {
        Err(ClientError::Broker { code, remark, .. }) => {
            assert_eq!(code, ResponseCode::SubscriptionParseFailed as i32);
            assert!(
                remark.contains("Invalid MessageSelector") && remark.contains("cannot be compared"),
                "{remark}"
            );
        }
        other => panic!("a bad selector was not refused: {other:?}"),
    }
    // ... and on a pull that carries it, which reads nothing.
    let r = remoting
        .invoke(
            &apogee.shard_addr(0),
            pull_with("a BETWEEN 5 AND"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SubscriptionParseFailed as i32);
    assert!(
        r.remark
            .as_deref()
            .unwrap_or_default()
            .contains("Invalid MessageSelector"),
        "{:?}",
        r.remark
    );
    assert!(r.body.is_empty());
    // CHECK_CLIENT_CONFIG with a tag subscription is always fine.
    let check = apogee_net::RemotingCommand::request(RequestCode::CheckClientConfig as i32, 0)
        .with_body(br#"{"clientId":"c","group":"g","subscriptionData":{"topic":"Orders","subString":"*","expressionType":"TAG"}}"#.to_vec());
    let r = remoting
        .invoke(&apogee.shard_addr(1), check, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_property_filtering_refuses_sql92_as_rocketmq_does() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, TOPIC, 1).await;
    let (remoting, _) = Remoting::new();
    let r = remoting
        .invoke(
            &apogee.shard_addr(0),
            pull_with("a > 1"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SystemError as i32);
    let remark = r.remark.unwrap_or_default();
    assert!(
        remark.contains("The broker does not support consumer to filter message by SQL92"),
        "{remark}"
    );
    let pull = common::pull_consumer(&apogee.namesrv, "sql-off");
    let refused = pull.subscribe(TOPIC, MessageSelector::sql("a > 1")).await;
    assert!(
        matches!(refused, Err(ClientError::Broker { code: 1, .. })),
        "subscription not refused: {refused:?}"
    );
}
