//! Deleting a topic (DELETE_TOPIC_IN_BROKER on every master, DELETE_TOPIC_IN_NAMESRV on every name server)
//! takes it out of routes, topic lists and the brokers' tables, removes its consume queue folders from
//! disk, and it stays gone after a restart; the broker's own topics cannot be deleted.

use crate::common;

use std::time::Duration;

use apogee_client::{Admin, Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_topics_leave_routes_and_disk() {
    let mut apogee = common::Standalone::start(2, &[]);
    common::create_topic(&apogee.namesrv, "Doomed", 2).await;
    common::create_topic(&apogee.namesrv, "Kept", 2).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "del-pg"))
        .await
        .unwrap();
    for i in 0..20 {
        producer
            .send(Message::new("Doomed", format!("d{i}")))
            .await
            .unwrap();
        producer
            .send(Message::new("Kept", format!("k{i}")))
            .await
            .unwrap();
    }
    let dirs: Vec<_> = (0..2)
        .map(|s| {
            apogee
                .store
                .join(format!("shard-{s}"))
                .join("consumequeue")
                .join("Doomed")
        })
        .collect();
    let on_disk = common::eventually(Duration::from_secs(10), || async {
        dirs.iter().all(|d| d.exists()).then_some(())
    })
    .await;
    assert!(
        on_disk.is_some(),
        "consume queue folders never appeared: {dirs:?}"
    );

    let admin = Admin::new(&apogee.namesrv);
    assert_eq!(
        admin
            .delete_topic("DefaultCluster", "Doomed")
            .await
            .unwrap(),
        2
    );
    assert!(matches!(
        admin.route("Doomed").await,
        Err(apogee_client::ClientError::NoRoute(_))
    ));
    assert!(!admin
        .topics()
        .await
        .unwrap()
        .contains(&"Doomed".to_string()));
    assert!(!admin
        .topics_of_cluster("DefaultCluster")
        .await
        .unwrap()
        .contains(&"Doomed".to_string()));
    for d in &dirs {
        assert!(!d.exists(), "{} still on disk", d.display());
    }
    assert_eq!(
        admin.topic_stats("Kept").await.unwrap().len(),
        4,
        "other topics are untouched"
    );

    let refused = admin
        .delete_topic("DefaultCluster", "TBW102")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(16), "NO_PERMISSION: {refused}");

    // Registrations after the deletion, and a restart, do not bring it back.
    apogee.restart(true);
    let admin = Admin::new(&apogee.namesrv);
    let kept = common::eventually(Duration::from_secs(20), || async {
        admin.route("Kept").await.ok()
    })
    .await;
    assert!(kept.is_some());
    assert!(admin.route("Doomed").await.is_err());
    for d in &dirs {
        assert!(!d.exists(), "{} is back after a restart", d.display());
    }
}
