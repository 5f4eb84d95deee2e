//! `tls.server.mode=permissive`: one port serves TLS and plain connections, told apart by their first
//! byte. A plain producer and a TLS producer send to the same standalone (name server and broker both
//! permissive); a plain consumer and a TLS consumer each read all of it. A raw plain frame is answered, and
//! `openssl s_client` completes a verified handshake on the same ports.

use crate::common;

use std::time::Duration;

use crate::common::tls::{openssl_handshake, plain_frame, Pki, PlainProbe};
use apogee_client::{Admin, Message, Producer, ProducerConfig, PullConsumerConfig, TlsConfig};

fn consumer(namesrv: &str, group: &str, tls: Option<TlsConfig>) -> apogee_client::PullConsumer {
    let mut config = PullConsumerConfig::new(namesrv, group);
    config.consume_from = apogee_client::consumer::ConsumeFrom::FirstOffset;
    if let Some(t) = tls {
        config = config.with_tls(t);
    }
    apogee_client::PullConsumer::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_permissive_serves_both_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let flags = pki.server_flags("permissive");
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let sa = common::Standalone::start(1, &args);
    let broker_addr = sa.shard_addr(0);

    for addr in [&sa.namesrv, &broker_addr] {
        let a = addr.clone();
        let probe = tokio::task::spawn_blocking(move || plain_frame(&a))
            .await
            .unwrap();
        assert!(
            matches!(probe, PlainProbe::Answered(_)),
            "{addr} did not answer a plain frame under permissive: {probe:?}"
        );
    }

    common::create_topic(&sa.namesrv, "Mixed", 2).await;
    let tls_admin = Admin::with_tls(&sa.namesrv, pki.client());
    assert_eq!(
        tls_admin
            .queues("Mixed")
            .await
            .expect("route over TLS")
            .len(),
        2
    );

    let plain = Producer::start(ProducerConfig::new(&sa.namesrv, "pg-plain"))
        .await
        .unwrap();
    let sealed = Producer::start(ProducerConfig::new(&sa.namesrv, "pg-tls").with_tls(pki.client()))
        .await
        .unwrap();
    for i in 0..10 {
        plain
            .send(Message::new("Mixed", format!("plain-{i}")))
            .await
            .expect("plain send");
        sealed
            .send(Message::new("Mixed", format!("tls-{i}")))
            .await
            .expect("TLS send");
    }
    let mut want: Vec<String> = (0..10)
        .flat_map(|i| [format!("plain-{i}"), format!("tls-{i}")])
        .collect();
    want.sort();
    for (group, tls) in [("cg-plain", None), ("cg-tls", Some(pki.client()))] {
        let c = consumer(&sa.namesrv, group, tls);
        c.subscribe("Mixed", "*").await.expect("subscribe");
        let mut got = common::drain(&c, 20, Duration::from_secs(30)).await;
        got.sort();
        assert_eq!(got, want, "consumer {group}");
    }

    for addr in [&sa.namesrv, &broker_addr] {
        if let Some(ok) = tokio::task::spawn_blocking({
            let (a, ca) = (addr.clone(), pki.ca.clone());
            move || openssl_handshake(&a, &ca)
        })
        .await
        .unwrap()
        {
            assert!(
                ok,
                "openssl s_client could not complete a verified handshake with {addr}"
            );
        }
    }
}
