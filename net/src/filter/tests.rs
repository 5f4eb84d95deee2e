//! The selector against RocketMQ's rules: what parses, what is refused, how values compare, and a
//! property-based comparison with a reference evaluator written from the semantics alone.

use super::Selector;
use crate::properties;
use proptest::prelude::*;

fn props(pairs: &[(&str, &str)]) -> String {
    properties::encode(pairs.iter().copied()).unwrap()
}

fn matches(selector: &str, pairs: &[(&str, &str)]) -> bool {
    Selector::parse(selector)
        .unwrap_or_else(|e| panic!("`{selector}`: {e}"))
        .matches(&props(pairs))
}

#[test]
fn the_grammar_rocketmq_accepts_parses() {
    for s in [
        "a > 5 AND region IN ('eu','us')",
        "a BETWEEN 1 AND 10 OR b NOT BETWEEN 2.5 AND 3E2",
        "TAGS = 'TagA' OR TAGS IS NULL OR TAGS IS NOT NULL",
        "NOT (a <> 'x') and b not in ('y') or c >= -5L",
        "(a) AND TRUE AND NOT FALSE",
        "a = b AND -a < +b AND .5 <= c AND 5. >= d",
        "a = 1 = TRUE",
        "a IS NULL /* comment */ -- line\n",
        "NULL",
        "x = 2147483648",
    ] {
        if let Err(e) = Selector::parse(s) {
            panic!("`{s}` refused: {e}");
        }
    }
}

#[test]
fn what_rocketmq_refuses_is_refused_with_a_reason() {
    for (s, why) in [
        ("", "found the end"),
        ("a >", "found the end"),
        ("a > 'x'", "cannot be compared"),
        ("a > TRUE", "cannot be compared"),
        ("NOT a > 5", "cannot be compared"),
        ("a > 1 > 0", "cannot be compared"),
        ("a = NULL", "cannot be compared"),
        ("TRUE = 5", "cannot be compared with"),
        ("5", "will not result in a boolean"),
        ("'x'", "will not result in a boolean"),
        ("a AND 5", "will not result in a boolean"),
        ("-a IN ('x')", "Expected a property"),
        ("a IN (1, 2)", "a string literal"),
        ("a IN ()", "a string literal"),
        ("a BETWEEN 5 AND 1", "Illegal values of between"),
        ("a BETWEEN NULL AND 1", "can not be null"),
        ("a = 007", "unexpected"),
        ("a = 0x1F", "unexpected"),
        ("a = 9223372036854775808", "long range"),
        ("a = 0.0", "less than"),
        ("a = 1e999", "greater than"),
        ("a LIKE 'x%'", "unexpected"),
        ("a = 'open", "unterminated string"),
        ("a = 1 -- no line end", "line end"),
        ("a.b = 1", "unexpected"),
        ("a + b > 1", "unexpected"),
        ("(a = 1", "found the end"),
        ("a = 1)", "unexpected"),
    ] {
        match Selector::parse(s) {
            Ok(e) => panic!("`{s}` accepted as {:?}", e.expr()),
            Err(e) => assert!(
                e.to_string().contains(why),
                "`{s}`: `{e}` does not say `{why}`"
            ),
        }
    }
}

#[test]
fn deep_or_long_selectors_are_refused_before_they_are_parsed() {
    let deep = format!("{}a = 1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(Selector::parse(&deep)
        .unwrap_err()
        .to_string()
        .contains("limit"));
    let nots = format!("{}TRUE", "NOT ".repeat(1_000));
    assert!(Selector::parse(&nots).is_err());
    let long = vec!["a = 1"; 2_000].join(" AND ");
    assert!(Selector::parse(&long)
        .unwrap_err()
        .to_string()
        .contains("limit"));
}

#[test]
fn the_deepest_selectors_the_limits_allow_fit_a_small_stack() {
    use crate::limits::{SELECTOR_EQUALITY_CHAIN_MAX as CHAIN, SELECTOR_NESTING_MAX as NEST};
    // The longest OR chain is flat; the deepest tree nests parentheses to the limit, each level an
    // equality chain as long as allowed. Parsing, evaluating and dropping them recurse per level of the
    // tree: they must fit a thread's stack with room to spare (here 512 KiB, in a debug build).
    let unit = "a = 'x' OR ";
    let n = (crate::limits::SELECTOR_SIZE_MAX_BYTES - 8) / unit.len();
    let long = format!("{}a = 'y'", unit.repeat(n));
    let links = " <> a".repeat(CHAIN - 1);
    let mut deep = format!("NOT a{links}");
    for _ in 1..NEST - 1 {
        deep = format!("NOT ({deep}){links}");
    }
    let deep = format!("TRUE = ({deep})");
    for text in [long, deep] {
        assert!(text.len() <= crate::limits::SELECTOR_SIZE_MAX_BYTES);
        let shown = text.chars().take(60).collect::<String>();
        let worker = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let s = Selector::parse(&text).map_err(|e| e.to_string())?;
                Ok::<_, String>((s.matches(&props(&[("a", "y")])), s.matches(&props(&[]))))
            })
            .unwrap();
        let r = worker.join().expect("no stack overflow");
        assert!(r.is_ok(), "`{shown}…`: {r:?}");
    }
    let chain = ["a"; CHAIN + 2].join(" = ");
    assert!(Selector::parse(&chain)
        .unwrap_err()
        .to_string()
        .contains("in a row"));
}

#[test]
fn a_missing_property_is_unknown_not_an_error() {
    assert!(!matches("a > 5", &[]));
    assert!(!matches("NOT (a > 5)", &[]), "NOT unknown is unknown");
    assert!(matches("a > 5 OR b = 'x'", &[("b", "x")]));
    assert!(!matches("a > 5 AND b = 'x'", &[("b", "x")]));
    assert!(matches("a IS NULL", &[]));
    assert!(!matches("a IS NOT NULL", &[]));
    assert!(!matches("a IN ('x')", &[]) && !matches("a NOT IN ('x')", &[]));
    assert!(
        matches("a = b", &[]),
        "null = null is true in RocketMQ's equality"
    );
    assert!(!matches("a <> 'x'", &[]));
    // RocketMQ's equality is lopsided: a literal on the left against a missing property is false.
    assert!(!matches("a = 5", &[]) && !matches("5 = a", &[]));
    assert!(!matches("a <> 5", &[]) && matches("5 <> a", &[]));
}

#[test]
fn properties_convert_to_the_literal_type() {
    assert!(matches("a = 5", &[("a", "5")]));
    assert!(matches("a > 5", &[("a", "+6")]));
    assert!(
        matches("a >= 2147483648", &[("a", "2147483648")]),
        "a long literal"
    );
    assert!(
        !matches("a > 5", &[("a", "2147483648")]),
        "not an int: error"
    );
    assert!(!matches("a > 5", &[("a", "5.5")]), "not an int: error");
    assert!(matches("a > 5.0", &[("a", "5.5")]));
    assert!(matches("a < 1.5", &[("a", " 1 ")]), "Double.valueOf trims");
    assert!(
        matches("a > b", &[("a", "10"), ("b", "9.5")]),
        "two strings as doubles"
    );
    assert!(!matches("a > b", &[("a", "x"), ("b", "1")]));
    assert!(matches("a = TRUE", &[("a", "TRUE")]));
    assert!(
        !matches("a", &[("a", "true")]),
        "a property is never a boolean"
    );
    assert!(matches("NOT a", &[("a", "true")]));
    assert!(matches("TAGS IN ('TagA', 'TagB')", &[("TAGS", "TagB")]));
    assert!(matches("a = 'it''s'", &[("a", "it's")]));
}

#[test]
fn an_evaluation_error_makes_the_whole_selector_false() {
    // RocketMQ's filter catches the exception of `a > 5` and drops the message, whatever follows.
    assert!(!matches("a > 5 OR b = 'x'", &[("a", "abc"), ("b", "x")]));
    // Short-circuit comes first: the left side decides before the right one fails.
    assert!(matches("b = 'x' OR a > 5", &[("a", "abc"), ("b", "x")]));
    assert!(!matches("a = 5", &[("a", "abc")]));
    assert!(matches("a = 'abc' OR a = 5", &[("a", "abc")]));
}

#[test]
fn between_is_inclusive_and_not_between_is_its_complement_on_known_values() {
    for v in ["0", "1", "5", "10", "11"] {
        let inside = matches("a BETWEEN 1 AND 10", &[("a", v)]);
        let outside = matches("a NOT BETWEEN 1 AND 10", &[("a", v)]);
        assert_ne!(inside, outside, "a = {v}");
    }
    assert!(matches("a BETWEEN -1 AND 1", &[("a", "-1")]));
}

#[test]
fn the_last_of_repeated_properties_counts() {
    assert_eq!(super::property("a\u{1}1\u{2}a\u{1}2\u{2}", "a"), Some("2"));
    assert_eq!(super::property("a\u{1}1\u{2}", "b"), None);
}

// ---- Property-based: the broker's evaluator against a reference evaluator ----

/// A generated selector: always one RocketMQ accepts, so both sides evaluate it.
#[derive(Debug, Clone)]
enum R {
    CmpInt(&'static str, Op, i32, bool),
    CmpDouble(&'static str, Op, f64, bool),
    EqStr(&'static str, String, bool),
    In(&'static str, Vec<String>, bool),
    IsNull(&'static str, bool),
    Between(&'static str, i32, i32, bool),
    Lit(bool),
    Not(Box<R>),
    And(Box<R>, Box<R>),
    Or(Box<R>, Box<R>),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

const NAMES: [&str; 3] = ["a", "b", "TAGS"];
const VALUES: [&str; 14] = [
    "0",
    "5",
    "-3",
    "17",
    "+4",
    "2147483648",
    "abc",
    "",
    "5.5",
    "1e2",
    " 7",
    "true",
    "eu",
    "us",
];

fn literal(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", literal(-v))
    } else {
        format!("{v:?}")
    }
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl R {
    fn sql(&self) -> String {
        let op = |o: Op, flipped: bool| match (o, flipped) {
            (Op::Gt, false) | (Op::Lt, true) => ">",
            (Op::Ge, false) | (Op::Le, true) => ">=",
            (Op::Lt, false) | (Op::Gt, true) => "<",
            (Op::Le, false) | (Op::Ge, true) => "<=",
            (Op::Eq, _) => "=",
            (Op::Ne, _) => "<>",
        };
        match self {
            R::CmpInt(p, o, n, flip) if *flip => format!("{n} {} {p}", op(*o, true)),
            R::CmpInt(p, o, n, _) => format!("{p} {} {n}", op(*o, false)),
            R::CmpDouble(p, o, d, flip) if *flip => format!("{} {} {p}", literal(*d), op(*o, true)),
            R::CmpDouble(p, o, d, _) => format!("{p} {} {}", op(*o, false), literal(*d)),
            R::EqStr(p, s, ne) => format!("{p} {} {}", if *ne { "<>" } else { "=" }, quoted(s)),
            R::In(p, list, not) => {
                let list: Vec<String> = list.iter().map(|s| quoted(s)).collect();
                format!(
                    "{p} {}IN ({})",
                    if *not { "NOT " } else { "" },
                    list.join(", ")
                )
            }
            R::IsNull(p, not) => format!("{p} IS {}NULL", if *not { "NOT " } else { "" }),
            R::Between(p, lo, hi, not) => {
                format!(
                    "{p} {}BETWEEN {lo} AND {hi}",
                    if *not { "NOT " } else { "" }
                )
            }
            R::Lit(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            R::Not(e) => format!("NOT ({})", e.sql()),
            R::And(l, r) => format!("({}) AND ({})", l.sql(), r.sql()),
            R::Or(l, r) => format!("({}) or ({})", l.sql(), r.sql()),
        }
    }

    /// Ok(Some(b)): known; Ok(None): unknown; Err: a value did not convert, which ends evaluation.
    fn eval(&self, get: &dyn Fn(&str) -> Option<String>) -> Result<Option<bool>, ()> {
        let ordered = |v: std::cmp::Ordering, o: Op| match o {
            Op::Gt => v.is_gt(),
            Op::Ge => v.is_ge(),
            Op::Lt => v.is_lt(),
            Op::Le => v.is_le(),
            Op::Eq => v.is_eq(),
            Op::Ne => v.is_ne(),
        };
        let int = |s: &str| s.parse::<i32>().map_err(|_| ());
        let double = |s: &str| {
            let t = s.trim();
            if t.is_empty() || t.chars().any(|c| c.is_ascii_alphabetic() && c != 'e') {
                return Err(());
            }
            t.parse::<f64>().map_err(|_| ())
        };
        Ok(match self {
            // RocketMQ's equality is lopsided: `literal = missing` is false, not unknown (and so
            // `literal <> missing` is true), while `missing = literal` is unknown.
            R::CmpInt(p, o @ (Op::Eq | Op::Ne), _, true)
            | R::CmpDouble(p, o @ (Op::Eq | Op::Ne), _, true)
                if get(p).is_none() =>
            {
                Some(matches!(o, Op::Ne))
            }
            R::CmpInt(p, o, n, _) => match get(p) {
                None => None,
                Some(v) => {
                    let known = ordered(int(&v)?.cmp(n), *o);
                    Some(known)
                }
            },
            R::CmpDouble(p, o, d, _) => match get(p) {
                None => None,
                Some(v) => Some(ordered(double(&v)?.partial_cmp(d).ok_or(())?, *o)),
            },
            R::EqStr(p, s, ne) => get(p).map(|v| (v == *s) != *ne),
            R::In(p, list, not) => get(p).map(|v| list.contains(&v) != *not),
            R::IsNull(p, not) => Some(get(p).is_none() != *not),
            R::Between(p, lo, hi, not) => {
                let (a, b) = if *not {
                    (
                        R::CmpInt(p, Op::Lt, *lo, false),
                        R::CmpInt(p, Op::Gt, *hi, false),
                    )
                } else {
                    (
                        R::CmpInt(p, Op::Ge, *lo, false),
                        R::CmpInt(p, Op::Le, *hi, false),
                    )
                };
                let pair = (Box::new(a), Box::new(b));
                return if *not {
                    R::Or(pair.0, pair.1)
                } else {
                    R::And(pair.0, pair.1)
                }
                .eval(get);
            }
            R::Lit(b) => Some(*b),
            R::Not(e) => e.eval(get)?.map(|b| !b),
            R::And(l, r) => match l.eval(get)? {
                Some(false) => Some(false),
                lv => match (lv, r.eval(get)?) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
            },
            R::Or(l, r) => match l.eval(get)? {
                Some(true) => Some(true),
                lv => match (lv, r.eval(get)?) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
            },
        })
    }
}

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(NAMES.to_vec())
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(VALUES.to_vec()).prop_map(str::to_owned)
}

fn op() -> impl Strategy<Value = Op> {
    prop::sample::select(vec![Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Eq, Op::Ne])
}

fn leaf() -> impl Strategy<Value = R> {
    prop_oneof![
        (name(), op(), -20i32..20, any::<bool>()).prop_map(|(p, o, n, f)| R::CmpInt(p, o, n, f)),
        (
            name(),
            op(),
            prop::sample::select(vec![0.5, 2.5, 5.5, 100.0, -3.0]),
            any::<bool>()
        )
            .prop_map(|(p, o, d, f)| R::CmpDouble(p, o, d, f)),
        (name(), word(), any::<bool>()).prop_map(|(p, s, ne)| R::EqStr(p, s, ne)),
        (name(), prop::collection::vec(word(), 1..4), any::<bool>())
            .prop_map(|(p, l, not)| R::In(p, l, not)),
        (name(), any::<bool>()).prop_map(|(p, not)| R::IsNull(p, not)),
        (name(), -5i32..10, 0i32..10, any::<bool>()).prop_map(|(p, lo, span, not)| R::Between(
            p,
            lo,
            lo + span,
            not
        )),
        any::<bool>().prop_map(R::Lit),
    ]
}

fn selector() -> impl Strategy<Value = R> {
    leaf().prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| R::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| R::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner).prop_map(|(l, r)| R::Or(Box::new(l), Box::new(r))),
        ]
    })
}

fn message() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    prop::collection::vec((name(), word()), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_evaluator_agrees_with_the_reference_on_random_selectors(r in selector(), msg in message()) {
        let text = r.sql();
        let compiled = Selector::parse(&text).map_err(|e| TestCaseError::fail(format!("`{text}`: {e}")))?;
        let pairs: Vec<(&str, &str)> = msg.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let encoded = props(&pairs);
        let get = |n: &str| super::property(&encoded, n).map(str::to_owned);
        let expected = r.eval(&get) == Ok(Some(true));
        prop_assert_eq!(compiled.matches(&encoded), expected, "`{}` on {:?}", text, msg);
    }
}
