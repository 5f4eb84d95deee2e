//! JSON bodies: routes, heartbeats, topic tables, cluster info, lists.
//!
//! Java peers write these with fastjson. Where fastjson writes something strict JSON parsers reject (integer
//! map keys without quotes, as in `brokerAddrs`), [`from_json`] reads both forms and Apogee writes the
//! quoted form, which fastjson also reads.

pub mod cluster;
pub mod delay_offset;
pub mod heartbeat;
pub mod offsets;
pub mod ops;
pub mod queue_map;
pub mod reset_offset;
pub mod route;
pub mod running_info;
pub mod subscription_group;
pub mod topic_config;

use serde::de::DeserializeOwned;

use crate::error::{ProtocolError, Result};

/// Parses a JSON body, first quoting bare integer object keys (`{0:"a"}` → `{"0":"a"}`).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(first) => {
            let fixed = quote_integer_keys(bytes);
            serde_json::from_slice(&fixed).map_err(|_| ProtocolError::Body(first.to_string()))
        }
    }
}

/// Writes a body as strict JSON.
pub fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Quotes integer keys that follow `{` or `,` outside strings.
fn quote_integer_keys(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut expect_key = false;
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                expect_key = false;
                out.push(b);
            }
            b'{' | b',' => {
                expect_key = true;
                out.push(b);
            }
            b' ' | b'\n' | b'\r' | b'\t' => out.push(b),
            b'-' | b'0'..=b'9' if expect_key => {
                let start = i;
                while i < src.len() && (src[i] == b'-' || src[i].is_ascii_digit()) {
                    i += 1;
                }
                let mut j = i;
                while j < src.len() && src[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < src.len() && src[j] == b':' {
                    out.push(b'"');
                    out.extend_from_slice(&src[start..i]);
                    out.push(b'"');
                } else {
                    out.extend_from_slice(&src[start..i]);
                }
                expect_key = false;
                continue;
            }
            _ => {
                expect_key = false;
                out.push(b);
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn bare_integer_keys_are_quoted_but_array_numbers_are_not() {
        let fixed = super::quote_integer_keys(br#"{0:"a", 1 :"b","x":[1,2],"s":"{3:4}"}"#);
        assert_eq!(
            std::str::from_utf8(&fixed).unwrap(),
            r#"{"0":"a", "1" :"b","x":[1,2],"s":"{3:4}"}"#
        );
    }
}
