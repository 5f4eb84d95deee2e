//! SQL92 message selectors, as RocketMQ's `filter` module defines them: a parser and an evaluator over a
//! message's properties, shared by the broker (which filters on the pull path) and the client (which can
//! check a selector before it subscribes).
//!
//! # Grammar
//!
//! Exactly what RocketMQ's `SelectorParser.jj` accepts (ActiveMQ's JMS selector without LIKE, arithmetic,
//! hex and octal numbers). Keywords are case-insensitive; `--` line comments and `/* */` comments are
//! skipped.
//!
//! ```text
//! selector   := or_expr EOF                                  (must be boolean)
//! or_expr    := and_expr ( OR and_expr )*
//! and_expr   := equality ( AND equality )*
//! equality   := comparison ( '=' comparison | '<>' comparison | IS NULL | IS NOT NULL )*
//! comparison := unary ( ('>' | '>=' | '<' | '<=') unary
//!                     | [NOT] BETWEEN unary AND unary
//!                     | [NOT] IN '(' string ( ',' string )* ')' )*
//! unary      := '+' unary | '-' unary | NOT unary | primary
//! primary    := literal | name | '(' or_expr ')'
//! literal    := string | decimal | float | TRUE | FALSE | NULL
//! decimal    := '0' | [1-9][0-9]* [lL]?                      (a Java long; an int when it fits)
//! float      := [0-9]+ '.' [0-9]* exp? | '.' [0-9]+ exp? | [0-9]+ exp ;  exp := [eE] [+-]? [0-9]+
//! string     := '\'' ( '\'\'' | any but '\'' )* '\''
//! name       := [a-zA-Z_$] [a-zA-Z0-9_$]*                     (a property, `TAGS` included)
//! ```
//!
//! The checks RocketMQ makes while parsing are made here too, so a selector it refuses is refused: `>`
//! and friends take only numbers, properties and negations; `=` never takes the NULL literal; `IN` needs a
//! property on its left; `BETWEEN` with literal bounds needs low ≤ high; a bare property as a condition is
//! cast to a boolean (and a property, being a string, is never a boolean); a non-boolean selector such as
//! `5` is refused. `NOT` binds tighter than comparisons, as in RocketMQ: `NOT a > 5` is refused, write
//! `NOT (a > 5)`.
//!
//! # Semantics
//!
//! Three-valued, as RocketMQ's: a comparison with a missing property is unknown (null), `NOT unknown` is
//! unknown, `AND`/`OR` follow Kleene's tables, and a message matches only when the selector is true.
//! A property is compared by converting it to the other side's type: with an integer literal it must be
//! an integer (`Integer.valueOf`), with a float literal a number (`Double.valueOf`), two properties are
//! ordered as doubles; a value that does not convert makes the whole selector false for that message
//! (RocketMQ's filter catches the exception and drops the message). See [`eval`] for the details.
//!
//! ```
//! use apogee_net::filter::Selector;
//! use apogee_net::properties;
//!
//! let s = Selector::parse("a > 5 AND region IN ('eu', 'us')").unwrap();
//! let props = properties::encode([("a", "7"), ("region", "eu")]).unwrap();
//! assert!(s.matches(&props));
//! assert!(!s.matches(&properties::encode([("region", "eu")]).unwrap())); // a is missing: unknown
//! assert!(Selector::parse("a > 'x'").is_err()); // strings are not ordered
//! ```

pub mod eval;
mod lexer;
mod parser;

use std::fmt;

pub use crate::limits::SELECTOR_EQUALITY_CHAIN_MAX;
use crate::limits::{SELECTOR_NESTING_MAX, SELECTOR_SIZE_MAX_BYTES};
use crate::properties::{NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};

/// The expression type of an SQL92 subscription (`expressionType` on the wire).
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";
/// The expression type of a tag subscription.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";

/// Whether an `expressionType` names a tag subscription: absent, empty and `TAG` do (RocketMQ's
/// `ExpressionType.isTagType`).
pub fn is_tag_type(expression_type: Option<&str>) -> bool {
    match expression_type {
        None => true,
        Some(t) => t.is_empty() || t == EXPRESSION_TYPE_TAG,
    }
}

/// Why a selector was refused: where (a byte offset into it) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid MessageSelector. {reason} (at byte {at})")]
pub struct SelectorError {
    pub at: usize,
    pub reason: String,
}

impl SelectorError {
    fn new(at: usize, reason: impl Into<String>) -> Self {
        Self {
            at,
            reason: reason.into(),
        }
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Null,
    Bool(bool),
    /// A decimal literal that fits a Java `int`.
    Int(i32),
    /// A decimal literal that needs a Java `long`.
    Long(i64),
    Double(f64),
    Str(String),
}

/// `>`, `>=`, `<`, `<=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed selector. `<>`, `IS [NOT] NULL` and `[NOT] BETWEEN` are written with the nodes RocketMQ
/// builds for them (`NOT =`, `= NULL`, two comparisons joined by AND/OR).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(Const),
    Prop(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    /// A property used as a condition.
    BoolCast(Box<Expr>),
    /// `a AND b AND c`, flat: evaluated left to right exactly as RocketMQ's left-deep tree of binary
    /// ANDs is (same short-circuit, same unknowns), but without one level of recursion per operand.
    And(Vec<Expr>),
    /// `a OR b OR c`, flat, likewise.
    Or(Vec<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    In {
        name: String,
        list: Vec<String>,
        not: bool,
    },
}

impl Expr {
    /// Whether RocketMQ builds a `BooleanExpression` for this node (TRUE, FALSE and NULL literals are).
    fn is_boolean(&self) -> bool {
        match self {
            Expr::Const(c) => matches!(c, Const::Bool(_) | Const::Null),
            Expr::Prop(_) | Expr::Neg(_) => false,
            _ => true,
        }
    }
}

impl fmt::Display for Const {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Const::Null => f.write_str("NULL"),
            Const::Bool(true) => f.write_str("TRUE"),
            Const::Bool(false) => f.write_str("FALSE"),
            Const::Int(i) => write!(f, "{i}"),
            Const::Long(l) => write!(f, "{l}"),
            Const::Double(d) => write!(f, "{d:?}"),
            Const::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(c) => write!(f, "{c}"),
            Expr::Prop(n) => f.write_str(n),
            Expr::Neg(e) => write!(f, "(- {e})"),
            Expr::Not(e) => write!(f, "(NOT {e})"),
            Expr::BoolCast(e) => write!(f, "{e}"),
            Expr::And(list) | Expr::Or(list) => {
                let op = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = list.iter().map(Expr::to_string).collect();
                write!(f, "({})", parts.join(op))
            }
            Expr::Eq(l, r) => write!(f, "({l} = {r})"),
            Expr::Cmp(op, l, r) => {
                let op = match op {
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                };
                write!(f, "({l} {op} {r})")
            }
            Expr::In { name, list, not } => {
                let list: Vec<String> = list
                    .iter()
                    .map(|s| Const::Str(s.clone()).to_string())
                    .collect();
                let not = if *not { "NOT " } else { "" };
                write!(f, "({name} {not}IN ({}))", list.join(", "))
            }
        }
    }
}

/// A compiled selector: parse once, evaluate per message.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    expr: Expr,
}

impl Selector {
    /// Parses `text`, or says where and why it is not a selector RocketMQ accepts.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        if text.len() > SELECTOR_SIZE_MAX_BYTES {
            return Err(SelectorError::new(
                SELECTOR_SIZE_MAX_BYTES,
                format!(
                    "the selector is {} bytes, the limit is {SELECTOR_SIZE_MAX_BYTES}",
                    text.len()
                ),
            ));
        }
        let tokens = lexer::tokenize(text)?;
        let nesting = nesting_depth(&tokens);
        if nesting > SELECTOR_NESTING_MAX {
            return Err(SelectorError::new(
                0,
                format!("the selector nests {nesting} deep, the limit is {SELECTOR_NESTING_MAX}"),
            ));
        }
        let expr = parser::Parser::new(tokens, text.len()).selector()?;
        Ok(Self { expr })
    }

    /// The parsed tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether a message with this properties string (`name \x01 value \x02 …`) matches. Nothing is
    /// allocated: values are looked up in the string itself.
    pub fn matches(&self, properties: &str) -> bool {
        self.matches_with(&|name| property(properties, name))
    }

    /// Whether a message whose properties `get` finds matches: only a true selector matches; unknown
    /// and evaluation errors do not.
    pub fn matches_with<'a>(&'a self, get: &dyn Fn(&str) -> Option<&'a str>) -> bool {
        matches!(eval::eval(&self.expr, get), Ok(eval::Value::Bool(true)))
    }
}

/// A property's value in a properties string; the last one when a name repeats, as RocketMQ's decoder
/// fills a map in order.
pub fn property<'a>(properties: &'a str, name: &str) -> Option<&'a str> {
    properties
        .rsplit(PROPERTY_SEPARATOR)
        .filter_map(|item| item.split_once(NAME_VALUE_SEPARATOR))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How deep parentheses and unary operators nest, which is how deep the parser recurses.
fn nesting_depth(tokens: &[lexer::Spanned]) -> usize {
    let (mut depth, mut max, mut unary_run) = (0usize, 0usize, 0usize);
    for (t, _) in tokens {
        match t {
            lexer::Token::LParen => depth += 1,
            lexer::Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if matches!(
            t,
            lexer::Token::Plus | lexer::Token::Minus | lexer::Token::Not
        ) {
            unary_run += 1;
        } else {
            unary_run = 0;
        }
        max = max.max(depth + unary_run);
    }
    max
}

#[cfg(test)]
mod tests;
