//! The operations requests mqadmin relies on answer as RocketMQ's do: connection lists name the connected
//! clients with their language, QUERY_TOPIC_CONSUME_BY_WHO names consuming groups, broker config reads and
//! changes (run-time keys only, all or nothing), topics by cluster, and the name server's KV config.

use crate::common;

use std::time::Duration;

use apogee_client::{Admin, Message, Producer, ProducerConfig, PushConsumer, PushConsumerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_requests_get_rocketmq_answers() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "Ops", 2).await;
    let admin = Admin::new(&apogee.namesrv);
    let addr = apogee.shard_addr(0);
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "ops-pg"))
        .await
        .unwrap();
    producer.send(Message::new("Ops", "x")).await.unwrap();
    // A push consumer heartbeats (a pull consumer does not), so the broker knows it as connected.
    let consumer = PushConsumer::new(PushConsumerConfig::new(&apogee.namesrv, "ops-g"));
    consumer.subscribe("Ops", "*");
    consumer
        .start(|_| apogee_client::ConsumeResult::Success)
        .await
        .unwrap();

    let cc = common::eventually(Duration::from_secs(10), || async {
        admin.consumer_connection("ops-g").await.ok()
    })
    .await
    .expect("the consumer shows in GET_CONSUMER_CONNECTION_LIST");
    assert_eq!(cc.connection_set.len(), 1);
    assert_eq!(cc.connection_set[0].language, "RUST");
    assert!(cc.subscription_table.contains_key("Ops"));
    producer.heartbeat().await;
    let pc = admin.producer_connection("ops-pg", "Ops").await.unwrap();
    assert_eq!(pc.connection_set.len(), 1);
    let offline = admin.consumer_connection("nobody").await.unwrap_err();
    assert_eq!(offline.code(), Some(206), "CONSUMER_NOT_ONLINE: {offline}");
    assert!(admin
        .consumed_by("Ops")
        .await
        .unwrap()
        .contains(&"ops-g".to_string()));
    consumer.shutdown().await;

    let config = admin.broker_config(&addr).await.unwrap();
    let get = |k: &str| {
        config
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("autoCreateTopicEnable").as_deref(), Some("true"));
    assert_eq!(get("brokerClusterName").as_deref(), Some("DefaultCluster"));
    admin
        .update_broker_config(&addr, &[("autoCreateTopicEnable".into(), "false".into())])
        .await
        .unwrap();
    let refused = producer.send(Message::new("NeverCreated", "x")).await;
    assert!(refused.is_err(), "auto-creation is off at once");
    let restart_only = admin
        .update_broker_config(
            &addr,
            &[
                ("autoCreateTopicEnable".into(), "true".into()),
                ("listenPort".into(), "1".into()),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        restart_only.to_string().contains("restart"),
        "{restart_only}"
    );
    let config = admin.broker_config(&addr).await.unwrap();
    assert!(
        config.contains(&("autoCreateTopicEnable".into(), "false".into())),
        "a refused update applies nothing"
    );

    assert!(admin
        .topics_of_cluster("DefaultCluster")
        .await
        .unwrap()
        .contains(&"Ops".to_string()));
    assert!(admin.topics_of_cluster("NoCluster").await.is_err());

    assert_eq!(
        admin.get_kv("ORDER_TOPIC_CONFIG", "Ops").await.unwrap(),
        None
    );
    admin
        .put_kv("ORDER_TOPIC_CONFIG", "Ops", "broker-a-0:2")
        .await
        .unwrap();
    assert_eq!(
        admin
            .get_kv("ORDER_TOPIC_CONFIG", "Ops")
            .await
            .unwrap()
            .as_deref(),
        Some("broker-a-0:2")
    );
    admin.delete_kv("ORDER_TOPIC_CONFIG", "Ops").await.unwrap();
    assert_eq!(
        admin.get_kv("ORDER_TOPIC_CONFIG", "Ops").await.unwrap(),
        None
    );
}
