//! QUERY_MESSAGE finds messages by key and by client-made id on every shard of a topic, and
//! VIEW_MESSAGE_BY_ID returns a message by its offset id; a key nobody sent answers "not found".

use crate::common;

use apogee_client::{Admin, Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_by_key_and_view_by_id() {
    let apogee = common::Standalone::start(2, &["-o", "flushDiskType=SYNC_FLUSH"]);
    common::create_topic(&apogee.namesrv, "Lookup", 2).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..40 {
        let m = Message::new("Lookup", format!("body-{i}"))
            .with_keys([format!("order-{}", i % 3), "all".into()]);
        sent.push(producer.send(m).await.unwrap());
    }
    let admin = Admin::new(&apogee.namesrv);
    let found = admin
        .query_by_key("Lookup", "order-1", 64, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(found.len(), 13, "i % 3 == 1 for 13 of 0..40");
    let shards: std::collections::BTreeSet<_> =
        found.iter().map(|m| m.queue.broker_name.clone()).collect();
    assert_eq!(shards.len(), 2, "answers come from both shards");
    assert!(found.iter().all(|m| m.keys().contains(&"order-1")));

    let by_uniq = admin
        .query_by_key("Lookup", &sent[7].msg_id, 4, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(by_uniq.len(), 1);
    assert_eq!(&by_uniq[0].body[..], b"body-7");

    assert!(admin
        .query_by_key("Lookup", "never-sent", 4, 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());

    let viewed = admin.view_message(&sent[3].offset_msg_id).await.unwrap();
    assert_eq!(&viewed.body[..], b"body-3");
    assert_eq!(viewed.msg_id, sent[3].msg_id);
}
