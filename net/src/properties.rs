//! The message properties string: `name \x01 value \x02 name \x01 value \x02 …`, stored with an i16 length.

use crate::error::{ProtocolError, Result};
use crate::limits::PROPERTIES_SIZE_MAX_BYTES;

pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
pub const PROPERTY_SEPARATOR: char = '\u{2}';

/// Well-known property names.
pub mod names {
    pub const KEYS: &str = "KEYS";
    pub const TAGS: &str = "TAGS";
    pub const WAIT: &str = "WAIT";
    pub const DELAY: &str = "DELAY";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QID: &str = "REAL_QID";
    pub const TRAN_MSG: &str = "TRAN_MSG";
    /// Transactions: how often the broker has checked a half message back with its producer group.
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    /// Transactions: seconds a half message is left alone before its first check-back (instead of the
    /// broker's `transactionTimeOut`).
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Transactions: the half queue offset of a half message, as RocketMQ stamps messages it moves.
    pub const TRAN_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    pub const PGROUP: &str = "PGROUP";
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    /// The first message id of a message sent back for retry (the offset id of the first delivery).
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    /// RocketMQ 5's gRPC view of a dead letter: the topic and id the message was consumed from.
    pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
    pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
    /// RocketMQ 5 timer messages: an absolute delivery time, or a delay from now.
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// Set by the broker on a timer message: its slot time (the delivery time rounded down to
    /// `timerPrecisionMs`). A message that already has it is not a timer message again.
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
    /// Set on delivery: when the timer index took the message in, and when it delivered it (ms).
    pub const TIMER_ENQUEUE_MS: &str = "TIMER_ENQUEUE_MS";
    pub const TIMER_DEQUEUE_MS: &str = "TIMER_DEQUEUE_MS";
    /// RocketMQ's timer deletion marker: a message carrying it cancels a timer (not supported here).
    pub const TIMER_DEL_UNIQKEY: &str = "TIMER_DEL_UNIQKEY";
    /// The cluster of the broker that stored a message; RocketMQ's broker adds it to every message sent,
    /// and a responder learns from it where to send a reply.
    pub const CLUSTER: &str = "CLUSTER";
    /// Request-reply: the requesting client's id, the request's correlation id and time to live (ms).
    pub const REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    pub const MESSAGE_TTL: &str = "TTL";
    /// `reply` on a reply message.
    pub const MSG_TYPE: &str = "MSG_TYPE";
    /// When the broker pushed a reply to the requester, and when the requester received it (ms).
    pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
    pub const REPLY_MESSAGE_ARRIVE_TIME: &str = "ARRIVE_TIME";
}

/// `MSG_TYPE` of a reply message (RocketMQ `MixAll.REPLY_MESSAGE_FLAG`).
pub const REPLY_MESSAGE_FLAG: &str = "reply";

/// The topic replies of a cluster go through: `<cluster>_REPLY_TOPIC` (RocketMQ `MixAll.getReplyTopic`).
pub fn reply_topic(cluster: &str) -> String {
    format!("{cluster}_REPLY_TOPIC")
}

/// Parses a properties string into name/value pairs, in order. Pieces without a separator are skipped, as
/// RocketMQ's `string2messageProperties` does.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.split(PROPERTY_SEPARATOR)
        .filter_map(|item| item.split_once(NAME_VALUE_SEPARATOR))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Finds one property's value without allocating.
pub fn get<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split(PROPERTY_SEPARATOR)
        .filter_map(|item| item.split_once(NAME_VALUE_SEPARATOR))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A properties string with `name` set to `value` (replaced where present, appended otherwise) and the
/// names in `remove` dropped; the order of the others is kept.
pub fn with_changes(text: &str, set: &[(&str, &str)], remove: &[&str]) -> Result<String> {
    let mut pairs = parse(text);
    pairs.retain(|(k, _)| !remove.contains(&k.as_str()));
    for (name, value) in set {
        match pairs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = (*value).to_owned(),
            None => pairs.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    encode(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Writes name/value pairs as a properties string, checking the stored-length limit.
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<String> {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(k);
        out.push(NAME_VALUE_SEPARATOR);
        out.push_str(v);
        out.push(PROPERTY_SEPARATOR);
    }
    check_size(out.len())?;
    Ok(out)
}

/// Properties longer than the i16 length field can say are refused.
pub fn check_size(size: usize) -> Result<()> {
    if size > PROPERTIES_SIZE_MAX_BYTES {
        return Err(ProtocolError::PropertiesTooLarge {
            size,
            max: PROPERTIES_SIZE_MAX_BYTES,
        });
    }
    Ok(())
}

/// Java's `String.hashCode()` of a tag, widened to i64 as the consume queue stores it.
///
/// Java hashes UTF-16 code units, so characters outside the BMP count as two.
pub fn tag_hash(tag: &str) -> i64 {
    let mut h: i32 = 0;
    for unit in tag.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    h as i64
}

/// The tag hash a stored message gets: of its TAGS property, or 0 without one.
pub fn tag_hash_of(properties: &str) -> i64 {
    get(properties, names::TAGS).map_or(0, tag_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_hash_matches_java_string_hash_code() {
        // Values of "...".hashCode() in Java.
        assert_eq!(tag_hash(""), 0);
        assert_eq!(tag_hash("TagA"), 2598919);
        assert_eq!(tag_hash("hello world"), 1794106052);
        assert_eq!(tag_hash("a-very-long-tag-name-that-overflows"), {
            let mut h: i32 = 0;
            for b in "a-very-long-tag-name-that-overflows".bytes() {
                h = h.wrapping_mul(31).wrapping_add(b as i32);
            }
            h as i64
        });
    }

    #[test]
    fn properties_round_trip_and_lookup() {
        let text = encode([("TAGS", "TagA"), ("KEYS", "k1 k2")]).unwrap();
        assert_eq!(text, "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}");
        assert_eq!(get(&text, "KEYS"), Some("k1 k2"));
        assert_eq!(parse(&text).len(), 2);
        assert_eq!(tag_hash_of(&text), 2598919);
        let changed = with_changes(&text, &[("KEYS", "k3"), ("DELAY", "3")], &["TAGS"]).unwrap();
        assert_eq!(changed, "KEYS\u{1}k3\u{2}DELAY\u{1}3\u{2}");
    }
}
