//! A slave copies its master's subscription groups and delay progress (RocketMQ's `SlaveSynchronize`)
//! but never delivers delayed or timer messages nor stores send-backs itself: its log only grows from its master,
//! so it holds each re-put message once, the one the master made.

use crate::common;

use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{Admin, Message, Producer, ProducerConfig};
use apogee_net::body::subscription_group::SubscriptionGroupConfig;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{ConsumerSendMsgBackRequest, OffsetResponse, QueueRequest};
use apogee_net::RemotingCommand;

const TIMEOUT: Duration = Duration::from_secs(3);

async fn max_offset(remoting: &Remoting, addr: &str) -> Option<i64> {
    let req = RemotingCommand::request(RequestCode::GetMaxOffset as i32, 0).with_ext_fields(
        QueueRequest {
            topic: "Later".into(),
            queue_id: 0,
        }
        .to_ext(),
    );
    let r = remoting.invoke(addr, req, TIMEOUT).await.ok()?;
    OffsetResponse::from_ext(&r.ext_fields)
        .ok()
        .map(|h| h.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_copies_groups_and_delay_progress_and_never_delivers() {
    let (_ns, namesrv) = common::nameserver(10_000);
    let dir = tempfile::tempdir().unwrap();
    let common_args = [
        "-o",
        "registerIntervalMs=500",
        "-o",
        "messageDelayLevel=1s 1s",
    ];
    let mut master_args = vec!["-o", "brokerRole=ASYNC_MASTER"];
    master_args.extend(common_args);
    let mut slave_args = vec!["-o", "brokerRole=SLAVE", "-o", "brokerId=1"];
    slave_args.extend(common_args);
    let master_port = common::free_ports(4);
    let mut master = common::broker_on(
        &namesrv,
        1,
        &dir.path().join("m"),
        master_port,
        &master_args,
    );
    let slave_port = common::free_ports(4);
    let _slave = common::broker_on(&namesrv, 1, &dir.path().join("s"), slave_port, &slave_args);
    master.wait_for("slave connected", Duration::from_secs(30));
    let (master_addr, slave_addr) = (
        format!("127.0.0.1:{master_port}"),
        format!("127.0.0.1:{slave_port}"),
    );
    let mq = common::create_topic(&namesrv, "Later", 1).await[0].clone();
    let admin = Admin::new(&namesrv);
    let mut group = SubscriptionGroupConfig::new("copied");
    group.retry_max_times = 7;
    admin
        .create_subscription_group_on(&master_addr, &group)
        .await
        .unwrap();
    let producer = Producer::start(ProducerConfig::new(&namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..2 {
        producer
            .send_to_queue(
                Message::new("Later", format!("d{i}")).with_delay_level(1),
                &mq,
            )
            .await
            .unwrap();
    }
    producer
        .send_to_queue(
            Message::new("Later", "t").with_delay(Duration::from_millis(1_000)),
            &mq,
        )
        .await
        .unwrap();
    let (remoting, _) = Remoting::new();
    let delivered = common::eventually(Duration::from_secs(10), || async {
        (max_offset(&remoting, &master_addr).await >= Some(3)).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "the master delivers all three");

    // The slave's copy arrives within its sync interval (10 s, as RocketMQ).
    let copied = common::eventually(Duration::from_secs(25), || async {
        let groups = admin.subscription_groups_on(&slave_addr).await.ok()?;
        let delay = admin.delay_offsets_on(&slave_addr).await.ok()?;
        (groups
            .subscription_group_table
            .get("copied")
            .map(|g| g.retry_max_times)
            == Some(7)
            && delay.get(&1) == Some(&2))
        .then_some(())
    })
    .await;
    assert!(
        copied.is_some(),
        "the slave copies groups and delay progress"
    );
    // It holds the re-put messages it got from its master, no more: it delivered none itself. (The
    // master holds 3, or more if a slow send was retried by the producer.)
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let on_master = max_offset(&remoting, &master_addr).await;
    assert!(on_master >= Some(3));
    assert_eq!(max_offset(&remoting, &slave_addr).await, on_master);

    // A send-back to the slave is refused; the message stays where it is.
    let h = ConsumerSendMsgBackRequest {
        offset: 0,
        group: "copied".into(),
        delay_level: 0,
        origin_msg_id: None,
        origin_topic: Some("Later".into()),
        unit_mode: false,
        max_reconsume_times: None,
    };
    let req = RemotingCommand::request(RequestCode::ConsumerSendMsgBack as i32, 0)
        .with_ext_fields(h.to_ext());
    let r = remoting.invoke(&slave_addr, req, TIMEOUT).await.unwrap();
    assert_eq!(r.code, ResponseCode::SystemError as i32);
    assert!(r.remark.unwrap().contains("SERVICE_NOT_AVAILABLE"));
}
