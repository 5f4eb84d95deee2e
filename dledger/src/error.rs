//! The crate's error types: one for starting/running a node ([`DledgerError`]), one for a proposal's outcome
//! ([`ProposeError`]). Variants carry the path, offset, address or limit involved, so a log line is enough to act.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a node could not start (or its WAL could not be read/written).
#[derive(Debug, thiserror::Error)]
pub enum DledgerError {
    /// A file-system call failed on `path`.
    #[error("dledger I/O on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The WAL or hard-state file holds bytes that cannot be what this crate wrote (not a torn tail).
    #[error("dledger WAL corrupt in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The [`crate::NodeConfig`] is unusable (the message says which field and why).
    #[error("dledger config: {0}")]
    Config(String),
    /// The peer port could not be bound.
    #[error("dledger cannot bind peer port {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why a proposal did not commit. None of these means the entry is durable; `Superseded` and `NotLeader` mean it
/// will never be delivered by `next_committed` under the index it was proposed at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader (or stopped being it before the entry committed). `leader_id` is the leader
    /// this node knows of, if any.
    #[error("not the Raft leader (leader: {leader_id:?})")]
    NotLeader { leader_id: Option<u64> },
    /// The entry's index was overwritten by an entry of another term (it was truncated away after a leader
    /// change).
    #[error("the proposed entry was superseded by another leader's entry at its index")]
    Superseded,
    /// The payload exceeds `NodeConfig::max_entry_bytes`.
    #[error("proposal of {bytes} bytes exceeds max_entry_bytes ({max} bytes)")]
    TooLarge { bytes: usize, max: usize },
    /// The node was shut down (or its driver stopped on a WAL error).
    #[error("the dledger node is stopped")]
    Stopped,
}
