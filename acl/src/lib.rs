//! # apogee-acl: RocketMQ's ACL 1.0 on Apogee's servers
//!
//! With `aclEnable=true`, every request a broker serves, and every request that changes a name server's
//! state, is checked as RocketMQ's `PlainAccessValidator` checks it: the `AccessKey`, `Signature`
//! (HmacSHA1 over the sorted header fields and the body, [`apogee_net::signature`]) and optional
//! `SecurityToken` header fields, the account's permissions on the topics and groups the request touches,
//! admin-only request codes, and the white lists of plain_acl.yml. A refused request is answered
//! NO_PERMISSION with RocketMQ's remark.
//!
//! - [`table`]: plain_acl.yml → [`AclTable`] (accounts keyed by access key, secrets only as keyed MACs).
//! - [`address`]: the white list patterns (`192.168.1.*`, `192.168.1.{1,2}`, `10.0.0.1-200`, lists).
//! - [`perm`]: DENY / PUB / SUB bits and RocketMQ's rule for combining them.
//! - [`check`]: which resources a request touches, and the order of the checks ([`AclTable::check`]).
//! - [`reload`]: the table shared by the shards ([`SharedAcl`]), reloaded off the shard threads when the
//!   file changes, and each shard's lock-free view of it ([`ShardAcl`]).
//!
//! Plain Rust, no runtime: the servers call [`ShardAcl::with`] from their request dispatch.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod address;
pub mod check;
pub mod perm;
pub mod reload;
pub mod table;

pub use check::{Refusal, Scope};
pub use reload::{ShardAcl, SharedAcl};
pub use table::{AclError, AclTable};
