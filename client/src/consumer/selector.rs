//! What a consumer subscribes with: a tag expression (`*`, `a || b`) or an SQL92 selector over message
//! properties, which the broker evaluates (RocketMQ's `MessageSelector`).
//!
//! ```
//! use apogee_client::consumer::selector::MessageSelector;
//!
//! let tags: MessageSelector = "created || paid".into(); // a &str is a tag expression
//! assert_eq!(tags, MessageSelector::tag("created || paid"));
//! let sql = MessageSelector::sql("amount > 100 AND region IN ('eu', 'us')");
//! assert!(sql.check().is_ok());
//! assert!(MessageSelector::sql("amount >").check().is_err());
//! ```

use apogee_net::filter::{self, Selector, SelectorError};

/// How a subscription's expression is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpressionType {
    /// `*` or tags joined by `||`; filtered by tag hash on the broker and by name here.
    Tag,
    /// An SQL92 selector over properties; filtered on the broker only (needs `enablePropertyFilter`).
    Sql92,
}

/// A subscription's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSelector {
    pub kind: ExpressionType,
    pub expression: String,
}

impl MessageSelector {
    /// Every message (`*`).
    pub fn all() -> Self {
        Self::tag("*")
    }

    /// A tag expression: `*` or `a || b || c`.
    pub fn tag(expression: impl Into<String>) -> Self {
        Self {
            kind: ExpressionType::Tag,
            expression: expression.into(),
        }
    }

    /// An SQL92 selector, e.g. `a > 5 AND region IN ('eu','us')` (RocketMQ's grammar: see
    /// [`apogee_net::filter`]).
    pub fn sql(expression: impl Into<String>) -> Self {
        Self {
            kind: ExpressionType::Sql92,
            expression: expression.into(),
        }
    }

    /// The `expressionType` the broker is told.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ExpressionType::Tag => filter::EXPRESSION_TYPE_TAG,
            ExpressionType::Sql92 => filter::EXPRESSION_TYPE_SQL92,
        }
    }

    /// The tags a tag expression names; `None` for everything and for SQL92 (nothing to re-check here).
    pub fn tags(&self) -> Option<Vec<&str>> {
        let e = self.expression.trim();
        if self.kind == ExpressionType::Sql92
            || e.is_empty()
            || e.split("||").any(|t| t.trim() == "*")
        {
            return None;
        }
        Some(
            e.split("||")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// Parses an SQL92 selector here, as the broker will, so a bad one is found before subscribing.
    /// Tag expressions always pass.
    pub fn check(&self) -> Result<(), SelectorError> {
        match self.kind {
            ExpressionType::Tag => Ok(()),
            ExpressionType::Sql92 => Selector::parse(&self.expression).map(|_| ()),
        }
    }
}

impl From<&str> for MessageSelector {
    fn from(expression: &str) -> Self {
        Self::tag(expression)
    }
}

impl From<String> for MessageSelector {
    fn from(expression: String) -> Self {
        Self::tag(expression)
    }
}

impl From<&String> for MessageSelector {
    fn from(expression: &String) -> Self {
        Self::tag(expression.as_str())
    }
}
