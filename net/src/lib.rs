//! # apogee-net: the RocketMQ remoting protocol, sans-IO
//!
//! Everything Apogee says on the wire, and the stored message record that a pull answer carries, as plain
//! codecs: no sockets, no runtime. The broker and the name server drive it over glommio sockets, the client
//! over tokio; one implementation, three users.
//!
//! ```text
//! frame := | length: i32 | serialize type: u8 | header length: u24 | header | body |
//!          length = 4 + header length + body length (it does not count itself)
//! ```
//!
//! - [`frame`] cuts frames out of a byte stream and writes them; lengths are checked against
//!   [`limits::FRAME_SIZE_MAX_BYTES`] before anything is allocated.
//! - [`header`] holds the two header encodings (JSON and the ROCKETMQ binary one); a response is written in the
//!   encoding of its request.
//! - [`command`] is the decoded frame: [`command::RemotingCommand`]; its header fields are an
//!   [`ext_fields::ExtFields`], kept in the binary wire layout (a slice of the frame when it came in binary).
//! - [`headers`] turns the flattened `extFields` map into typed request and response headers.
//! - [`body`] holds the JSON bodies (routes, heartbeats, topic tables, cluster info).
//! - [`signature`] is the ACL 1.0 request signature (what RocketMQ's `AclClientRPCHook` signs).
//! - [`record`] is the commit log record layout, the bytes a pull answer carries; [`batch`] the batch
//!   message encoding; [`properties`] the message properties string; [`msgid`] the offset message id.
//!
//! ```
//! use apogee_net::{command::RemotingCommand, codes::RequestCode, frame};
//! use bytes::BytesMut;
//!
//! let request = RemotingCommand::request(RequestCode::GetMaxOffset as i32, 7)
//!     .with_ext("topic", "orders")
//!     .with_ext("queueId", "0");
//! let mut wire = BytesMut::new();
//! frame::encode(&request, &mut wire).unwrap();
//! let decoded = frame::decode(&mut wire).unwrap().unwrap();
//! assert_eq!(decoded.opaque, 7);
//! assert_eq!(decoded.ext("topic"), Some("orders"));
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod batch;
pub mod body;
pub mod codes;
pub mod command;
pub mod error;
pub mod ext_fields;
pub mod filter;
pub mod frame;
pub mod ha;
pub mod header;
pub mod headers;
pub mod limits;
pub mod msgid;
pub mod properties;
pub mod record;
pub mod signature;
pub mod topic;

pub use command::RemotingCommand;
pub use error::{ProtocolError, Result};
