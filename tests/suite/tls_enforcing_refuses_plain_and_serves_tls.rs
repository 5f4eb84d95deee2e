//! `tls.server.mode=enforcing` on a name server and a broker (every port: main, VIP, HA): a plain
//! RocketMQ frame gets its connection closed unanswered, a native client without TLS gets nothing, and the
//! native client with TLS creates a topic, produces and consumes. The broker itself registers with the
//! enforcing name server over TLS (`tls.enable=true`), or no route would exist. `openssl s_client`
//! completes a verified handshake with both (skipped, saying so, when openssl is absent), and
//! `apogee admin --tls --tls-ca` is served while `apogee admin` without TLS is not. A connection that
//! sends nothing is closed at the 10 s handshake bound.
//! Certificates are made by the test.

use crate::common;

use std::time::Duration;

use crate::common::tls::{openssl_handshake, plain_frame, Pki, PlainProbe};
use apogee_client::{Admin, Message, Producer, ProducerConfig, PullConsumerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_enforcing_refuses_plain_and_serves_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    // Both read their keys from a tls.config.file, as the README shows.
    let file = format!(
        "tls.config.file={}",
        pki.config_file(dir.path(), "enforcing").display()
    );
    let (_ns, namesrv) = common::tls::nameserver_with(&["-o".into(), file.clone()]);
    let broker_args = ["-o", file.as_str(), "-o", "registerIntervalMs=1000"];
    let (_broker, port) = common::broker(&namesrv, 1, &dir.path().join("store"), &broker_args);
    let broker_addr = format!("127.0.0.1:{port}");

    // A client that connects and never sends anything is closed once the handshake bound passes (10 s),
    // so it cannot hold a slot; watched in the background while the rest runs.
    let silent = tokio::task::spawn_blocking({
        let addr = broker_addr.clone();
        move || {
            use std::io::Read;
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let started = std::time::Instant::now();
            let n = s.read(&mut [0u8; 16]);
            (n.map_err(|e| e.kind()), started.elapsed())
        }
    });

    // Plain connections: closed unanswered on every port.
    for addr in [
        namesrv.clone(),
        broker_addr.clone(),
        format!("127.0.0.1:{}", port - 2), // VIP channel
        format!("127.0.0.1:{}", port + 1), // HA port
    ] {
        assert_eq!(
            tokio::task::spawn_blocking({
                let a = addr.clone();
                move || plain_frame(&a)
            })
            .await
            .unwrap(),
            PlainProbe::Closed,
            "{addr} answered a plain frame under enforcing"
        );
    }
    let plain_admin = Admin::new(&namesrv);
    assert!(
        plain_admin.clusters().await.is_err(),
        "a client without TLS got an answer from an enforcing name server"
    );

    // TLS: the broker registered over TLS, and the native client produces and consumes.
    let admin = Admin::with_tls(&namesrv, pki.client());
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
        "the broker never registered with the enforcing name server"
    );
    admin
        .create_topic("DefaultCluster", "Sealed", 2)
        .await
        .expect("create topic over TLS");
    let queues = common::eventually(Duration::from_secs(20), || async {
        admin.queues("Sealed").await.ok().filter(|q| q.len() == 2)
    })
    .await;
    assert!(queues.is_some(), "the topic never appeared in the routes");
    let producer = Producer::start(ProducerConfig::new(&namesrv, "pg").with_tls(pki.client()))
        .await
        .expect("producer over TLS");
    for i in 0..20 {
        producer
            .send(Message::new("Sealed", format!("secret-{i}")))
            .await
            .expect("send over TLS");
    }
    let mut config = PullConsumerConfig::new(&namesrv, "cg").with_tls(pki.client());
    config.consume_from = apogee_client::consumer::ConsumeFrom::FirstOffset;
    let consumer = apogee_client::PullConsumer::new(config);
    consumer.subscribe("Sealed", "*").await.expect("subscribe");
    let mut got = common::drain(&consumer, 20, Duration::from_secs(30)).await;
    got.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("secret-{i}")).collect();
    want.sort();
    assert_eq!(got, want);

    // `apogee admin --tls --tls-ca` (the README's command) lists the cluster; without --tls it cannot.
    let admin_cli = |extra: &[&str]| {
        let mut args = vec!["admin", "-n", namesrv.as_str(), "clusterList"];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
            .args(&args)
            .output()
            .unwrap()
    };
    let ca = pki.ca.display().to_string();
    let out = admin_cli(&["--tls", "--tls-ca", &ca]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("broker-a-0"),
        "apogee admin --tls: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = admin_cli(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "apogee admin without --tls was answered"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    // A third-party TLS stack completes the handshake and verifies the certificate.
    for addr in [&namesrv, &broker_addr] {
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

    let (read, after) = silent.await.unwrap();
    assert_eq!(read, Ok(0), "a silent connection was not closed");
    assert!(
        after >= Duration::from_secs(9) && after < Duration::from_secs(25),
        "a silent connection was closed after {after:?}, not at the 10 s handshake bound"
    );
}
