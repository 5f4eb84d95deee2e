//! A Dledger group reports and registers the roles its election gave: the leader is brokerId 0 and
//! SYNC_MASTER in GET_BROKER_CONFIG, GET_BROKER_RUNTIME_INFO and the name servers' route, the followers
//! their Raft id and SLAVE; a follower refuses sends with SERVICE_NOT_AVAILABLE naming Dledger, the group
//! and the leader. Timer and transactional half messages are refused with MESSAGE_ILLEGAL saying why;
//! a delay-level message is delivered (the leader's scheduler re-puts it through Raft). A config that
//! cannot form a group is refused at start in one line.

use crate::common;

use std::time::Duration;

use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;
use common::dledger::{Group, TOPIC};
use common::RawConn;

fn send_with(addr: &str, properties: &str) -> RemotingCommand {
    let header = apogee_net::headers::SendMessageRequest {
        producer_group: "pg".into(),
        topic: TOPIC.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        properties: properties.into(),
        ..Default::default()
    };
    let req = RemotingCommand::request(RequestCode::SendMessageV2 as i32, 0)
        .with_body(b"payload".to_vec())
        .with_ext_fields(header.to_ext_v2());
    RawConn::connect(addr)
        .expect("connect")
        .call(&req)
        .expect("an answer")
}

fn config_of(addr: &str) -> String {
    let r = RawConn::connect(addr)
        .expect("connect")
        .call(&RemotingCommand::request(
            RequestCode::GetBrokerConfig as i32,
            0,
        ))
        .expect("an answer");
    String::from_utf8(r.body.to_vec()).expect("properties text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dledger_roles_are_registered_and_unreplicated_messages_refused() {
    let g = Group::start(&[]);
    let leader = g.wait_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let (laddr, faddr) = (g.members[leader].addr(), g.members[follower].addr());

    let lc = config_of(&laddr);
    assert!(
        lc.contains("brokerRole=SYNC_MASTER\n") && lc.contains("brokerId=0\n"),
        "{lc}"
    );
    let fc = config_of(&faddr);
    assert!(
        fc.contains("brokerRole=SLAVE\n") && fc.contains(&format!("brokerId={}\n", follower + 1)),
        "the follower n{follower} is Raft id {}: {fc}",
        follower + 1
    );
    let rt = common::dledger::runtime(&laddr).expect("runtime info");
    assert_eq!(
        rt.get("brokerRole").map(String::as_str),
        Some("SYNC_MASTER")
    );
    assert_eq!(rt.get("dLegerGroup").map(String::as_str), Some("g-0"));

    // A follower refuses sends, naming the group and the leader.
    let r = send_with(&faddr, "");
    assert_eq!(r.code, ResponseCode::ServiceNotAvailable as i32);
    let remark = r.remark.unwrap_or_default();
    assert!(
        remark.contains("Dledger group g-0") && remark.contains(&g.members[leader].name),
        "{remark}"
    );

    // Timers and half messages are refused by the leader, saying why.
    for (props, what) in [
        ("TIMER_DELAY_SEC\u{1}10\u{2}", "timer"),
        ("TRAN_MSG\u{1}true\u{2}PGROUP\u{1}pg\u{2}", "transactional"),
    ] {
        let r = send_with(&laddr, props);
        assert_eq!(
            r.code,
            ResponseCode::MessageIllegal as i32,
            "{what}: {:?}",
            r.remark
        );
        let remark = r.remark.unwrap_or_default();
        assert!(
            remark.contains("Dledger mode") && remark.contains(what),
            "{remark}"
        );
    }

    // A plain send and a delay-level send are stored; the delayed one arrives once due.
    let r = send_with(&laddr, "");
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    let r = send_with(&laddr, "DELAY\u{1}1\u{2}");
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    let delivered = common::eventually(Duration::from_secs(15), || {
        let a = laddr.clone();
        async move { (common::dledger::read_queue(&a, 0).len() == 2).then_some(()) }
    })
    .await;
    assert!(delivered.is_some(), "the delayed message never arrived");

    // The name servers route the group's broker with the leader as master.
    let admin = apogee_client::Admin::new(&g.namesrv);
    let route = common::eventually(Duration::from_secs(15), || {
        let (admin, laddr) = (&admin, laddr.clone());
        async move {
            let info = admin.clusters().await.ok()?;
            let b = info.broker_addr_table.get("broker-a-0")?;
            (b.master_addr() == Some(laddr.as_str())).then_some(b.broker_addrs.len())
        }
    })
    .await;
    assert_eq!(
        route,
        Some(3),
        "broker-a-0 routes the leader as id 0 and both followers"
    );
}

#[test]
fn a_config_that_cannot_form_a_group_is_refused_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (peers, self_id, extra, names) in [
        (
            "n0-127.0.0.1:41001;n1-127.0.0.1:41002",
            "n0",
            "",
            "dLegerPeers",
        ),
        (
            "n0-127.0.0.1:41001;n1-127.0.0.1:41002;n2-127.0.0.1:41003",
            "n9",
            "",
            "dLegerSelfId",
        ),
        (
            "n0-127.0.0.1:41001;n1-127.0.0.1:41002;n2-127.0.0.1:41003",
            "n0",
            "brokerRole=SYNC_MASTER",
            "brokerRole",
        ),
    ] {
        let mut args = vec![
            "broker".to_owned(),
            "--store".into(),
            dir.path().display().to_string(),
            "--shards".into(),
            "1".into(),
            "-o".into(),
            "enableDLegerCommitLog=true".into(),
            "-o".into(),
            format!("dLegerPeers={peers}"),
            "-o".into(),
            format!("dLegerSelfId={self_id}"),
        ];
        if !extra.is_empty() {
            args.push("-o".into());
            args.push(extra.into());
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
            .args(&args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run apogee");
        assert!(!out.status.success(), "{names}: started");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(names)).collect();
        assert_eq!(lines.len(), 1, "{names}: {err}");
    }
}

/// A leader whose disk is over `diskSpaceWarningLevelRatio` refuses a send as a classic master does
/// (SERVICE_NOT_AVAILABLE naming the disk) before proposing it: no entry reaches the Raft log that the
/// leader could not apply, so the send is not held until the apply wait runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_over_the_disk_ratio_refuses_sends_before_proposing() {
    // Any disk this suite runs on is more than 0.1 % used.
    let g = Group::start(&["diskSpaceWarningLevelRatio=0.001"]);
    let leader = g.wait_leader(Duration::from_secs(30));
    let laddr = g.members[leader].addr();
    let before = common::dledger::runtime(&laddr).expect("runtime info");
    let started = std::time::Instant::now();
    let r = send_with(&laddr, "");
    assert_eq!(
        r.code,
        ResponseCode::ServiceNotAvailable as i32,
        "{:?}",
        r.remark
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusal took {:?}",
        started.elapsed()
    );
    let remark = r.remark.unwrap_or_default();
    assert!(remark.contains("disk"), "{remark}");
    let after = common::dledger::runtime(&laddr).expect("runtime info");
    assert_eq!(
        before.get("dLegerCommitIndex"),
        after.get("dLegerCommitIndex"),
        "the refused send reached the Raft log"
    );
}
