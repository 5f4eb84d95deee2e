//! The public handle: [`Node`] starts the WAL, transport and driver on the current glommio executor.

use std::rc::Rc;

use bytes::Bytes;

use crate::config::NodeConfig;
use crate::error::{DledgerError, ProposeError};

/// This node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
}

/// A snapshot of the node's Raft state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub commit_index: u64,
    pub last_index: u64,
    pub applied_index: u64,
}

/// One committed entry (only normal, non-empty entries are delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

/// A running Raft node (Rc-shared, `!Send`: it lives on the executor that started it).
pub struct Node {
    _private: (),
}

impl Node {
    /// Opens/recovers the WAL, binds the peer port and starts the node's tasks on the current executor.
    pub async fn start(config: NodeConfig, applied_index: u64) -> Result<Rc<Node>, DledgerError> {
        let _ = (config, applied_index);
        unimplemented!("skeleton")
    }

    /// Leader only: appends `data` as one entry; resolves with its index once committed.
    pub async fn propose(&self, data: Bytes) -> Result<u64, ProposeError> {
        let _ = data;
        unimplemented!("skeleton")
    }

    /// Committed entries in index order; None after shutdown.
    pub async fn next_committed(&self) -> Option<Vec<Committed>> {
        unimplemented!("skeleton")
    }

    /// The state machine has applied up to `index`.
    pub fn applied(&self, index: u64) {
        let _ = index;
        unimplemented!("skeleton")
    }

    pub fn status(&self) -> Status {
        unimplemented!("skeleton")
    }

    /// Resolves whenever role, term or leader changes.
    pub async fn changed(&self) {
        unimplemented!("skeleton")
    }

    pub async fn shutdown(&self) {
        unimplemented!("skeleton")
    }
}
