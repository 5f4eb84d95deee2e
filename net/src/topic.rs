//! Topic name rules (RocketMQ's `TopicValidator`): `^[%|a-zA-Z0-9_-]+$`, at most 127 characters.

use crate::limits::TOPIC_NAME_MAX_CHARS;

/// The default topic that auto-creation copies its settings from.
pub const DEFAULT_TOPIC: &str = "TBW102";

/// The message trace topic when none is configured (RocketMQ's `TopicValidator.RMQ_SYS_TRACE_TOPIC`):
/// the broker's `msgTraceTopicName` default and the client's trace topic by default.
pub const TRACE_TOPIC_DEFAULT: &str = "RMQ_SYS_TRACE_TOPIC";

/// Why a topic name is refused, as a sentence for a response remark.
pub fn validate(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("the topic name is empty".into());
    }
    if topic.len() > TOPIC_NAME_MAX_CHARS {
        return Err(format!(
            "the topic name is {} characters, the limit is {TOPIC_NAME_MAX_CHARS}",
            topic.len()
        ));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(format!(
            "the topic name `{topic}` contains `{bad}`; allowed are letters, digits, %, |, _ and -"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn topic_rules_follow_rocketmq() {
        assert!(super::validate("Topic_A-1%x|y").is_ok());
        assert!(super::validate("").is_err());
        assert!(super::validate("a b").is_err());
        assert!(super::validate("a.b").is_err());
        assert!(super::validate(&"x".repeat(128)).is_err());
        assert!(super::validate(&"x".repeat(127)).is_ok());
    }
}
