//! Offsets, counts and timestamps at the ends of their types (i64::MAX, u64::MAX, i32::MAX, negatives)
//! in request headers get an answer — an error that says what is wrong, or an empty result — and never
//! take the broker down (this runs the debug build, where an arithmetic overflow would panic the shard and
//! stop the process); the broker serves on afterwards.

use crate::common;

use crate::common::RawConn;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;

fn request(code: RequestCode, fields: &[(&str, String)]) -> RemotingCommand {
    let mut r = RemotingCommand::request(code as i32, 0);
    for (k, v) in fields {
        r.ext_fields.insert((*k).to_owned(), v.clone());
    }
    r
}

#[test]
fn extreme_offsets_and_counts_are_answered() {
    let apogee = common::Standalone::start(1, &[]);
    let addr = apogee.shard_addr(0);
    let mut conn = RawConn::connect(&addr).unwrap();
    let sent = conn.call(&common::raw_send_v2("Edge", b"payload")).unwrap();
    assert_eq!(sent.code, ResponseCode::Success as i32, "{:?}", sent.remark);

    let s = |v: i64| v.to_string();
    let mut cases: Vec<(&str, RemotingCommand)> = Vec::new();
    for offset in [u64::MAX, u64::MAX - 3, i64::MAX as u64, 1 << 62] {
        cases.push((
            "view by id at a huge commit log offset",
            request(
                RequestCode::ViewMessageById,
                &[("offset", offset.to_string())],
            ),
        ));
    }
    for (offset, nums) in [
        (i64::MAX, 32),
        (i64::MAX - 1, i32::MAX),
        (i64::MIN, 32),
        (0, i32::MAX),
        (0, -1),
    ] {
        let mut pull = common::raw_pull("g", "Edge", 0, offset);
        pull.ext_fields
            .insert("maxMsgNums".into(), nums.to_string());
        cases.push(("pull at an extreme offset or count", pull));
    }
    for (begin, end, max) in [
        (i64::MIN, i64::MAX, i32::MAX),
        (i64::MAX, 0, 32),
        (0, i64::MIN, -1),
    ] {
        cases.push((
            "query by key with extreme times and counts",
            request(
                RequestCode::QueryMessage,
                &[
                    ("topic", "Edge".into()),
                    ("key", "k".into()),
                    ("maxNum", max.to_string()),
                    ("beginTimestamp", s(begin)),
                    ("endTimestamp", s(end)),
                ],
            ),
        ));
    }
    for ts in [i64::MAX, i64::MIN, -1] {
        cases.push((
            "search offset by an extreme time",
            request(
                RequestCode::SearchOffsetByTimestamp,
                &[
                    ("topic", "Edge".into()),
                    ("queueId", "0".into()),
                    ("timestamp", s(ts)),
                ],
            ),
        ));
    }
    for q in [i32::MAX, i32::MIN, -1] {
        for code in [
            RequestCode::GetMaxOffset,
            RequestCode::GetMinOffset,
            RequestCode::GetEarliestMsgStoreTime,
        ] {
            cases.push((
                "queue offsets of an extreme queue id",
                request(
                    code,
                    &[("topic", "Edge".into()), ("queueId", q.to_string())],
                ),
            ));
        }
    }
    for (q, offset) in [(0, i64::MAX), (0, i64::MIN), (i32::MAX, 5)] {
        cases.push((
            "commit an extreme offset",
            request(
                RequestCode::UpdateConsumerOffset,
                &[
                    ("topic", "Edge".into()),
                    ("consumerGroup", "g".into()),
                    ("queueId", q.to_string()),
                    ("commitOffset", s(offset)),
                ],
            ),
        ));
    }
    for (ts, queue, offset) in [
        (i64::MAX, None, None),
        (i64::MIN, None, None),
        (0, Some(0), Some(i64::MAX)),
        (0, Some(0), Some(i64::MIN)),
    ] {
        let mut fields = vec![
            ("topic", "Edge".to_owned()),
            ("group", "g".to_owned()),
            ("timestamp", s(ts)),
            ("isForce", "true".to_owned()),
        ];
        if let (Some(q), Some(o)) = (queue, offset) {
            fields.push(("queueId", q.to_string()));
            fields.push(("offset", s(o)));
        }
        cases.push((
            "reset offsets to an extreme time or offset",
            request(RequestCode::InvokeBrokerToResetOffset, &fields),
        ));
    }
    for offset in [i64::MAX, i64::MIN, -1] {
        cases.push((
            "send back an extreme commit log offset",
            request(
                RequestCode::ConsumerSendMsgBack,
                &[
                    ("offset", s(offset)),
                    ("group", "g".into()),
                    ("delayLevel", "0".into()),
                ],
            ),
        ));
    }

    for (what, req) in cases {
        let fields = format!("{:?}", req.ext_fields);
        let answer = conn
            .call(&req)
            .unwrap_or_else(|| panic!("{what} {fields}: no answer (the broker closed or died)"));
        assert!(answer.is_response(), "{what}");
        // A pull's status codes are answers in themselves (RocketMQ sends them without a remark).
        let statuses = [
            ResponseCode::Success,
            ResponseCode::PullNotFound,
            ResponseCode::PullRetryImmediately,
            ResponseCode::PullOffsetMoved,
        ];
        if !statuses.iter().any(|c| *c as i32 == answer.code) {
            let remark = answer.remark.unwrap_or_default();
            assert!(
                !remark.is_empty(),
                "{what} {fields}: error {} without a remark",
                answer.code
            );
        }
    }

    // Still serving, on this connection and a new one.
    let r = conn.call(&common::raw_send_v2("Edge", b"after")).unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32, "{:?}", r.remark);
    let mut other = RawConn::connect(&addr).unwrap();
    let r = other
        .call(&RemotingCommand::request(
            RequestCode::GetBrokerRuntimeInfo as i32,
            0,
        ))
        .unwrap();
    assert_eq!(r.code, ResponseCode::Success as i32);
}
