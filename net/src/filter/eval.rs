//! Evaluation: RocketMQ's three-valued logic over Java's value types, without allocating.
//!
//! Values are `null`, booleans, Java `Integer`s and `Long`s, `Double`s and strings; every property value
//! is a string (or null when the message lacks it). A comparison converts a string to the other side's
//! type (`Integer.valueOf`, `Long.valueOf`, `Double.valueOf`, `Boolean.valueOf`), and a string that does
//! not convert is an evaluation error, which makes the whole selector false for that message, as
//! RocketMQ's `ExpressionMessageFilter` catches the exception and drops the message.

use std::cmp::Ordering;

use super::{CmpOp, Const, Expr};

/// A value during evaluation: borrowed from the selector or from the message's properties.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(&'a str),
}

/// A property could not be converted, or values could not be compared: Java threw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalError;

type Eval<'a> = Result<Value<'a>, EvalError>;

impl Const {
    pub fn value(&self) -> Value<'_> {
        match self {
            Const::Null => Value::Null,
            Const::Bool(b) => Value::Bool(*b),
            Const::Int(i) => Value::Int(*i),
            Const::Long(l) => Value::Long(*l),
            Const::Double(d) => Value::Double(*d),
            Const::Str(s) => Value::Str(s),
        }
    }
}

/// Evaluates `e`; `get` finds a property's value.
pub fn eval<'a>(e: &'a Expr, get: &dyn Fn(&str) -> Option<&'a str>) -> Eval<'a> {
    Ok(match e {
        Expr::Const(c) => c.value(),
        Expr::Prop(name) => get(name).map_or(Value::Null, Value::Str),
        Expr::Neg(inner) => match eval(inner, get)? {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Long(l) => Value::Long(l.wrapping_neg()),
            Value::Double(d) => Value::Double(-d),
            _ => Value::Null,
        },
        Expr::BoolCast(inner) => match eval(inner, get)? {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            _ => Value::Bool(false),
        },
        Expr::Not(inner) => match boolean(eval(inner, get)?)? {
            None => Value::Null,
            Some(b) => Value::Bool(!b),
        },
        // RocketMQ's binary AND: false as soon as a side is false (the right side is not evaluated
        // when the left is false), unknown if a side is unknown, else true. Over a left-deep chain that
        // is: left to right, stop at the first false. OR is the same with true.
        Expr::And(list) | Expr::Or(list) => {
            let decisive = matches!(e, Expr::Or(_));
            let mut unknown = false;
            for operand in list {
                match boolean(eval(operand, get)?)? {
                    Some(b) if b == decisive => return Ok(Value::Bool(decisive)),
                    Some(_) => {}
                    None => unknown = true,
                }
            }
            if unknown {
                Value::Null
            } else {
                Value::Bool(!decisive)
            }
        }
        Expr::Eq(l, r) => {
            let (lv, rv) = (eval(l, get)?, eval(r, get)?);
            match (lv, rv) {
                (Value::Null, Value::Null) => Value::Bool(true),
                (Value::Null, _) => Value::Null,
                (_, Value::Null) => Value::Bool(false),
                _ if java_equals(&lv, &rv) => Value::Bool(true),
                _ => Value::Bool(compare(&lv, &rv)? == Ordering::Equal),
            }
        }
        Expr::Cmp(op, l, r) => {
            let lv = eval(l, get)?;
            if lv == Value::Null {
                return Ok(Value::Null);
            }
            let rv = eval(r, get)?;
            if rv == Value::Null {
                return Ok(Value::Null);
            }
            let ord = match (lv, rv) {
                // Two strings are never ordered as strings: both must be numbers.
                (Value::Str(a), Value::Str(b)) => {
                    let (a, b) = (java_double(a)?, java_double(b)?);
                    a.total_cmp(&b)
                }
                _ => compare(&lv, &rv)?,
            };
            Value::Bool(match op {
                CmpOp::Gt => ord.is_gt(),
                CmpOp::Ge => ord.is_ge(),
                CmpOp::Lt => ord.is_lt(),
                CmpOp::Le => ord.is_le(),
            })
        }
        Expr::In { name, list, not } => match get(name) {
            None => Value::Null,
            Some(v) => Value::Bool(list.iter().any(|s| s == v) ^ not),
        },
    })
}

/// Java's `(Boolean) value` cast: null stays null, anything but a boolean throws.
fn boolean(v: Value<'_>) -> Result<Option<bool>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        _ => Err(EvalError),
    }
}

/// Java's `equals` between two non-null values: same class and same value (`Integer` 5 is not `Long` 5;
/// `Double` compares bits, so NaN equals NaN).
fn java_equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Long(x), Value::Long(y)) => x == y,
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => false,
    }
}

/// RocketMQ's `ComparisonExpression.__compare` with string conversion on: the left value is widened to
/// the right's numeric type or the other way round, a string is converted to the other side's type, and
/// a boolean against a number is "less" (-1).
pub fn compare(a: &Value<'_>, b: &Value<'_>) -> Result<Ordering, EvalError> {
    use Value::*;
    Ok(match (*a, *b) {
        (Bool(x), Bool(y)) => x.cmp(&y),
        (Int(x), Int(y)) => x.cmp(&y),
        (Long(x), Long(y)) => x.cmp(&y),
        (Double(x), Double(y)) => x.total_cmp(&y),
        (Str(x), Str(y)) => java_string_cmp(x, y),
        // Java casts the Boolean to a String here and throws ClassCastException.
        (Bool(_), Str(_)) => return Err(EvalError),
        (Bool(_), _) => Ordering::Less,
        (Int(x), Long(y)) => (x as i64).cmp(&y),
        (Long(x), Int(y)) => x.cmp(&(y as i64)),
        (Int(x), Double(y)) => (x as f64).total_cmp(&y),
        (Long(x), Double(y)) => (x as f64).total_cmp(&y),
        (Double(x), Int(y)) => x.total_cmp(&(y as f64)),
        (Double(x), Long(y)) => x.total_cmp(&(y as f64)),
        (Int(x), Str(y)) => x.cmp(&java_int(y)?),
        (Long(x), Str(y)) => x.cmp(&java_long(y)?),
        (Double(x), Str(y)) => x.total_cmp(&java_double(y)?),
        (Str(x), Bool(y)) => x.eq_ignore_ascii_case("true").cmp(&y),
        (Str(x), Int(y)) => java_int(x)?.cmp(&y),
        (Str(x), Long(y)) => java_long(x)?.cmp(&y),
        (Str(x), Double(y)) => java_double(x)?.total_cmp(&y),
        (Int(_) | Long(_) | Double(_), Bool(_)) => Ordering::Less,
        (Null, _) | (_, Null) => return Err(EvalError),
    })
}

/// Java's `String.compareTo`: by UTF-16 code units.
fn java_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `Integer.valueOf(String)`: an optional sign and ASCII digits that fit 32 bits.
fn java_int(s: &str) -> Result<i32, EvalError> {
    java_long(s).and_then(|v| i32::try_from(v).map_err(|_| EvalError))
}

/// Java's `Long.valueOf(String)`: an optional sign and ASCII digits that fit 64 bits; no spaces.
fn java_long(s: &str) -> Result<i64, EvalError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EvalError);
    }
    s.parse().map_err(|_| EvalError)
}

/// Java's `Double.valueOf(String)`: spaces around are ignored; an optional sign; `NaN`, `Infinity`, or
/// decimal digits with an optional point and exponent, and an optional `f`/`d` suffix. (Java's hex
/// floats are not accepted here.) NaN is Java's single NaN, so it orders above everything.
pub fn java_double(s: &str) -> Result<f64, EvalError> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let v = match body {
        "NaN" => return Ok(f64::NAN),
        "Infinity" => f64::INFINITY,
        _ => {
            let number = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            let b = number.as_bytes();
            let mut i = 0;
            let mut digits = 0;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
                digits += 1;
            }
            if i < b.len() && b[i] == b'.' {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                    digits += 1;
                }
            }
            if digits == 0 {
                return Err(EvalError);
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                let exp_start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == exp_start {
                    return Err(EvalError);
                }
            }
            if i != b.len() {
                return Err(EvalError);
            }
            number.parse::<f64>().map_err(|_| EvalError)?
        }
    };
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_convert_as_java_value_of_does() {
        assert_eq!(java_long("+12"), Ok(12));
        assert_eq!(java_long(" 12"), Err(EvalError));
        assert_eq!(java_int("3000000000"), Err(EvalError));
        assert_eq!(java_double(" 1.5e3d "), Ok(1500.0));
        assert_eq!(java_double("-Infinity"), Ok(f64::NEG_INFINITY));
        assert!(java_double("NaN").unwrap().is_nan());
        assert_eq!(java_double("inf"), Err(EvalError));
        assert_eq!(java_double("."), Err(EvalError));
        assert_eq!(java_double("5."), Ok(5.0));
    }

    #[test]
    fn mixed_types_compare_as_rocketmq_does() {
        use Value::*;
        assert_eq!(compare(&Int(5), &Long(5)), Ok(Ordering::Equal));
        assert_eq!(compare(&Str("5"), &Int(6)), Ok(Ordering::Less));
        assert_eq!(compare(&Str("5.5"), &Int(6)), Err(EvalError));
        assert_eq!(compare(&Str("5.5"), &Double(6.0)), Ok(Ordering::Less));
        assert_eq!(compare(&Bool(true), &Int(1)), Ok(Ordering::Less));
        assert_eq!(compare(&Str("TRUE"), &Bool(true)), Ok(Ordering::Equal));
        assert_eq!(compare(&Bool(true), &Str("true")), Err(EvalError));
    }
}
