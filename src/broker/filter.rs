//! SQL92 subscriptions on the broker: compiled selectors per consumer group and topic, and
//! CHECK_CLIENT_CONFIG (46), which a Java push consumer sends at start to have its selector checked.
//!
//! A selector is compiled once per group, topic and subscription version (RocketMQ's
//! `ConsumerFilterManager`): a heartbeat registers it, a pull that carries its subscription compiles
//! it when it differs from what is held, and every other pull reuses it. The table is bounded; past
//! [`FILTERS_MAX`] an arbitrary entry is forgotten and compiled again when next needed.
//!
//! With `enablePropertyFilter=false` (RocketMQ's default) every SQL92 subscription is refused with
//! RocketMQ's answer: SYSTEM_ERROR, "The broker does not support consumer to filter message by SQL92".

use std::collections::HashMap;
use std::rc::Rc;

use apogee_net::body::from_json;
use apogee_net::body::heartbeat::SubscriptionData;
use apogee_net::codes::ResponseCode;
use apogee_net::filter::{self, Selector, SelectorError};
use apogee_net::RemotingCommand;
use serde::Deserialize;

use super::Broker;

/// Compiled selectors one shard keeps at most.
pub const FILTERS_MAX: usize = 10_000;

struct Compiled {
    version: i64,
    expression: String,
    selector: Rc<Selector>,
}

/// (group, topic) → the compiled selector of the group's SQL92 subscription to the topic.
#[derive(Default)]
pub struct FilterTable {
    compiled: HashMap<(String, String), Compiled>,
    /// Compilations so far: how often "once per subscription version" actually happened.
    pub compilations: u64,
}

impl FilterTable {
    /// The selector for `expression`, compiled now unless the one held for the group and topic is the
    /// same text; a newer `version` replaces an older entry, an older one never replaces a newer.
    pub fn get_or_compile(
        &mut self,
        group: &str,
        topic: &str,
        expression: &str,
        version: i64,
    ) -> Result<Rc<Selector>, SelectorError> {
        let key = (group.to_owned(), topic.to_owned());
        if let Some(c) = self.compiled.get_mut(&key) {
            if c.expression == expression {
                c.version = c.version.max(version);
                return Ok(c.selector.clone());
            }
            if c.version > version {
                // A stale subscription (an old heartbeat or pull): compile it for this pull only.
                self.compilations += 1;
                return Selector::parse(expression).map(Rc::new);
            }
        }
        self.compilations += 1;
        let selector = Rc::new(Selector::parse(expression)?);
        if self.compiled.len() >= FILTERS_MAX && !self.compiled.contains_key(&key) {
            if let Some(k) = self.compiled.keys().next().cloned() {
                self.compiled.remove(&k);
            }
        }
        self.compiled.insert(
            key,
            Compiled {
                version,
                expression: expression.to_owned(),
                selector: selector.clone(),
            },
        );
        Ok(selector)
    }

    /// The selector held for a group and topic, with its version.
    pub fn get(&self, group: &str, topic: &str) -> Option<(i64, Rc<Selector>)> {
        self.compiled
            .get(&(group.to_owned(), topic.to_owned()))
            .map(|c| (c.version, c.selector.clone()))
    }

    /// Forgets a group's selector for a topic (its subscription failed to compile or went back to tags).
    pub fn remove(&mut self, group: &str, topic: &str) {
        self.compiled.remove(&(group.to_owned(), topic.to_owned()));
    }
}

/// RocketMQ's refusal of an SQL92 subscription on a broker without `enablePropertyFilter`.
pub fn not_supported(req: &RemotingCommand, expression_type: &str) -> RemotingCommand {
    req.error_to(
        ResponseCode::SystemError,
        format!(
            "The broker does not support consumer to filter message by {expression_type} \
             (set enablePropertyFilter=true in broker.conf to allow it)"
        ),
    )
}

/// A non-tag expression type is accepted when it is SQL92 and property filtering is on.
pub fn check_type(
    req: &RemotingCommand,
    kind: Option<&str>,
    enabled: bool,
) -> Result<(), Box<RemotingCommand>> {
    let kind = kind.unwrap_or_default();
    if kind != filter::EXPRESSION_TYPE_SQL92 {
        return Err(Box::new(req.error_to(
            ResponseCode::SubscriptionParseFailed,
            format!("expression type `{kind}` is not supported; TAG and SQL92 are"),
        )));
    }
    if !enabled {
        return Err(Box::new(not_supported(req, kind)));
    }
    Ok(())
}

/// Registers the SQL92 subscriptions of a heartbeat, as RocketMQ's ConsumerFilterManager does on a
/// consumer's registration. A selector that does not compile is logged and not held, so the group's
/// pulls without a subscription get FILTER_DATA_NOT_EXIST, as in RocketMQ.
pub fn register(broker: &Broker, group: &str, subs: &[SubscriptionData]) {
    let mut filters = broker.filters.borrow_mut();
    for s in subs {
        if filter::is_tag_type(s.expression_type.as_deref()) {
            filters.remove(group, &s.topic);
            continue;
        }
        if !broker.config.enable_property_filter {
            continue;
        }
        if let Err(e) = filters.get_or_compile(group, &s.topic, &s.sub_string, s.sub_version) {
            tracing::warn!(shard = broker.shard, group, topic = %s.topic, error = %e, "SQL92 subscription not registered");
            filters.remove(group, &s.topic);
        }
    }
}

/// CHECK_CLIENT_CONFIG's body (RocketMQ's `CheckClientRequestBody`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckClientRequestBody {
    #[serde(default)]
    #[allow(dead_code)]
    client_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    group: Option<String>,
    #[serde(default)]
    subscription_data: Option<SubscriptionData>,
}

/// CHECK_CLIENT_CONFIG: a tag subscription is fine; an SQL92 one is refused when property filtering is
/// off, and answered SUBSCRIPTION_PARSE_FAILED with the parser's message when it does not compile.
/// Nothing is registered: the heartbeat does that.
pub fn check_client_config(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let body: CheckClientRequestBody = match from_json(&req.body) {
        Ok(b) => b,
        Err(e) => {
            return req.error_to(
                ResponseCode::SystemError,
                format!("bad CHECK_CLIENT_CONFIG body: {e}"),
            )
        }
    };
    if let Some(s) = body.subscription_data {
        let kind = s.expression_type.as_deref();
        if !filter::is_tag_type(kind) {
            if let Err(refusal) = check_type(req, kind, broker.config.enable_property_filter) {
                return *refusal;
            }
            if let Err(e) = Selector::parse(&s.sub_string) {
                return req.error_to(ResponseCode::SubscriptionParseFailed, e.to_string());
            }
        }
    }
    req.response_to(ResponseCode::Success, None)
}

#[cfg(test)]
mod tests {
    use super::FilterTable;

    #[test]
    fn a_selector_is_compiled_once_per_subscription_version() {
        let mut t = FilterTable::default();
        let a = t.get_or_compile("g", "T", "a > 1", 1).unwrap();
        let b = t.get_or_compile("g", "T", "a > 1", 1).unwrap();
        assert!(std::rc::Rc::ptr_eq(&a, &b));
        assert_eq!(t.compilations, 1);
        t.get_or_compile("g", "T", "a > 2", 2).unwrap();
        assert_eq!(t.compilations, 2);
        // An older version does not replace the newer one.
        t.get_or_compile("g", "T", "a > 1", 1).unwrap();
        let (version, held) = t.get("g", "T").unwrap();
        assert_eq!(version, 2);
        assert_eq!(held.expr().to_string(), "(a > 2)");
        assert!(t.get_or_compile("g", "T", "a >", 3).is_err());
        assert_eq!(
            t.get("g", "T").unwrap().0,
            2,
            "a bad selector replaces nothing"
        );
    }
}
