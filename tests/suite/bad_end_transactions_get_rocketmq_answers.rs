//! END_TRANSACTION requests that name no half message, the wrong producer group or the wrong half queue
//! offset, and a commit after a rollback, get RocketMQ's answers (SYSTEM_ERROR with its remarks) and store
//! nothing; a half message is invisible in its real topic; clients may not send to the transaction topics.

use crate::common;

use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{EndTransactionRequest, SendMessageRequest, SendMessageResponse};
use apogee_net::RemotingCommand;

const TIMEOUT: Duration = Duration::from_secs(5);

fn half_send(topic: &str, body: &str) -> RemotingCommand {
    let header = SendMessageRequest {
        producer_group: "tx-bad".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        sys_flag: 0x4,
        properties: format!(
            "TRAN_MSG\u{1}true\u{2}PGROUP\u{1}tx-bad\u{2}UNIQ_KEY\u{1}U-{body}\u{2}"
        ),
        ..Default::default()
    };
    RemotingCommand::request(RequestCode::SendMessageV2 as i32, 0)
        .with_body(body.as_bytes().to_vec())
        .with_ext_fields(header.to_ext_v2())
}

fn end(group: &str, half_offset: i64, commit_log_offset: i64, state: i32) -> RemotingCommand {
    let h = EndTransactionRequest {
        producer_group: group.into(),
        tran_state_table_offset: half_offset,
        commit_log_offset,
        commit_or_rollback: state,
        msg_id: "x".into(),
        ..Default::default()
    };
    RemotingCommand::request(RequestCode::EndTransaction as i32, 0).with_ext_fields(h.to_ext())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_end_transactions_get_rocketmq_answers_and_store_nothing() {
    let apogee = common::Standalone::start(1, &[]);
    let mq = common::create_topic(&apogee.namesrv, "Ledger", 1)
        .await
        .remove(0);
    let (remoting, _) = Remoting::new();
    let addr = apogee.shard_addr(0);
    let call = |req: RemotingCommand| {
        let (remoting, addr) = (remoting.clone(), addr.clone());
        async move { remoting.invoke(&addr, req, TIMEOUT).await.unwrap() }
    };
    let admin = apogee_client::Admin::new(&apogee.namesrv);

    let sent = call(half_send("Ledger", "h1")).await;
    assert_eq!(sent.code, ResponseCode::Success as i32, "{:?}", sent.remark);
    let answer = SendMessageResponse::from_ext(&sent.ext_fields).unwrap();
    assert_eq!(answer.transaction_id.as_deref(), Some("U-h1"));
    let (_, clo) = apogee_net::msgid::decode(&answer.msg_id).unwrap();
    let clo = clo as i64;
    let half = answer.queue_offset;
    assert_eq!(
        admin.max_offset(&mq).await.unwrap(),
        0,
        "the half message is not in its real topic"
    );

    // An ordinary message: an END naming it is no transaction.
    let plain = call(common::raw_send_v2("Ledger", b"plain")).await;
    let plain_offset = apogee_net::msgid::decode(
        &SendMessageResponse::from_ext(&plain.ext_fields)
            .unwrap()
            .msg_id,
    )
    .unwrap()
    .1 as i64;
    let cases = [
        (
            end("tx-bad", half, clo + 1, 8),
            "Find prepared transaction message failed",
        ),
        (
            end("tx-bad", 0, plain_offset, 8),
            "Find prepared transaction message failed",
        ),
        (
            end("someone-else", half, clo, 8),
            "The producer group wrong",
        ),
        (
            end("tx-bad", half + 7, clo, 8),
            "The transaction state table offset wrong",
        ),
    ];
    for (req, remark) in cases {
        let r = call(req).await;
        assert_eq!(r.code, ResponseCode::SystemError as i32);
        assert_eq!(r.remark.as_deref(), Some(remark));
    }
    // A header without its commit log offset is named.
    let mut broken = end("tx-bad", half, clo, 8);
    broken.ext_fields.remove("commitLogOffset");
    let r = call(broken).await;
    assert_eq!(r.code, ResponseCode::SystemError as i32);
    assert!(r.remark.unwrap_or_default().contains("commitLogOffset"));
    assert_eq!(
        admin.max_offset(&mq).await.unwrap(),
        1,
        "only the plain message"
    );

    let r = call(end("tx-bad", half, clo, 12)).await;
    assert_eq!(
        r.code,
        ResponseCode::Success as i32,
        "rollback: {:?}",
        r.remark
    );
    for state in [8, 12] {
        let r = call(end("tx-bad", half, clo, state)).await;
        assert_eq!(
            r.code,
            ResponseCode::SystemError as i32,
            "a second END is refused"
        );
        assert!(r.remark.unwrap_or_default().contains("already ended"));
    }
    assert_eq!(
        admin.max_offset(&mq).await.unwrap(),
        1,
        "the rolled-back message was never committed"
    );
    assert_eq!(
        common::max_offset_at(&addr, "RMQ_SYS_TRANS_OP_HALF_TOPIC").await,
        Some(1),
        "one op record: the rollback"
    );

    // Unknown outcome: no answer (RocketMQ's), and the message stays undecided.
    let r = remoting
        .invoke(
            &addr,
            end("tx-bad", half, clo, 0),
            Duration::from_millis(500),
        )
        .await;
    assert!(r.is_err(), "no answer to an unknown outcome: {r:?}");

    // Clients may not write to the transaction topics.
    for topic in [
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "TRANS_CHECK_MAX_TIME_TOPIC",
    ] {
        let r = call(common::raw_send_v2(topic, b"sneaky")).await;
        assert_eq!(r.code, ResponseCode::SystemError as i32, "{topic}");
    }
    assert_eq!(
        common::max_offset_at(&addr, "RMQ_SYS_TRANS_HALF_TOPIC").await,
        Some(1)
    );
}
