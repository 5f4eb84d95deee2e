//! A broker registers with every name server; a client keeps working when the first one dies.

use crate::common;

use apogee_client::{Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nameservers_serve_routes() {
    let (mut ns1, a1) = common::nameserver(120_000);
    let (_ns2, a2) = common::nameserver(120_000);
    let both = format!("{a1};{a2}");
    let dir = tempfile::tempdir().unwrap();
    let (_broker, _) = common::broker(&both, 1, dir.path(), &[]);
    common::create_topic(&a1, "Twice", 2).await;
    common::create_topic(&a2, "Twice", 2).await;
    for ns in [&a1, &a2] {
        let q = apogee_client::Admin::new(ns).queues("Twice").await.unwrap();
        assert_eq!(q.len(), 2, "name server {ns} routes the topic");
    }
    ns1.kill();
    let producer = Producer::start(ProducerConfig::new(&both, "pg"))
        .await
        .unwrap();
    for i in 0..5 {
        producer
            .send(Message::new("Twice", format!("m{i}")))
            .await
            .expect("sends go on with the second name server");
    }
}
