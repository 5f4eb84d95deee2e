//! The trace format against RocketMQ's definition, the packing of trace messages, the bounded buffer.

use super::dispatcher::{self, TraceDispatcher};
use super::format::{self, *};
use super::view;

const C: char = '\u{1}';
const F: char = '\u{2}';

/// A body as RocketMQ's TraceDataEncoder writes it, field by field from its definition (a Pub with
/// offsetMsgId, a SubBefore, a SubAfter with context code, timestamp and group, an EndTransaction).
fn rocketmq_body() -> String {
    let pub_ = [
        "Pub",
        "1700000000000",
        "DefaultRegion",
        "pg",
        "Orders",
        "7F0000010001ABCD",
        "TagA",
        "k1 k2",
        "127.0.0.1:10911",
        "42",
        "3",
        "0",
        "7F00000100002A9F0000000000000100",
        "true",
    ];
    let before = [
        "SubBefore",
        "1700000000100",
        "DefaultRegion",
        "cg",
        "REQ1",
        "7F0000010001ABCD",
        "0",
        "k1 k2",
    ];
    let after = [
        "SubAfter",
        "REQ1",
        "7F0000010001ABCD",
        "12",
        "false",
        "k1 k2",
        "4",
        "1700000000112",
        "cg",
    ];
    let end = [
        "EndTransaction",
        "1700000000000",
        "DefaultRegion",
        "pg",
        "Orders",
        "X",
        "null",
        "null",
        "127.0.0.1:10911",
        "1",
        "TX",
        "COMMIT_MESSAGE",
        "false",
    ];
    [&pub_[..], &before[..], &after[..], &end[..]]
        .iter()
        .map(|r| format!("{}{F}", r.join(&C.to_string())))
        .collect()
}

fn sample() -> Vec<TraceRecord> {
    vec![
        TraceRecord::Pub(PubTrace {
            timestamp_ms: 1_700_000_000_000,
            region_id: "DefaultRegion".into(),
            group: "pg".into(),
            topic: "Orders".into(),
            msg_id: "7F0000010001ABCD".into(),
            tags: "TagA".into(),
            keys: "k1 k2".into(),
            store_host: "127.0.0.1:10911".into(),
            body_length: 42,
            cost_ms: 3,
            msg_type: msg_type::NORMAL,
            offset_msg_id: "7F00000100002A9F0000000000000100".into(),
            success: true,
            client_host: None,
        }),
        TraceRecord::SubBefore(SubBeforeTrace {
            timestamp_ms: 1_700_000_000_100,
            region_id: "DefaultRegion".into(),
            group: "cg".into(),
            request_id: "REQ1".into(),
            msg_id: "7F0000010001ABCD".into(),
            retry_times: 0,
            keys: "k1 k2".into(),
        }),
        TraceRecord::SubAfter(SubAfterTrace {
            request_id: "REQ1".into(),
            msg_id: "7F0000010001ABCD".into(),
            cost_ms: 12,
            success: false,
            keys: "k1 k2".into(),
            context_code: context_code::FAILED,
            timestamp_ms: Some(1_700_000_000_112),
            group: Some("cg".into()),
        }),
    ]
}

#[test]
fn a_body_in_rocketmqs_format_decodes_field_by_field() {
    let records = format::decode(&rocketmq_body()).unwrap();
    assert_eq!(
        records,
        sample(),
        "EndTransaction is skipped, the rest read as written"
    );
}

#[test]
fn apogee_writes_exactly_rocketmqs_format() {
    let written = format::encode(&sample());
    let expected: String = rocketmq_body().split_inclusive(F).take(3).collect();
    assert_eq!(written, expected);
    assert_eq!(format::decode(&written).unwrap(), sample());
}

#[test]
fn older_and_shorter_records_decode_and_bad_ones_are_refused() {
    let old_pub = [
        "Pub", "1", "r", "g", "T", "ID", "null", "null", "h", "0", "1", "0", "true",
    ]
    .join(&C.to_string());
    let r = format::decode(&old_pub).unwrap();
    assert!(matches!(&r[0], TraceRecord::Pub(p) if p.success && p.offset_msg_id.is_empty()));
    let old_after = ["SubAfter", "R", "ID", "5", "true", "k"].join(&C.to_string());
    let r = format::decode(&old_after).unwrap();
    assert!(
        matches!(&r[0], TraceRecord::SubAfter(a) if a.group.is_none() && a.timestamp_ms.is_none())
    );
    let bad = ["SubBefore", "notanumber", "r", "g", "R", "ID", "0", "k"].join(&C.to_string());
    let e = format::decode(&bad).unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
    assert!(format::decode(&["Pub", "1"].join(&C.to_string())).is_err());
}

#[test]
fn trace_messages_are_keyed_by_msg_id_and_keys_and_stay_within_limits() {
    let msgs = dispatcher::messages("RMQ_SYS_TRACE_TOPIC", &sample());
    assert_eq!(msgs.len(), 1);
    let (m, n) = &msgs[0];
    assert_eq!(*n, 3);
    assert_eq!(
        m.properties.get("KEYS").map(String::as_str),
        Some("7F0000010001ABCD k1 k2")
    );
    let many: Vec<TraceRecord> = (0..250).map(|_| sample()[1].clone()).collect();
    let msgs = dispatcher::messages("T", &many);
    assert_eq!(msgs.iter().map(|(_, n)| n).sum::<usize>(), 250);
    assert!(msgs
        .iter()
        .all(|(m, n)| *n <= dispatcher::TRACE_MESSAGE_RECORDS_MAX
            && m.body.len() <= dispatcher::TRACE_MESSAGE_BYTES_MAX));
}

#[tokio::test]
async fn a_full_trace_buffer_drops_and_counts_without_waiting() {
    // Nothing is drained while this test does not yield: the buffer fills, then drops.
    let d = TraceDispatcher::start("127.0.0.1:1", "T", "g");
    let extra = 500;
    for _ in 0..dispatcher::TRACE_BUFFER_RECORDS_MAX + extra {
        d.record(sample()[0].clone());
    }
    let stats = d.stats();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(
        stats.recorded.load(Relaxed),
        dispatcher::TRACE_BUFFER_RECORDS_MAX as u64
    );
    assert_eq!(stats.dropped.load(Relaxed), extra as u64);
}

#[test]
fn the_trace_table_shows_send_store_and_each_consume() {
    let t = view::table("7F0000010001ABCD", &sample());
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 5, "{t}");
    assert!(
        lines[2].starts_with("send")
            && lines[2].contains("2023-11-14 22:13:20.000")
            && lines[2].contains("success")
    );
    assert!(lines[3].starts_with("store") && lines[3].contains("host=127.0.0.1:10911"));
    assert!(
        lines[4].starts_with("consume")
            && lines[4].contains("cg")
            && lines[4].contains("12")
            && lines[4].contains("failed")
    );
}

#[test]
fn utc_times_are_civil_dates() {
    assert_eq!(view::utc(0), "1970-01-01 00:00:00.000");
    assert_eq!(view::utc(951_782_400_123), "2000-02-29 00:00:00.123");
}
