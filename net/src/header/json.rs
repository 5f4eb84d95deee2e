//! The JSON header: `{"code":10,"language":"JAVA","version":453,"opaque":7,"flag":0,"remark":null,
//! "extFields":{...}}`.
//!
//! Java clients write it with fastjson and read it leniently, so this decoder is lenient the same ways a Java
//! broker is: `language` may be a name or a number, `extFields` values may be numbers or booleans (kept as
//! their text), unknown fields (`serializeTypeCurrentRPC`) are ignored. What it writes is strict JSON.

use serde_json::{Map, Value};

use crate::codes::Language;
use crate::command::{ExtFields, RemotingCommand};
use crate::error::{ProtocolError, Result};
use crate::header::SerializeType;
use crate::limits::{EXT_FIELDS_MAX, EXT_KEY_SIZE_MAX_BYTES};

/// Writes the header fields of `command` as JSON.
pub fn encode(command: &RemotingCommand, out: &mut Vec<u8>) {
    let mut ext = Map::with_capacity(command.ext_fields.len());
    for (k, v) in &command.ext_fields {
        ext.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    let mut header = Map::with_capacity(8);
    header.insert("code".into(), command.code.into());
    header.insert("language".into(), command.language.name().into());
    header.insert("version".into(), command.version.into());
    header.insert("opaque".into(), command.opaque.into());
    header.insert("flag".into(), command.flag.into());
    header.insert(
        "remark".into(),
        command.remark.clone().map_or(Value::Null, Value::String),
    );
    header.insert("extFields".into(), Value::Object(ext));
    header.insert("serializeTypeCurrentRPC".into(), "JSON".into());
    // Writing a Map of plain values into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &Value::Object(header));
}

fn int_field(obj: &Map<String, Value>, name: &'static str, required: bool) -> Result<i32> {
    match obj.get(name) {
        None | Some(Value::Null) if !required => Ok(0),
        None | Some(Value::Null) => Err(ProtocolError::MissingField(name)),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| ProtocolError::BadField {
                field: name,
                value: n.to_string(),
            }),
        Some(Value::String(s)) => s.parse().map_err(|_| ProtocolError::BadField {
            field: name,
            value: s.clone(),
        }),
        Some(other) => Err(ProtocolError::BadField {
            field: name,
            value: other.to_string(),
        }),
    }
}

/// Reads header fields from JSON bytes; the body is attached by the frame decoder.
pub fn decode(bytes: &[u8]) -> Result<RemotingCommand> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ProtocolError::JsonHeader(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(ProtocolError::JsonHeader(
            "the header is not a JSON object".into(),
        ));
    };
    let language = match obj.get("language") {
        Some(Value::String(s)) => Language::from_name(s),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|v| Language::from_i32(v as i32))
            .unwrap_or(Language::Other),
        _ => Language::Other,
    };
    let mut ext_fields = ExtFields::default();
    match obj.get("extFields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            if map.len() > EXT_FIELDS_MAX {
                return Err(ProtocolError::JsonHeader(format!(
                    "{} extFields, the limit is {EXT_FIELDS_MAX}",
                    map.len()
                )));
            }
            let bytes: usize = map
                .iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(16, str::len))
                .sum();
            ext_fields = ExtFields::with_capacity(map.len(), bytes);
            for (k, v) in map {
                if k.len() > EXT_KEY_SIZE_MAX_BYTES {
                    return Err(ProtocolError::JsonHeader(format!(
                        "an extFields key of {} bytes, the limit is {EXT_KEY_SIZE_MAX_BYTES}",
                        k.len()
                    )));
                }
                match v {
                    Value::String(s) => ext_fields.put(k, s),
                    Value::Null => continue,
                    other => ext_fields.put_display(k, other),
                }
            }
        }
        Some(_) => {
            return Err(ProtocolError::JsonHeader(
                "extFields is not an object".into(),
            ))
        }
    }
    let remark = match obj.get("remark") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(RemotingCommand {
        code: int_field(&obj, "code", true)?,
        language,
        version: int_field(&obj, "version", false)?,
        opaque: int_field(&obj, "opaque", false)?,
        flag: int_field(&obj, "flag", false)?,
        remark,
        ext_fields,
        body: bytes::Bytes::new(),
        serialize_type: SerializeType::Json,
    })
}
