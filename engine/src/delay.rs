//! Delay levels (RocketMQ's `messageDelayLevel`) and the consume queue tag code of delayed messages.
//!
//! A message sent with a delay level waits in [`SCHEDULE_TOPIC`], queue `level - 1`. For those entries the
//! consume queue's tag hash slot holds the delivery time (store time + the level's delay), as RocketMQ's
//! `CommitLog` does, so that the broker's scheduler decides from the consume queue alone whether an entry is
//! due, without reading the commit log. The engine computes it on append and again in recovery, from the
//! same table, so both agree.
//!
//! Timer messages (RocketMQ 5's TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS) wait in
//! [`TIMER_TOPIC`], queue 0; the broker has already written their slot time into TIMER_OUT_MS, and the
//! engine copies it into the tag hash slot of their consume queue entries, so the broker's timer index is
//! built from consume queue entries alone too. (RocketMQ keeps the tag hash there and reads each record;
//! the slot is ours to use, as nothing filters by tag in a system topic.)

use apogee_net::properties::{self, names};

/// The system topic delayed messages wait in (RocketMQ's `RMQ_SYS_SCHEDULE_TOPIC`).
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// The system topic timer messages wait in (RocketMQ's `TimerMessageStore.TIMER_TOPIC`).
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";
/// RocketMQ's default `messageDelayLevel`.
pub const MESSAGE_DELAY_LEVEL_DEFAULT: &str =
    "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
/// Levels a table may have at most (each is a consume queue of the schedule topic).
pub const DELAY_LEVELS_MAX: usize = 64;
/// Delay of a level missing from the table (RocketMQ's `computeDeliverTimestamp` fallback).
pub const UNKNOWN_LEVEL_DELAY_MS: u64 = 1_000;

/// Parses `messageDelayLevel`: space-separated durations with RocketMQ's units `s`, `m`, `h`, `d`; level `i`
/// (from 1) is the `i`-th. The error says which item is wrong.
pub fn parse_levels(text: &str) -> Result<Vec<u64>, String> {
    let mut levels = Vec::new();
    for item in text.split(' ').filter(|s| !s.is_empty()) {
        let unit_ms: u64 = match item.chars().last() {
            Some('s') => 1_000,
            Some('m') => 60_000,
            Some('h') => 3_600_000,
            Some('d') => 86_400_000,
            _ => return Err(format!("`{item}` does not end in a unit (s, m, h or d)")),
        };
        let number: u64 = item[..item.len() - 1]
            .parse()
            .map_err(|_| format!("`{item}` is not a whole number followed by s, m, h or d"))?;
        let ms = number
            .checked_mul(unit_ms)
            .ok_or_else(|| format!("`{item}` is too long a delay"))?;
        levels.push(ms);
    }
    if levels.is_empty() {
        return Err("no delay level given".into());
    }
    if levels.len() > DELAY_LEVELS_MAX {
        return Err(format!(
            "{} levels, at most {DELAY_LEVELS_MAX} are allowed",
            levels.len()
        ));
    }
    Ok(levels)
}

/// The delay of `level` (from 1) in `levels`.
pub fn level_delay_ms(levels: &[u64], level: i32) -> Option<u64> {
    usize::try_from(level)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|i| levels.get(i))
        .copied()
}

/// When a message stored at `store_timestamp` with `level` is due.
pub fn deliver_timestamp(levels: &[u64], level: i32, store_timestamp: i64) -> i64 {
    let delay = level_delay_ms(levels, level).unwrap_or(UNKNOWN_LEVEL_DELAY_MS);
    store_timestamp.saturating_add(delay as i64)
}

/// The consume queue tag code of a record: its delivery time in the schedule topic, its TIMER_OUT_MS in
/// the timer topic (0 when missing or not a number: the broker then finds it due at once and names what is
/// wrong with it), the tag hash elsewhere.
pub fn cq_tag_code(levels: &[u64], topic: &str, props: &str, store_timestamp: i64) -> i64 {
    if topic == TIMER_TOPIC {
        return properties::get(props, names::TIMER_OUT_MS)
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
    }
    if topic == SCHEDULE_TOPIC {
        let level = properties::get(props, names::DELAY)
            .and_then(|d| d.trim().parse::<i32>().ok())
            .unwrap_or(0)
            .min(levels.len() as i32);
        if level > 0 {
            return deliver_timestamp(levels, level, store_timestamp);
        }
    }
    properties::tag_hash_of(props)
}

/// [`cq_tag_code`] for an append that has found the message's TAGS already (one scan of the properties
/// serves the tag and the key index): only the two system topics look at other properties.
pub fn cq_tag_code_with_tags(
    levels: &[u64],
    topic: &str,
    props: &str,
    tags: Option<&str>,
    store_timestamp: i64,
) -> i64 {
    if topic == TIMER_TOPIC || topic == SCHEDULE_TOPIC {
        return cq_tag_code(levels, topic, props, store_timestamp);
    }
    tags.map_or(0, properties::tag_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_with_rocketmq_units_and_bad_items_are_named() {
        let l = parse_levels(MESSAGE_DELAY_LEVEL_DEFAULT).unwrap();
        assert_eq!(l.len(), 18);
        assert_eq!(
            (l[0], l[4], l[16], l[17]),
            (1_000, 60_000, 3_600_000, 7_200_000)
        );
        assert_eq!(parse_levels("1s  2d").unwrap(), vec![1_000, 172_800_000]);
        assert!(parse_levels("1s 5x").unwrap_err().contains("5x"));
        assert!(parse_levels("s").unwrap_err().contains("`s`"));
        assert!(parse_levels("").is_err());
    }

    #[test]
    fn schedule_entries_carry_their_delivery_time() {
        let l = parse_levels("1s 5s").unwrap();
        let props = "DELAY\u{1}2\u{2}TAGS\u{1}a\u{2}";
        assert_eq!(cq_tag_code(&l, SCHEDULE_TOPIC, props, 100), 5_100);
        // Above the table: the last level, as RocketMQ clamps.
        assert_eq!(
            cq_tag_code(&l, SCHEDULE_TOPIC, "DELAY\u{1}9\u{2}", 100),
            5_100
        );
        // Elsewhere the tag hash.
        assert_eq!(cq_tag_code(&l, "T", props, 100), properties::tag_hash("a"));
        assert_eq!(deliver_timestamp(&l, 7, 100), 1_100);
    }

    #[test]
    fn timer_entries_carry_their_slot_time() {
        let l = parse_levels("1s").unwrap();
        let props = "TIMER_OUT_MS\u{1}1700000000100\u{2}TAGS\u{1}a\u{2}";
        assert_eq!(cq_tag_code(&l, TIMER_TOPIC, props, 5), 1_700_000_000_100);
        assert_eq!(
            cq_tag_code(&l, TIMER_TOPIC, "TIMER_OUT_MS\u{1}x\u{2}", 5),
            0
        );
        assert_eq!(cq_tag_code(&l, "T", props, 5), properties::tag_hash("a"));
    }

    #[test]
    fn the_tag_code_from_found_tags_agrees_with_the_full_lookup() {
        let l = parse_levels("1s 5s").unwrap();
        for (topic, props) in [
            ("T", "TAGS\u{1}a\u{2}"),
            ("T", "WAIT\u{1}true\u{2}"),
            (SCHEDULE_TOPIC, "DELAY\u{1}2\u{2}TAGS\u{1}a\u{2}"),
            (SCHEDULE_TOPIC, "TAGS\u{1}a\u{2}"),
            (
                TIMER_TOPIC,
                "TIMER_OUT_MS\u{1}1700000000100\u{2}TAGS\u{1}a\u{2}",
            ),
        ] {
            let tags = properties::get(props, names::TAGS);
            assert_eq!(
                cq_tag_code_with_tags(&l, topic, props, tags, 100),
                cq_tag_code(&l, topic, props, 100),
                "{topic} {props:?}"
            );
        }
    }
}
