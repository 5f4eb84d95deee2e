//! The send-side rule for timer messages (RocketMQ 5's `HookUtils.checkIfTimerMessage` and
//! `transformTimerMessage`): which messages are timers, what is refused, and the rewrite that moves a timer
//! into the timer topic (`apogee_engine::delay::TIMER_TOPIC`). Plain functions over the properties and the
//! clock; `send.rs` applies them.
//!
//! - A message is a timer when it has TIMER_DELAY_SEC, TIMER_DELAY_MS or TIMER_DELIVER_MS, no delay level
//!   above 0 (the level wins and the timer properties are dropped: `send.rs` does that) and no
//!   TIMER_OUT_MS (which marks a message the timer index already handled).
//! - The delivery time is read from TIMER_DELAY_SEC (now + s), else TIMER_DELAY_MS (now + ms), else
//!   TIMER_DELIVER_MS (epoch ms), in that order; only the one read must be a number.
//! - A delivery time not after now is stored as it is, in its own topic, visible at once (RocketMQ's rule;
//!   the timer properties stay on the message).
//! - Further ahead than `timerMaxDelaySec`: MESSAGE_ILLEGAL with RocketMQ's remark. With
//!   `timerWheelEnable=false` every timer is refused with SYSTEM_ERROR, as RocketMQ does.
//! - A timer cancellation (TIMER_DEL_UNIQKEY, sent by RocketMQ 5's proxy to recall a timer) is refused:
//!   the index cannot cancel yet, and delivering the marker as a message would be wrong.
//! - Otherwise TIMER_OUT_MS = the delivery time rounded down to `timerPrecisionMs` (one precision earlier
//!   when it is an exact multiple), REAL_TOPIC / REAL_QID keep the destination, and the message is stored
//!   in the timer topic, queue 0. It is delivered at TIMER_OUT_MS + precision: the first multiple of the
//!   precision at or after the asked time, never before it.

use apogee_net::properties::{self, names};

/// The timer settings of `broker.conf` the rule needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub enabled: bool,
    pub max_delay_sec: u64,
    pub precision_ms: u64,
}

/// Why a timer message is refused; `send.rs` turns it into RocketMQ's code and remark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `timerWheelEnable=false` (SYSTEM_ERROR).
    NotEnabled,
    /// RocketMQ's WHEEL_TIMER_MSG_ILLEGAL (MESSAGE_ILLEGAL); the text says what was wrong.
    Illegal(String),
}

impl Refusal {
    /// RocketMQ's remark for the refusal, followed by what exactly was wrong.
    pub fn remark(&self, rules: &Rules) -> String {
        match self {
            Refusal::NotEnabled => format!(
                "accurate timer message is not enabled, timerWheelEnable is {}",
                rules.enabled
            ),
            Refusal::Illegal(why) => format!(
                "timer message illegal, the delay time should not be bigger than the max delay {}ms; or if set del msg, the delay time should be bigger than the current time ({why})",
                rules.max_delay_sec.saturating_mul(1000)
            ),
        }
    }
}

/// The names that make a message a timer message, in the order RocketMQ reads them.
pub const TIMER_PROPERTIES: [&str; 3] = [
    names::TIMER_DELAY_SEC,
    names::TIMER_DELAY_MS,
    names::TIMER_DELIVER_MS,
];

/// Where a message without a delay level is stored: `Ok(None)` as it is (not a timer, or one already
/// due), `Ok(Some(properties))` in the timer topic, queue 0 with these properties, or the refusal.
pub fn into_timer_topic(
    rules: &Rules,
    topic: &str,
    queue_id: i32,
    props: &str,
    now_ms: i64,
) -> Result<Option<String>, Refusal> {
    if properties::get(props, names::TIMER_OUT_MS).is_some() {
        return Ok(None);
    }
    // An empty value is no value: RocketMQ's properties parser drops `name\x01` pieces.
    let Some((name, text)) = TIMER_PROPERTIES.iter().find_map(|n| {
        properties::get(props, n)
            .filter(|v| !v.is_empty())
            .map(|v| (*n, v))
    }) else {
        return Ok(None);
    };
    if !rules.enabled {
        return Err(Refusal::NotEnabled);
    }
    let number: i64 = text
        .parse()
        .map_err(|_| Refusal::Illegal(format!("{name} `{text}` is not a whole number")))?;
    let too_far = || Refusal::Illegal(format!("{name} {text} is too far ahead"));
    let deliver_ms = match name {
        names::TIMER_DELAY_SEC => number
            .checked_mul(1000)
            .and_then(|ms| now_ms.checked_add(ms))
            .ok_or_else(too_far)?,
        names::TIMER_DELAY_MS => now_ms.checked_add(number).ok_or_else(too_far)?,
        _ => number,
    };
    if deliver_ms <= now_ms {
        if properties::get(props, names::TIMER_DEL_UNIQKEY).is_some() {
            return Err(Refusal::Illegal(format!(
                "a timer deletion ({}) must name a time after now",
                names::TIMER_DEL_UNIQKEY
            )));
        }
        return Ok(None);
    }
    if properties::get(props, names::TIMER_DEL_UNIQKEY).is_some() {
        // RocketMQ would store a deletion marker that cancels the timer with that key; Apogee's index
        // cannot cancel yet, and delivering the marker as a message would be wrong.
        return Err(Refusal::Illegal(format!(
            "timer cancellation ({}) is not supported by this broker",
            names::TIMER_DEL_UNIQKEY
        )));
    }
    let max_ms = rules.max_delay_sec.saturating_mul(1000);
    if (deliver_ms - now_ms) as u64 > max_ms {
        return Err(Refusal::Illegal(format!(
            "{name} {text} is due in {} ms",
            deliver_ms - now_ms
        )));
    }
    let out_ms = slot_time_ms(deliver_ms, rules.precision_ms);
    let props = properties::with_changes(
        props,
        &[
            (names::TIMER_OUT_MS, &out_ms.to_string()),
            (names::REAL_TOPIC, topic),
            (names::REAL_QID, &queue_id.to_string()),
        ],
        &[],
    )
    .map_err(|e| Refusal::Illegal(e.to_string()))?;
    Ok(Some(props))
}

/// RocketMQ's rounding: the slot a delivery time falls in, whose end (slot + precision) is the first
/// multiple of the precision at or after it.
pub fn slot_time_ms(deliver_ms: i64, precision_ms: u64) -> i64 {
    let p = precision_ms.max(1) as i64;
    if deliver_ms.rem_euclid(p) == 0 {
        deliver_ms - p
    } else {
        deliver_ms.div_euclid(p) * p
    }
}

/// The queue a timer message is stored in.
pub const TIMER_QUEUE_ID: i32 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        enabled: true,
        max_delay_sec: 10,
        precision_ms: 100,
    };
    const NOW: i64 = 1_000_050;

    fn props(pairs: &[(&str, &str)]) -> String {
        properties::encode(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn each_timer_property_moves_the_message_to_the_timer_topic() {
        for (name, value, due) in [
            (names::TIMER_DELAY_SEC, "2", NOW + 2_000),
            (names::TIMER_DELAY_MS, "250", NOW + 250),
            (names::TIMER_DELIVER_MS, "1003000", 1_003_000),
        ] {
            let out = into_timer_topic(&RULES, "T", 3, &props(&[(name, value)]), NOW)
                .unwrap()
                .unwrap();
            let slot: i64 = properties::get(&out, names::TIMER_OUT_MS)
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                slot < due && slot + 100 >= due,
                "{name}: slot {slot} for {due}"
            );
            assert_eq!(slot % 100, 0);
            assert_eq!(properties::get(&out, names::REAL_TOPIC), Some("T"));
            assert_eq!(properties::get(&out, names::REAL_QID), Some("3"));
            assert_eq!(properties::get(&out, name), Some(value), "kept");
        }
    }

    #[test]
    fn seconds_win_over_milliseconds_and_milliseconds_over_the_delivery_time() {
        let p = props(&[
            (names::TIMER_DELAY_SEC, "1"),
            (names::TIMER_DELAY_MS, "x"),
            (names::TIMER_DELIVER_MS, "y"),
        ]);
        let out = into_timer_topic(&RULES, "T", 0, &p, NOW).unwrap().unwrap();
        assert_eq!(properties::get(&out, names::TIMER_OUT_MS), Some("1001000"));
        let p = props(&[(names::TIMER_DELAY_MS, "x"), (names::TIMER_DELIVER_MS, "5")]);
        assert!(matches!(
            into_timer_topic(&RULES, "T", 0, &p, NOW),
            Err(Refusal::Illegal(w)) if w.contains("TIMER_DELAY_MS `x`")
        ));
    }

    #[test]
    fn due_or_past_times_are_stored_as_they_are() {
        for (name, value) in [
            (names::TIMER_DELIVER_MS, "5"),
            (names::TIMER_DELIVER_MS, "1000050"),
            (names::TIMER_DELAY_SEC, "-3"),
            (names::TIMER_DELAY_MS, "0"),
        ] {
            assert_eq!(
                into_timer_topic(&RULES, "T", 0, &props(&[(name, value)]), NOW),
                Ok(None),
                "{name}={value}"
            );
        }
        let del = props(&[
            (names::TIMER_DELIVER_MS, "5"),
            (names::TIMER_DEL_UNIQKEY, "k"),
        ]);
        assert!(into_timer_topic(&RULES, "T", 0, &del, NOW).is_err());
    }

    #[test]
    fn bad_values_and_too_long_delays_are_refused_with_rocketmq_remarks() {
        for (name, value) in [
            (names::TIMER_DELAY_SEC, "11"),
            (names::TIMER_DELAY_MS, "10001"),
            (names::TIMER_DELIVER_MS, "99999999999999"),
            (names::TIMER_DELAY_SEC, "9223372036854775807"),
            (names::TIMER_DELAY_SEC, "ten"),
            (names::TIMER_DELIVER_MS, " 5"),
        ] {
            let r = into_timer_topic(&RULES, "T", 0, &props(&[(name, value)]), NOW);
            let Err(refusal) = r else {
                panic!("{name}={value} accepted: {r:?}")
            };
            let remark = refusal.remark(&RULES);
            assert!(
                remark.starts_with("timer message illegal, the delay time should not be bigger than the max delay 10000ms")
                    && remark.contains(name),
                "{remark}"
            );
        }
        // Exactly the maximum is allowed.
        let p = props(&[(names::TIMER_DELAY_SEC, "10")]);
        assert!(into_timer_topic(&RULES, "T", 0, &p, NOW).unwrap().is_some());
        let off = Rules {
            enabled: false,
            ..RULES
        };
        let r = into_timer_topic(&off, "T", 0, &p, NOW).unwrap_err();
        assert_eq!(
            r.remark(&off),
            "accurate timer message is not enabled, timerWheelEnable is false"
        );
    }

    #[test]
    fn handled_and_plain_messages_are_not_timers() {
        let empty = props(&[(names::TIMER_DELAY_MS, "")]);
        assert_eq!(into_timer_topic(&RULES, "T", 0, &empty, NOW), Ok(None));
        let handled = props(&[(names::TIMER_DELAY_SEC, "ten"), (names::TIMER_OUT_MS, "1")]);
        assert_eq!(into_timer_topic(&RULES, "T", 0, &handled, NOW), Ok(None));
        assert_eq!(
            into_timer_topic(&RULES, "T", 0, &props(&[("TAGS", "a")]), NOW),
            Ok(None)
        );
    }

    #[test]
    fn slots_end_at_the_first_precision_multiple_at_or_after_the_time() {
        assert_eq!(slot_time_ms(1_050, 100), 1_000);
        assert_eq!(slot_time_ms(1_100, 100), 1_000);
        assert_eq!(slot_time_ms(1_101, 1000), 1_000);
        assert_eq!(slot_time_ms(2_000, 1000), 1_000);
    }
}
