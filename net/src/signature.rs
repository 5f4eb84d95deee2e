//! The ACL 1.0 request signature: what RocketMQ's client hook (`AclClientRPCHook`) signs and its broker
//! (`PlainAccessValidator`, `AclUtils.combineRequestContent`, `AclSigner`) checks.
//!
//! ```text
//! content   = value(k1) ‖ value(k2) ‖ … ‖ body      k1 < k2 < … : every extFields key except `Signature`,
//!                                                   in Java String order (UTF-16 code units)
//! Signature = base64(HmacSHA1(key = secretKey as UTF-8, content))
//! ```
//!
//! The client first adds `AccessKey` (and `SecurityToken`, if it has one) to the fields, so both are signed;
//! `Signature` is added last. Only values are concatenated, never keys. Requests from clients of version
//! 4.9.3 or older (`version` ≤ 399) also leave `_UNIQUE_KEY_QUERY` out, as RocketMQ 5's broker does.
//!
//! Checking allocates nothing: the fields are sorted as borrowed pairs in a stack array of
//! [`SIGNED_FIELDS_MAX`](crate::limits::SIGNED_FIELDS_MAX) and fed to the MAC one by one, and the given
//! signature is decoded into a stack buffer and compared in constant time (`hmac`'s `verify_slice`).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::command::RemotingCommand;
use crate::limits::SIGNED_FIELDS_MAX;

/// The MAC RocketMQ's ACL uses.
pub type HmacSha1 = Hmac<Sha1>;

/// extFields key of the access key.
pub const ACCESS_KEY: &str = "AccessKey";
/// extFields key of the signature (never signed itself).
pub const SIGNATURE: &str = "Signature";
/// extFields key of the optional session token.
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// extFields key RocketMQ ≤ 4.9.3 brokers left out of the content (`MixAll.UNIQUE_MSG_QUERY_FLAG`).
pub const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";
/// `MQVersion.V4_9_3.ordinal()`: requests at or below it do not sign [`UNIQUE_KEY_QUERY`].
pub const VERSION_V4_9_3: i32 = 399;

/// Length of an HmacSHA1 tag.
const TAG_BYTES: usize = 20;

/// Why a signature could not be checked or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("request carries {count} header fields; signed requests may carry at most {max}")]
    TooManyFields { count: usize, max: usize },
}

/// A MAC keyed with `secret_key`, to be cloned per request (keying hashes the key; cloning copies state).
pub fn keyed(secret_key: &str) -> HmacSha1 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha1 as Mac>::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"))
}

/// Java's `String.compareTo`: UTF-16 code units in order (differs from UTF-8 byte order only for
/// characters above U+FFFF against U+E000..U+FFFF).
fn java_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Feeds the signed content of `cmd` (module docs) to `mac`.
pub fn feed(mac: &mut HmacSha1, cmd: &RemotingCommand) -> Result<(), SignatureError> {
    let count = cmd.ext_fields.len();
    if count > SIGNED_FIELDS_MAX {
        return Err(SignatureError::TooManyFields {
            count,
            max: SIGNED_FIELDS_MAX,
        });
    }
    let skip_unique = cmd.version <= VERSION_V4_9_3;
    let mut fields: [(&str, &str); SIGNED_FIELDS_MAX] = [("", ""); SIGNED_FIELDS_MAX];
    let mut n = 0;
    for (k, v) in &cmd.ext_fields {
        if k == SIGNATURE || (skip_unique && k == UNIQUE_KEY_QUERY) {
            continue;
        }
        fields[n] = (k, v);
        n += 1;
    }
    let fields = &mut fields[..n];
    // Insertion sort: a score of fields, already in a cheap order to compare, on the stack.
    fields.sort_unstable_by(|a, b| java_order(a.0, b.0));
    for (_, v) in fields.iter() {
        mac.update(v.as_bytes());
    }
    mac.update(&cmd.body);
    Ok(())
}

/// The signature of `cmd` under `secret_key`, as the `Signature` field carries it.
pub fn signature(secret_key: &str, cmd: &RemotingCommand) -> Result<String, SignatureError> {
    let mut mac = keyed(secret_key);
    feed(&mut mac, cmd)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Signs `cmd` as RocketMQ's `AclClientRPCHook` does: adds `AccessKey` (and `SecurityToken`), then
/// `Signature` over every field and the body.
pub fn sign(
    cmd: &mut RemotingCommand,
    access_key: &str,
    secret_key: &str,
    security_token: Option<&str>,
) -> Result<(), SignatureError> {
    cmd.ext_fields.remove(SIGNATURE);
    cmd.ext_fields.put(ACCESS_KEY, access_key);
    if let Some(t) = security_token {
        cmd.ext_fields.put(SECURITY_TOKEN, t);
    }
    let s = signature(secret_key, cmd)?;
    cmd.ext_fields.put(SIGNATURE, &s);
    Ok(())
}

/// What checking a request's `Signature` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The signature is the MAC of the content.
    Valid,
    /// Missing, not base64 of a 20-byte tag, or not the MAC of the content.
    Invalid,
}

/// Checks the `Signature` of `cmd` with a MAC already keyed with the account's secret ([`keyed`]),
/// without allocating; the tag comparison takes the same time wherever it differs.
pub fn verify(keyed_mac: &HmacSha1, cmd: &RemotingCommand) -> Result<Verdict, SignatureError> {
    let Some(given) = cmd.ext(SIGNATURE) else {
        return Ok(Verdict::Invalid);
    };
    let mut tag = [0u8; TAG_BYTES + 3];
    let decoded =
        base64::engine::general_purpose::STANDARD.decode_slice(given.as_bytes(), &mut tag);
    let mut mac = keyed_mac.clone();
    feed(&mut mac, cmd)?;
    Ok(match decoded {
        Ok(TAG_BYTES) if mac.verify_slice(&tag[..TAG_BYTES]).is_ok() => Verdict::Valid,
        _ => Verdict::Invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RemotingCommand {
        RemotingCommand::request(310, 1)
            .with_ext("b", "TopicTest")
            .with_ext("a", "pg")
            .with_body(b"hello".to_vec())
    }

    #[test]
    fn content_is_the_sorted_values_then_the_body() {
        let mut cmd = request();
        sign(&mut cmd, "RocketMQ", "12345678", None).unwrap();
        // Sorted keys: AccessKey < a < b (uppercase sorts first, as in Java).
        let mut mac = keyed("12345678");
        mac.update(b"RocketMQpgTopicTesthello");
        let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(cmd.ext(SIGNATURE), Some(want.as_str()));
        assert_eq!(verify(&keyed("12345678"), &cmd), Ok(Verdict::Valid));
    }

    #[test]
    fn known_signatures_are_reproduced() {
        // Computed independently (Python's hmac and base64 modules).
        let mut cmd = RemotingCommand::request(34, 1);
        sign(&mut cmd, "RocketMQ", "12345678", None).unwrap();
        assert_eq!(cmd.ext(SIGNATURE), Some("IUc8rrO/0gDch8CjObLQsW2rsiA="));
        let mut cmd = request();
        sign(&mut cmd, "RocketMQ", "12345678", None).unwrap();
        assert_eq!(cmd.ext(SIGNATURE), Some("e21Mq5EP8w3haf5w9e70ZDHi1jw="));
    }

    #[test]
    fn a_wrong_secret_a_changed_field_or_body_or_a_garbled_signature_is_invalid() {
        let mut cmd = request();
        sign(&mut cmd, "ak", "right-secret", Some("tok")).unwrap();
        let right = keyed("right-secret");
        assert_eq!(verify(&right, &cmd), Ok(Verdict::Valid));
        assert_eq!(verify(&keyed("wrong-secret"), &cmd), Ok(Verdict::Invalid));
        let mut changed = cmd.clone();
        changed.ext_fields.insert("b".into(), "Other".into());
        assert_eq!(verify(&right, &changed), Ok(Verdict::Invalid));
        let mut body = cmd.clone();
        body.body = bytes::Bytes::from_static(b"hellO");
        assert_eq!(verify(&right, &body), Ok(Verdict::Invalid));
        let mut token = cmd.clone();
        token
            .ext_fields
            .insert(SECURITY_TOKEN.into(), "other".into());
        assert_eq!(verify(&right, &token), Ok(Verdict::Invalid));
        for garbled in ["", "!!!", "AAAA", "not base64 at all"] {
            let mut g = cmd.clone();
            g.ext_fields.insert(SIGNATURE.into(), garbled.into());
            assert_eq!(verify(&right, &g), Ok(Verdict::Invalid), "{garbled}");
        }
        let mut none = cmd.clone();
        none.ext_fields.remove(SIGNATURE);
        assert_eq!(verify(&right, &none), Ok(Verdict::Invalid));
    }

    #[test]
    fn old_clients_leave_the_unique_key_query_flag_out() {
        let mut cmd = request().with_ext(UNIQUE_KEY_QUERY, "true");
        cmd.version = VERSION_V4_9_3;
        sign(&mut cmd, "ak", "secret1", None).unwrap();
        let mut without = cmd.clone();
        without.ext_fields.remove(UNIQUE_KEY_QUERY);
        assert_eq!(
            signature("secret1", &without).unwrap(),
            cmd.ext(SIGNATURE).unwrap()
        );
        cmd.version = VERSION_V4_9_3 + 1;
        assert_eq!(verify(&keyed("secret1"), &cmd), Ok(Verdict::Invalid));
    }

    #[test]
    fn java_order_sorts_by_utf16_units() {
        assert_eq!(java_order("AccessKey", "a"), std::cmp::Ordering::Less);
        // U+FF21 (one unit 0xFF21) sorts after U+1F600 (surrogates 0xD83D…) in Java, unlike in UTF-8.
        assert_eq!(
            java_order("\u{FF21}", "\u{1F600}"),
            std::cmp::Ordering::Greater
        );
    }

    #[test]
    fn too_many_fields_are_refused_not_checked() {
        let mut cmd = request().with_ext(SIGNATURE, "IUc8rrO/0gDch8CjObLQsW2rsiA=");
        for i in 0..SIGNED_FIELDS_MAX {
            cmd.ext_fields.insert(format!("k{i}"), "v".into());
        }
        assert!(matches!(
            verify(&keyed("s"), &cmd),
            Err(SignatureError::TooManyFields { .. })
        ));
    }
}
