//! ACL credentials (RocketMQ's `SessionCredentials`) and the signing every request gets with them
//! (RocketMQ's `AclClientRPCHook`): `AccessKey`, the optional `SecurityToken`, and `Signature` over the
//! request's header fields and body ([`apogee_net::signature`]).
//!
//! ```
//! use apogee_client::ProducerConfig;
//! let config = ProducerConfig::new("127.0.0.1:9876", "pg").with_credentials("RocketMQ", "12345678");
//! assert_eq!(config.credentials.unwrap().access_key(), "RocketMQ");
//! ```

use apogee_net::signature;
use apogee_net::RemotingCommand;

/// An access key and its secret. `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
    security_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    /// Adds a session token, sent (and signed) as `SecurityToken`.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Signs `request` in place, as RocketMQ's `AclClientRPCHook.doBeforeRequest` does.
    pub fn sign(&self, request: &mut RemotingCommand) -> Result<(), signature::SignatureError> {
        signature::sign(
            request,
            &self.access_key,
            &self.secret_key,
            self.security_token.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret_and_signing_adds_the_fields() {
        let c = Credentials::new("RocketMQ", "12345678").with_security_token("tok-123");
        let shown = format!("{c:?}");
        assert!(
            shown.contains("RocketMQ") && !shown.contains("12345678") && !shown.contains("tok-123")
        );
        let mut r = RemotingCommand::request(34, 1);
        c.sign(&mut r).unwrap();
        assert_eq!(r.ext("AccessKey"), Some("RocketMQ"));
        assert_eq!(r.ext("SecurityToken"), Some("tok-123"));
        assert!(r.ext("Signature").is_some());
    }
}
