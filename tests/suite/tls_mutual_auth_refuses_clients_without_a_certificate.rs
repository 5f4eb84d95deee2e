//! `tls.server.need.client.auth=require` (mutual TLS) on an enforcing standalone: a TLS client that trusts
//! the CA but presents no certificate gets no answer from the name server or the broker; one with a
//! certificate the CA signed produces and consumes. The broker presents its own client certificate
//! (`tls.client.certPath`) to register with the embedded name server.

use crate::common;

use std::time::Duration;

use crate::common::tls::Pki;
use apogee_client::{Admin, Message, Producer, ProducerConfig, PullConsumerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mutual_auth_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let mut flags = pki.server_flags("enforcing");
    for kv in [
        "tls.server.need.client.auth=require".to_string(),
        format!("tls.client.certPath={}", pki.client_cert.display()),
        format!("tls.client.keyPath={}", pki.client_key.display()),
    ] {
        flags.push("-o".into());
        flags.push(kv);
    }
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let sa = common::Standalone::start(1, &args);

    // Without a client certificate: refused by the name server and by the broker.
    let anonymous = Admin::with_tls(&sa.namesrv, pki.client());
    let refused = anonymous.clusters().await;
    assert!(
        refused.is_err(),
        "the name server answered a client without a certificate: {refused:?}"
    );
    let (remoting, _) = apogee_client::remoting::Remoting::with_tls(Some(pki.client()));
    let req = apogee_net::RemotingCommand::request(
        apogee_net::codes::RequestCode::GetBrokerClusterInfo as i32,
        0,
    );
    let answer = remoting
        .invoke(&sa.shard_addr(0), req, Duration::from_secs(5))
        .await;
    assert!(
        answer.is_err(),
        "the broker answered a client without a certificate: {answer:?}"
    );

    // With one: served.
    let admin = Admin::with_tls(&sa.namesrv, pki.client_with_cert());
    let registered = common::eventually(Duration::from_secs(20), || async {
        admin
            .clusters()
            .await
            .ok()
            .filter(|c| !c.broker_addr_table.is_empty())
    })
    .await;
    assert!(
        registered.is_some(),
        "the broker never registered with its client certificate"
    );
    admin
        .create_topic("DefaultCluster", "Mutual", 1)
        .await
        .expect("create topic with a client certificate");
    let routed = common::eventually(Duration::from_secs(20), || async {
        admin.queues("Mutual").await.ok().filter(|q| q.len() == 1)
    })
    .await;
    assert!(routed.is_some(), "the topic never appeared in the routes");
    let producer =
        Producer::start(ProducerConfig::new(&sa.namesrv, "pg").with_tls(pki.client_with_cert()))
            .await
            .unwrap();
    for i in 0..5 {
        producer
            .send(Message::new("Mutual", format!("m{i}")))
            .await
            .expect("send with a client certificate");
    }
    let mut config = PullConsumerConfig::new(&sa.namesrv, "cg").with_tls(pki.client_with_cert());
    config.consume_from = apogee_client::consumer::ConsumeFrom::FirstOffset;
    let consumer = apogee_client::PullConsumer::new(config);
    consumer.subscribe("Mutual", "*").await.expect("subscribe");
    let got = common::drain(&consumer, 5, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 5, "{got:?}");
}
