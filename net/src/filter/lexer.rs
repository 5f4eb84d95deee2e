//! Tokens of a selector, as RocketMQ's `SelectorParser.jj` cuts them: keywords and names are
//! case-insensitive ASCII, `--` comments run to the end of a line (which must be there), `/* */` comments
//! anywhere, strings in single quotes with `''` for a quote, no hex or octal numbers.

use super::SelectorError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    /// `0` or `[1-9][0-9]*`, with an optional `L` suffix stripped.
    Decimal(String),
    /// `5.`, `5.5`, `.5`, `5E10`, `5.5E-3`: the text as written.
    Float(String),
    Str(String),
    Name(String),
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
}

/// A token and the byte offset where it starts, for error messages.
pub type Spanned = (Token, usize);

/// Cuts `text` into tokens, or says where it cannot.
pub fn tokenize(text: &str) -> Result<Vec<Spanned>, SelectorError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                // A line comment needs its line end: JavaCC's rule for it ends in a newline.
                match b[i..].iter().position(|c| *c == b'\n' || *c == b'\r') {
                    Some(n) => i += n + 1,
                    None => return Err(SelectorError::new(start, "comment without a line end")),
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => match text[i + 2..].find("*/") {
                Some(n) => i += n + 4,
                None => return Err(SelectorError::new(start, "unterminated comment")),
            },
            b'\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match text[i..].find('\'') {
                        None => return Err(SelectorError::new(start, "unterminated string")),
                        Some(n) => {
                            s.push_str(&text[i..i + n]);
                            i += n + 1;
                            if b.get(i) == Some(&b'\'') {
                                s.push('\'');
                                i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                out.push((Token::Str(s), start));
            }
            b'0'..=b'9' | b'.' => {
                let (token, end) = number(text, i)?;
                out.push((token, start));
                i = end;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &text[start..i];
                let token = match word.to_ascii_uppercase().as_str() {
                    "NOT" => Token::Not,
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "BETWEEN" => Token::Between,
                    "IN" => Token::In,
                    "TRUE" => Token::True,
                    "FALSE" => Token::False,
                    "NULL" => Token::Null,
                    "IS" => Token::Is,
                    _ => Token::Name(word.to_owned()),
                };
                out.push((token, start));
            }
            _ => {
                let two = b.get(i + 1).copied();
                let (token, len) = match (c, two) {
                    (b'<', Some(b'>')) => (Token::Ne, 2),
                    (b'>', Some(b'=')) => (Token::Ge, 2),
                    (b'<', Some(b'=')) => (Token::Le, 2),
                    (b'=', _) => (Token::Eq, 1),
                    (b'>', _) => (Token::Gt, 1),
                    (b'<', _) => (Token::Lt, 1),
                    (b'(', _) => (Token::LParen, 1),
                    (b')', _) => (Token::RParen, 1),
                    (b',', _) => (Token::Comma, 1),
                    (b'+', _) => (Token::Plus, 1),
                    (b'-', _) => (Token::Minus, 1),
                    _ => {
                        let ch = text[i..].chars().next().unwrap_or('?');
                        return Err(SelectorError::new(
                            start,
                            format!("unexpected character `{ch}`"),
                        ));
                    }
                };
                out.push((token, start));
                i += len;
            }
        }
    }
    Ok(out)
}

/// A number literal starting at `start`: the longest match of DECIMAL_LITERAL or FLOATING_POINT_LITERAL,
/// as JavaCC picks it. `007` is the literal `0` followed by `07`, which the parser then refuses, as
/// RocketMQ's does (octal was removed from its grammar).
fn number(text: &str, start: usize) -> Result<(Token, usize), SelectorError> {
    let b = text.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let int_end = digits(start);
    let mut end = int_end;
    let mut float = false;
    if b.get(end) == Some(&b'.') {
        let frac_end = digits(end + 1);
        if int_end == start && frac_end == end + 1 {
            return Err(SelectorError::new(start, "unexpected character `.`"));
        }
        end = frac_end;
        float = true;
    }
    if end > start && matches!(b.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_end = digits(j);
        if exp_end > j {
            end = exp_end;
            float = true;
        }
    }
    if float {
        return Ok((Token::Float(text[start..end].to_owned()), end));
    }
    if b[start] == b'0' {
        return Ok((Token::Decimal("0".into()), start + 1));
    }
    if matches!(b.get(end), Some(b'l' | b'L')) {
        return Ok((Token::Decimal(text[start..end].to_owned()), end + 1));
    }
    Ok((Token::Decimal(text[start..end].to_owned()), end))
}

#[cfg(test)]
mod tests {
    use super::{tokenize, Token as T};

    fn kinds(text: &str) -> Vec<T> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn keywords_are_case_insensitive_and_names_keep_their_case() {
        assert_eq!(
            kinds("a Is nOt NULL and TAGS in ('x')"),
            [
                T::Name("a".into()),
                T::Is,
                T::Not,
                T::Null,
                T::And,
                T::Name("TAGS".into()),
                T::In,
                T::LParen,
                T::Str("x".into()),
                T::RParen
            ]
        );
    }

    #[test]
    fn numbers_are_cut_like_javacc_longest_match() {
        assert_eq!(kinds("10L"), [T::Decimal("10".into())]);
        assert_eq!(kinds("5."), [T::Float("5.".into())]);
        assert_eq!(kinds(".5e3"), [T::Float(".5e3".into())]);
        assert_eq!(kinds("5E-2"), [T::Float("5E-2".into())]);
        assert_eq!(
            kinds("007"),
            [
                T::Decimal("0".into()),
                T::Decimal("0".into()),
                T::Decimal("7".into())
            ]
        );
    }

    #[test]
    fn strings_double_their_quotes_and_comments_are_skipped() {
        assert_eq!(
            kinds("'it''s' /* c */ -- line\n<>"),
            [T::Str("it's".into()), T::Ne]
        );
        assert!(tokenize("'open").is_err());
        assert!(tokenize("a -- no line end").is_err());
        assert!(tokenize("a # b").is_err());
    }
}
