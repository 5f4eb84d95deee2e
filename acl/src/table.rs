//! plain_acl.yml, read once per (re)load into an [`AclTable`] that requests are checked against.
//!
//! ```yaml
//! globalWhiteRemoteAddresses:        # requests from these addresses pass unchecked
//!   - 10.10.103.*
//! accounts:
//!   - accessKey: RocketMQ            # more than 6 characters, as RocketMQ requires
//!     secretKey: 12345678
//!     whiteRemoteAddress: 192.168.0.*  # requests with this key from these addresses need no signature
//!     admin: false                   # admin-only requests (create/delete topics and groups, broker config)
//!     defaultTopicPerm: DENY         # for topics not listed; absent = DENY
//!     defaultGroupPerm: SUB          # for groups not listed; absent = DENY
//!     topicPerms: [topicA=DENY, topicB=PUB|SUB, topicC=SUB]
//!     groupPerms: [groupA=DENY, groupB=PUB|SUB]
//! ```
//!
//! Field names are RocketMQ's; fields it ignores (`dataVersion`) are ignored too. Unlike RocketMQ, which
//! skips bad entries or reads them as DENY, a file with an unknown permission, a bad address pattern, a
//! duplicate access key or a too-short key is refused whole, with the reason, so that the accounts in
//! force are always exactly a file someone wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use apogee_net::signature::{self, HmacSha1};
use serde::Deserialize;

use crate::address::AddressPattern;
use crate::perm;

/// Keys and secrets must be longer than this (RocketMQ's `ACCESS_KEY_MIN_LENGTH`, `SECRET_KEY_MIN_LENGTH`).
pub const KEY_LENGTH_MIN_EXCLUSIVE: usize = 6;
/// Largest plain_acl.yml read; a file past it is refused (it is a handful of accounts, not a database).
pub const FILE_SIZE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Why plain_acl.yml could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("cannot read ACL file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ACL file {path} is {size} bytes; at most {FILE_SIZE_MAX_BYTES} are read")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("ACL file {path}, line {line}, column {column}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("ACL file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainAclFile {
    #[serde(default)]
    global_white_remote_addresses: Option<Vec<String>>,
    #[serde(default)]
    accounts: Option<Vec<AccountEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountEntry {
    access_key: Option<String>,
    secret_key: Option<String>,
    #[serde(default)]
    white_remote_address: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    default_topic_perm: Option<String>,
    #[serde(default)]
    default_group_perm: Option<String>,
    #[serde(default)]
    topic_perms: Option<Vec<String>>,
    #[serde(default)]
    group_perms: Option<Vec<String>>,
}

/// One account, with its secret only in keyed form.
pub struct Account {
    pub access_key: String,
    /// The HMAC keyed with the secret key: cloned per request, never shown.
    pub(crate) mac: HmacSha1,
    pub white_remote_address: AddressPattern,
    pub admin: bool,
    pub default_topic_perm: u8,
    pub default_group_perm: u8,
    /// Per topic.
    pub topics: HashMap<String, u8>,
    /// Per consumer group (the name, without `%RETRY%`).
    pub groups: HashMap<String, u8>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .field("white_remote_address", &self.white_remote_address)
            .field("admin", &self.admin)
            .field("topics", &self.topics)
            .field("groups", &self.groups)
            .finish()
    }
}

/// The accounts and white list in force: built once per load, then only read.
#[derive(Debug, Default)]
pub struct AclTable {
    pub global_white_remote_addresses: Vec<AddressPattern>,
    pub accounts: HashMap<String, Account>,
}

fn resource_perms(
    entries: Option<Vec<String>>,
    what: &str,
    key: &str,
) -> Result<HashMap<String, u8>, String> {
    let mut out = HashMap::new();
    for e in entries.unwrap_or_default() {
        let (name, p) = e
            .split_once('=')
            .filter(|(n, p)| !n.trim().is_empty() && !p.contains('='))
            .ok_or_else(|| {
                format!(
                    "account `{key}`: {what} entry `{e}` is not `name=PERM` (e.g. topicA=PUB|SUB)"
                )
            })?;
        let p = perm::parse(p).map_err(|r| format!("account `{key}`: {what} entry `{e}`: {r}"))?;
        out.insert(name.trim().to_owned(), p);
    }
    Ok(out)
}

fn default_perm(text: Option<String>, field: &str, key: &str) -> Result<u8, String> {
    match text {
        None => Ok(perm::DENY),
        Some(t) => perm::parse(&t).map_err(|r| format!("account `{key}`: {field}: {r}")),
    }
}

impl AclTable {
    /// Reads and checks plain_acl.yml.
    pub fn load(path: &Path) -> Result<Self, AclError> {
        let size = std::fs::metadata(path)
            .map_err(|e| AclError::Read {
                path: path.into(),
                source: e,
            })?
            .len();
        if size > FILE_SIZE_MAX_BYTES {
            return Err(AclError::TooLarge {
                path: path.into(),
                size,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| AclError::Read {
            path: path.into(),
            source: e,
        })?;
        Self::parse(&text, path)
    }

    /// Checks the text of plain_acl.yml; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, AclError> {
        // An empty file is RocketMQ's "no data": no accounts, every checked request refused.
        let file: PlainAclFile = if text.trim().is_empty() {
            PlainAclFile::default()
        } else {
            let parsed: Option<PlainAclFile> = serde_yaml_ng::from_str(text).map_err(|e| {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                AclError::Syntax {
                    path: path.into(),
                    line,
                    column,
                    reason: e.to_string(),
                }
            })?;
            parsed.unwrap_or_default()
        };
        let invalid = |reason: String| AclError::Invalid {
            path: path.into(),
            reason,
        };
        let global = file
            .global_white_remote_addresses
            .unwrap_or_default()
            .iter()
            .map(|p| {
                AddressPattern::parse(p).map_err(|r| format!("globalWhiteRemoteAddresses: {r}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let mut accounts = HashMap::new();
        for (i, a) in file.accounts.unwrap_or_default().into_iter().enumerate() {
            let key = a.access_key.clone().unwrap_or_default();
            let secret = a.secret_key.unwrap_or_default();
            if key.chars().count() <= KEY_LENGTH_MIN_EXCLUSIVE
                || secret.chars().count() <= KEY_LENGTH_MIN_EXCLUSIVE
            {
                return Err(invalid(format!(
                    "account #{} (`{key}`): accessKey and secretKey must both be longer than {KEY_LENGTH_MIN_EXCLUSIVE} characters",
                    i + 1
                )));
            }
            if accounts.contains_key(&key) {
                return Err(invalid(format!("accessKey `{key}` appears twice")));
            }
            let white = AddressPattern::parse(a.white_remote_address.as_deref().unwrap_or(""))
                .map_err(|r| invalid(format!("account `{key}`: whiteRemoteAddress: {r}")))?;
            let account = Account {
                mac: signature::keyed(&secret),
                white_remote_address: white,
                admin: a.admin,
                default_topic_perm: default_perm(a.default_topic_perm, "defaultTopicPerm", &key)
                    .map_err(invalid)?,
                default_group_perm: default_perm(a.default_group_perm, "defaultGroupPerm", &key)
                    .map_err(invalid)?,
                topics: resource_perms(a.topic_perms, "topicPerms", &key).map_err(invalid)?,
                groups: resource_perms(a.group_perms, "groupPerms", &key).map_err(invalid)?,
                access_key: key.clone(),
            };
            accounts.insert(key, account);
        }
        Ok(Self {
            global_white_remote_addresses: global,
            accounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB
  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    admin: true
";

    #[test]
    fn rocketmqs_sample_file_is_read() {
        let t = AclTable::parse(SAMPLE, Path::new("plain_acl.yml")).unwrap();
        assert_eq!(t.global_white_remote_addresses.len(), 2);
        let a = &t.accounts["RocketMQ"];
        assert_eq!(a.topics["topicB"], perm::PUB | perm::SUB);
        assert_eq!(a.groups["groupA"], perm::DENY);
        assert_eq!(
            (a.default_topic_perm, a.default_group_perm),
            (perm::DENY, perm::SUB)
        );
        assert_eq!(a.white_remote_address, AddressPattern::Nothing);
        let admin = &t.accounts["rocketmq2"];
        assert!(admin.admin && admin.topics.is_empty());
        assert!(
            !format!("{a:?}").contains("12345678"),
            "Debug never shows the secret"
        );
    }

    #[test]
    fn a_malformed_file_names_its_line_and_never_its_secrets() {
        let bad = "accounts:\n  - accessKey: RocketMQ\n    secretKey: s3cretvalue\n   admin: [\n";
        let e = AclTable::parse(bad, Path::new("/etc/plain_acl.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/plain_acl.yml") && e.contains("line 4"),
            "{e}"
        );
        for (text, says) in [
            ("accounts:\n  - accessKey: RocketMQ\n    secretKey: s3cretvalue\n    topicPerms: [t=WRITE]\n", "WRITE"),
            ("accounts:\n  - accessKey: short\n    secretKey: s3cretvalue\n", "longer than 6"),
            ("accounts:\n  - {accessKey: RocketMQ, secretKey: s3cretvalue}\n  - {accessKey: RocketMQ, secretKey: s3cretvalue}\n", "twice"),
            ("globalWhiteRemoteAddresses: [10.0.0.x]\n", "globalWhiteRemoteAddresses"),
        ] {
            let e = AclTable::parse(text, Path::new("p.yml")).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
            assert!(!e.contains("s3cretvalue"), "{e}");
        }
    }

    #[test]
    fn an_empty_file_has_no_accounts() {
        let t = AclTable::parse("\n", Path::new("p.yml")).unwrap();
        assert!(t.accounts.is_empty() && t.global_white_remote_addresses.is_empty());
    }
}
