//! Clustering: two push consumers of a group split the queues; when one leaves, the other takes every
//! queue and no message is lost. Broadcasting: every consumer gets every message.

use crate::common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_client::{
    ConsumeResult, Message, MessageModel, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig,
};

/// What a collecting handler has seen.
type Seen = Arc<Mutex<Vec<String>>>;

fn collector() -> (
    Seen,
    impl Fn(&[apogee_client::MessageExt]) -> ConsumeResult + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |batch: &[apogee_client::MessageExt]| {
        let mut s = s.lock().unwrap();
        s.extend(
            batch
                .iter()
                .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
        );
        ConsumeResult::Success
    })
}

/// Queues of the test topic a consumer holds (clustering consumers also hold their group's retry queue).
fn shared(c: &PushConsumer) -> usize {
    c.assigned().iter().filter(|q| q.topic == "Shared").count()
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clustering_splits_queues_and_a_survivor_takes_all() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "Shared", 4).await;
    let (seen_a, handler_a) = collector();
    let (seen_b, handler_b) = collector();
    let a = PushConsumer::new(PushConsumerConfig::new(&apogee.namesrv, "split"));
    a.subscribe("Shared", "*");
    a.start(handler_a).await.unwrap();
    let b = PushConsumer::new(PushConsumerConfig::new(&apogee.namesrv, "split"));
    b.subscribe("Shared", "*");
    b.start(handler_b).await.unwrap();
    // The broker notifies `a` that `b` joined; both settle on two queues each.
    assert!(
        wait_until(Duration::from_secs(15), || shared(&a) == 2
            && shared(&b) == 2)
        .await,
        "queues not split: a={:?} b={:?}",
        a.assigned(),
        b.assigned()
    );

    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..40 {
        producer
            .send(Message::new("Shared", format!("first-{i}")))
            .await
            .unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(15), || seen_a.lock().unwrap().len()
            + seen_b.lock().unwrap().len()
            >= 40)
        .await
    );
    assert!(
        !seen_a.lock().unwrap().is_empty() && !seen_b.lock().unwrap().is_empty(),
        "both members consumed"
    );

    b.shutdown().await;
    assert!(
        wait_until(Duration::from_secs(15), || shared(&a) == 4).await,
        "the survivor takes all queues: {:?}",
        a.assigned()
    );
    for i in 0..40 {
        producer
            .send(Message::new("Shared", format!("second-{i}")))
            .await
            .unwrap();
    }
    let all = |s: &Arc<Mutex<Vec<String>>>| {
        s.lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<BTreeSet<String>>()
    };
    assert!(
        wait_until(Duration::from_secs(15), || all(&seen_a)
            .union(&all(&seen_b))
            .count()
            == 80)
        .await,
        "messages lost: {} of 80",
        all(&seen_a).union(&all(&seen_b)).count()
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasting_delivers_every_message_to_every_consumer() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "Fanout", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut consumers = Vec::new();
    let mut seen = Vec::new();
    for i in 0..2 {
        let (s, h) = collector();
        let mut config = PushConsumerConfig::new(&apogee.namesrv, "fan");
        config.model = MessageModel::Broadcasting;
        config.offset_dir = Some(dir.path().join(format!("c{i}")));
        let c = PushConsumer::new(config);
        c.subscribe("Fanout", "*");
        c.start(h).await.unwrap();
        consumers.push(c);
        seen.push(s);
    }
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..20 {
        producer
            .send(Message::new("Fanout", format!("b{i}")))
            .await
            .unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(15), || seen.iter().all(|s| s
            .lock()
            .unwrap()
            .len()
            >= 20))
        .await
    );
    for s in &seen {
        assert_eq!(
            s.lock()
                .unwrap()
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .len(),
            20
        );
    }
    for c in consumers {
        c.shutdown().await;
    }
}
