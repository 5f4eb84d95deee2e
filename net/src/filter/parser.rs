//! The recursive-descent parser: tokens to an [`Expr`], with the checks RocketMQ's `SelectorParser`
//! makes while it builds its tree (see the grammar in the [module docs](super)).

use super::lexer::{Spanned, Token};
use super::{CmpOp, Const, Expr, SelectorError, SELECTOR_EQUALITY_CHAIN_MAX};

pub struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    end: usize,
}

impl Parser {
    pub fn new(tokens: Vec<Spanned>, text_len: usize) -> Self {
        Self {
            tokens,
            pos: 0,
            end: text_len,
        }
    }

    /// `selector := or_expr EOF`, and the whole must be a boolean.
    pub fn selector(mut self) -> Result<Expr, SelectorError> {
        let e = self.or_expr()?;
        if let Some((t, at)) = self.tokens.get(self.pos) {
            return Err(SelectorError::new(*at, format!("unexpected {t:?}")));
        }
        self.as_boolean(e)
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn peek2(&self) -> Option<&Token> {
        self.tokens.get(self.pos + 1).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(_, at)| *at)
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Token) -> Result<(), SelectorError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("{t:?}")))
        }
    }

    fn unexpected(&self, wanted: &str) -> SelectorError {
        match self.peek() {
            Some(t) => SelectorError::new(self.at(), format!("expected {wanted}, found {t:?}")),
            None => SelectorError::new(self.end, format!("expected {wanted}, found the end")),
        }
    }

    /// RocketMQ's `asBooleanExpression`: a boolean stays, a property is cast (true only if it is a
    /// boolean, which a property never is), anything else is refused.
    fn as_boolean(&self, e: Expr) -> Result<Expr, SelectorError> {
        if e.is_boolean() {
            Ok(e)
        } else if let Expr::Prop(_) = e {
            Ok(Expr::BoolCast(Box::new(e)))
        } else {
            Err(SelectorError::new(
                self.at(),
                format!("Expression will not result in a boolean value: {e}"),
            ))
        }
    }

    fn or_expr(&mut self) -> Result<Expr, SelectorError> {
        let first = self.and_expr()?;
        if self.peek() != Some(&Token::Or) {
            return Ok(first);
        }
        let mut list = vec![self.as_boolean(first)?];
        while self.eat(&Token::Or) {
            let next = self.and_expr()?;
            list.push(self.as_boolean(next)?);
        }
        Ok(Expr::Or(list))
    }

    fn and_expr(&mut self) -> Result<Expr, SelectorError> {
        let first = self.equality_expr()?;
        if self.peek() != Some(&Token::And) {
            return Ok(first);
        }
        let mut list = vec![self.as_boolean(first)?];
        while self.eat(&Token::And) {
            let next = self.equality_expr()?;
            list.push(self.as_boolean(next)?);
        }
        Ok(Expr::And(list))
    }

    fn equality_expr(&mut self) -> Result<Expr, SelectorError> {
        let mut left = self.comparison_expr()?;
        for links in 0.. {
            if links == SELECTOR_EQUALITY_CHAIN_MAX
                && matches!(self.peek(), Some(Token::Eq | Token::Ne | Token::Is))
            {
                return Err(SelectorError::new(
                    self.at(),
                    format!("more than {SELECTOR_EQUALITY_CHAIN_MAX} `=`, `<>` or IS in a row"),
                ));
            }
            if self.eat(&Token::Eq) {
                let right = self.comparison_expr()?;
                left = self.equal(left, right)?;
            } else if self.eat(&Token::Ne) {
                let right = self.comparison_expr()?;
                left = Expr::Not(Box::new(self.equal(left, right)?));
            } else if self.peek() == Some(&Token::Is) {
                self.pos += 1;
                let not = self.eat(&Token::Not);
                self.expect(&Token::Null)?;
                let is_null = Expr::Eq(Box::new(left), Box::new(Expr::Const(Const::Null)));
                left = if not {
                    Expr::Not(Box::new(is_null))
                } else {
                    is_null
                };
            } else {
                return Ok(left);
            }
        }
        Ok(left)
    }

    /// `=`: neither side may be the NULL literal, and a TRUE/FALSE literal is not compared with
    /// another kind of literal (RocketMQ's `checkEqualOperand` and `checkEqualOperandCompatability`).
    fn equal(&self, left: Expr, right: Expr) -> Result<Expr, SelectorError> {
        for side in [&left, &right] {
            if let Expr::Const(Const::Null) = side {
                return Err(SelectorError::new(self.at(), "'NULL' cannot be compared."));
            }
        }
        if let (Expr::Const(l @ Const::Bool(_)), Expr::Const(r)) = (&left, &right) {
            if !matches!(r, Const::Bool(_) | Const::Null) {
                return Err(SelectorError::new(
                    self.at(),
                    format!("'{l}' cannot be compared with '{r}'"),
                ));
            }
        }
        Ok(Expr::Eq(Box::new(left), Box::new(right)))
    }

    /// `>`, `>=`, `<`, `<=` take numbers, properties and negations only (RocketMQ's
    /// `checkLessThanOperand`): a string or boolean literal, or a boolean expression, is refused.
    fn ordered(&self, op: CmpOp, left: Expr, right: Expr) -> Result<Expr, SelectorError> {
        for side in [&left, &right] {
            let bad = match side {
                Expr::Const(c) => !matches!(c, Const::Int(_) | Const::Long(_) | Const::Double(_)),
                e => e.is_boolean(),
            };
            if bad {
                return Err(SelectorError::new(
                    self.at(),
                    format!("Value '{side}' cannot be compared."),
                ));
            }
        }
        Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn comparison_expr(&mut self) -> Result<Expr, SelectorError> {
        let mut left = self.unary_expr()?;
        loop {
            let op = match self.peek() {
                Some(Token::Gt) => Some(CmpOp::Gt),
                Some(Token::Ge) => Some(CmpOp::Ge),
                Some(Token::Lt) => Some(CmpOp::Lt),
                Some(Token::Le) => Some(CmpOp::Le),
                _ => None,
            };
            if let Some(op) = op {
                self.pos += 1;
                let right = self.unary_expr()?;
                left = self.ordered(op, left, right)?;
                continue;
            }
            let not = self.peek() == Some(&Token::Not)
                && matches!(self.peek2(), Some(Token::Between | Token::In));
            if not {
                self.pos += 1;
            }
            if self.eat(&Token::Between) {
                let low = self.unary_expr()?;
                self.expect(&Token::And)?;
                let high = self.unary_expr()?;
                left = if not {
                    Expr::Or(vec![
                        self.ordered(CmpOp::Lt, left.clone(), low)?,
                        self.ordered(CmpOp::Gt, left, high)?,
                    ])
                } else {
                    self.between(left, low, high)?
                };
            } else if self.eat(&Token::In) {
                let Expr::Prop(name) = left else {
                    return Err(SelectorError::new(
                        self.at(),
                        format!("Expected a property for In expression, got: {left}"),
                    ));
                };
                self.expect(&Token::LParen)?;
                let mut list = vec![self.string()?];
                while self.eat(&Token::Comma) {
                    list.push(self.string()?);
                }
                self.expect(&Token::RParen)?;
                left = Expr::In { name, list, not };
            } else {
                return Ok(left);
            }
        }
    }

    /// `v BETWEEN low AND high` is `v >= low AND v <= high`; with two literal bounds, they may not be
    /// NULL and low may not exceed high (RocketMQ's `createBetween`).
    fn between(&self, value: Expr, low: Expr, high: Expr) -> Result<Expr, SelectorError> {
        if let (Expr::Const(l), Expr::Const(h)) = (&low, &high) {
            if matches!(l, Const::Null) || matches!(h, Const::Null) {
                return Err(SelectorError::new(
                    self.at(),
                    "Illegal values of between, values can not be null!",
                ));
            }
            if let Ok(std::cmp::Ordering::Less) = super::eval::compare(&h.value(), &l.value()) {
                return Err(SelectorError::new(
                    self.at(),
                    format!("Illegal values of between, left value({l}) must less than or equal to right value({h})"),
                ));
            }
        }
        Ok(Expr::And(vec![
            self.ordered(CmpOp::Ge, value.clone(), low)?,
            self.ordered(CmpOp::Le, value, high)?,
        ]))
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        match self.tokens.get(self.pos) {
            Some((Token::Str(s), _)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("a string literal")),
        }
    }

    fn unary_expr(&mut self) -> Result<Expr, SelectorError> {
        if self.eat(&Token::Plus) {
            self.unary_expr()
        } else if self.eat(&Token::Minus) {
            Ok(Expr::Neg(Box::new(self.unary_expr()?)))
        } else if self.eat(&Token::Not) {
            let e = self.unary_expr()?;
            Ok(Expr::Not(Box::new(self.as_boolean(e)?)))
        } else {
            self.primary_expr()
        }
    }

    fn primary_expr(&mut self) -> Result<Expr, SelectorError> {
        let Some((token, at)) = self.tokens.get(self.pos).cloned() else {
            return Err(self.unexpected("a value, a property or `(`"));
        };
        self.pos += 1;
        let c = match token {
            Token::Str(s) => Const::Str(s),
            Token::Decimal(text) => decimal(&text, at)?,
            Token::Float(text) => float(&text, at)?,
            Token::True => Const::Bool(true),
            Token::False => Const::Bool(false),
            Token::Null => Const::Null,
            Token::Name(n) => return Ok(Expr::Prop(n)),
            Token::LParen => {
                let e = self.or_expr()?;
                self.expect(&Token::RParen)?;
                return Ok(e);
            }
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("a value, a property or `(`"));
            }
        };
        Ok(Expr::Const(c))
    }
}

/// A decimal literal: a Java `Long` (anything larger is refused), kept as an `Integer` when it fits one,
/// as RocketMQ's `ConstantExpression.createFromDecimal` does; the difference shows when a property is
/// converted to the literal's type.
fn decimal(text: &str, at: usize) -> Result<Const, SelectorError> {
    let v: i64 = text.parse().map_err(|_| {
        SelectorError::new(
            at,
            format!("For input string: \"{text}\" (out of the long range)"),
        )
    })?;
    Ok(match i32::try_from(v) {
        Ok(i) => Const::Int(i),
        Err(_) => Const::Long(v),
    })
}

/// A floating point literal, refused when it overflows to infinity or underflows below Java's
/// `Double.MIN_VALUE` (which makes `0.0` itself a refused literal in RocketMQ; write `0` instead).
fn float(text: &str, at: usize) -> Result<Const, SelectorError> {
    let v: f64 = text
        .parse()
        .map_err(|_| SelectorError::new(at, format!("bad number `{text}`")))?;
    if v > f64::MAX {
        return Err(SelectorError::new(
            at,
            format!("{text} is greater than {:e}", f64::MAX),
        ));
    }
    if v < f64::from_bits(1) {
        return Err(SelectorError::new(
            at,
            format!("{text} is less than 4.9E-324"),
        ));
    }
    Ok(Const::Double(v))
}
