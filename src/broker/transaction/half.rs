//! The send side of transactions: a prepared message (TRAN_MSG=true, or the prepared sys flag) becomes a
//! half message in [`super::HALF_TOPIC`] queue 0, as RocketMQ's `TransactionalMessageBridge.parseHalfMessageInner`
//! does, so consumers of the real topic never see it until it is committed.
//!
//! The half record keeps everything the committed message needs: REAL_TOPIC / REAL_QID name its
//! destination, PGROUP its producer group (the group END must name and check-backs go to; set from the send
//! header when the client left it out), UNIQ_KEY its transaction id. Its sys flag has no transaction bits
//! (RocketMQ stores half messages as "not a transaction" so its own dispatch indexes them).

use apogee_net::properties::{self, names};
use apogee_net::record::sys_flag::{
    TRANSACTION_MASK, TRANSACTION_NOT_TYPE, TRANSACTION_PREPARED, TRANSACTION_ROLLBACK,
};

use super::HALF_TOPIC;

/// What a send's transaction marks ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    /// An ordinary message (or a committed one, which is delivered as it is).
    Plain,
    /// A prepared message: stored as a half message.
    Half,
    /// A message sent with the rollback flag: it could never be delivered.
    Rollback,
}

/// RocketMQ's test (`SendMessageProcessor`): TRAN_MSG=true makes a half message; so does the prepared sys
/// flag alone, which RocketMQ's store would keep invisible too.
pub fn kind(sys_flag: i32, properties: &str) -> SendKind {
    let tran_msg = properties::get(properties, names::TRAN_MSG).is_some_and(|v| v == "true");
    match sys_flag & TRANSACTION_MASK {
        _ if tran_msg => SendKind::Half,
        TRANSACTION_PREPARED => SendKind::Half,
        TRANSACTION_ROLLBACK => SendKind::Rollback,
        _ => SendKind::Plain,
    }
}

/// Where a half message is stored: the half topic, queue 0, with its destination and group recorded.
pub fn into_half(
    topic: &str,
    queue_id: i32,
    producer_group: &str,
    props: &str,
) -> Result<(String, i32, String), String> {
    let queue_text = queue_id.to_string();
    let mut set = vec![
        (names::REAL_TOPIC, topic),
        (names::REAL_QID, queue_text.as_str()),
    ];
    if properties::get(props, names::PGROUP).is_none() {
        set.push((names::PGROUP, producer_group));
    }
    let props = properties::with_changes(props, &set, &[]).map_err(|e| e.to_string())?;
    Ok((HALF_TOPIC.to_owned(), 0, props))
}

/// The sys flag a half message is stored with: its transaction bits cleared.
pub fn half_sys_flag(sys_flag: i32) -> i32 {
    (sys_flag & !TRANSACTION_MASK) | TRANSACTION_NOT_TYPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_message_becomes_a_half_message_with_its_destination() {
        assert_eq!(kind(0, "TRAN_MSG\u{1}true\u{2}"), SendKind::Half);
        assert_eq!(kind(TRANSACTION_PREPARED, ""), SendKind::Half);
        assert_eq!(kind(TRANSACTION_ROLLBACK, ""), SendKind::Rollback);
        assert_eq!(kind(0x8, ""), SendKind::Plain, "committed: delivered as is");
        assert_eq!(kind(0, "TRAN_MSG\u{1}false\u{2}"), SendKind::Plain);
        let (t, q, p) = into_half("T", 3, "pg", "TRAN_MSG\u{1}true\u{2}").unwrap();
        assert_eq!((t.as_str(), q), (HALF_TOPIC, 0));
        assert_eq!(properties::get(&p, names::REAL_TOPIC), Some("T"));
        assert_eq!(properties::get(&p, names::REAL_QID), Some("3"));
        assert_eq!(properties::get(&p, names::PGROUP), Some("pg"));
        let (_, _, p) = into_half("T", 0, "other", "PGROUP\u{1}mine\u{2}").unwrap();
        assert_eq!(
            properties::get(&p, names::PGROUP),
            Some("mine"),
            "the client's group wins"
        );
        assert_eq!(half_sys_flag(TRANSACTION_PREPARED | 0x1), 0x1);
    }
}
