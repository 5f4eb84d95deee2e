//! A node's configuration: its Raft id, the static peer set and the WAL/timing knobs.
//!
//! Raft ids are 1-based and dense in the broker (`n0 -> 1`, `n1 -> 2`, `n2 -> 3`); the crate only requires them to
//! be distinct and non-zero. Membership is static: the peer list is the voter set on every start.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::DledgerError;
use crate::limits;

/// One member of the Raft group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Raft id, 1-based: n0 -> 1, n1 -> 2, n2 -> 3.
    pub id: u64,
    /// The broker's name for it ("n0"), used in logs.
    pub name: String,
    /// Its peer (Raft) port.
    pub addr: SocketAddr,
}

/// Everything a node needs to start. See the field docs for the broker's values.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub self_id: u64,
    /// Exactly 3 in the broker; the crate itself accepts any odd count >= 1.
    pub peers: Vec<Peer>,
    /// The sidecar Raft log + hard state, this node's alone.
    pub wal_dir: PathBuf,
    /// true: fdatasync the WAL before an entry counts as persisted (SYNC_FLUSH).
    pub sync_wal: bool,
    /// 100.
    pub tick_ms: u64,
    /// 10 (1 s), randomized by raft-rs in [election, 2*election).
    pub election_ticks: usize,
    /// 1.
    pub heartbeat_ticks: usize,
    /// 64 MiB.
    pub wal_segment_bytes: u64,
    /// 256.
    pub max_inflight_msgs: usize,
    /// Refuse proposals bigger than this (4 MiB + headroom).
    pub max_entry_bytes: usize,
    /// WAL bytes kept for a peer that is down or behind, so that it catches up from the log (there are no
    /// snapshots): the leader keeps what any peer lacks, a follower everything it applied (it may lead later),
    /// until the WAL passes this size. 1 GiB.
    pub wal_lagging_retain_bytes: u64,
}

impl NodeConfig {
    /// The broker's defaults for everything but identity and place.
    pub fn new(self_id: u64, peers: Vec<Peer>, wal_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            self_id,
            peers,
            wal_dir,
            sync_wal: false,
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 1,
            wal_segment_bytes: 64 * 1024 * 1024,
            max_inflight_msgs: 256,
            max_entry_bytes: 4 * 1024 * 1024 + 64 * 1024,
            wal_lagging_retain_bytes: 1024 * 1024 * 1024,
        }
    }

    /// This node's own entry in `peers`.
    pub fn self_peer(&self) -> Option<&Peer> {
        self.peers.iter().find(|p| p.id == self.self_id)
    }

    /// Refuses configurations that raft-rs would panic on or that the WAL cannot honour.
    pub fn validate(&self) -> Result<(), DledgerError> {
        let bad = |m: String| Err(DledgerError::Config(m));
        if self.peers.is_empty() || self.peers.len().is_multiple_of(2) {
            return bad(format!(
                "need an odd number of peers >= 1, got {}",
                self.peers.len()
            ));
        }
        if self.peers.len() > limits::PEERS_MAX {
            return bad(format!(
                "{} peers exceed PEERS_MAX ({})",
                self.peers.len(),
                limits::PEERS_MAX
            ));
        }
        for (i, p) in self.peers.iter().enumerate() {
            if p.id == 0 {
                return bad(format!("peer {} has raft id 0 (ids are 1-based)", p.name));
            }
            if self.peers[..i]
                .iter()
                .any(|q| q.id == p.id || q.addr == p.addr)
            {
                return bad(format!("peer {} repeats an id or address", p.name));
            }
        }
        if self.self_peer().is_none() {
            return bad(format!("self_id {} is not among the peers", self.self_id));
        }
        if self.tick_ms == 0
            || self.heartbeat_ticks == 0
            || self.election_ticks <= self.heartbeat_ticks
        {
            return bad(format!(
                "need tick_ms > 0 and election_ticks ({}) > heartbeat_ticks ({}) > 0",
                self.election_ticks, self.heartbeat_ticks
            ));
        }
        if self.max_inflight_msgs == 0 {
            return bad("max_inflight_msgs must be > 0".into());
        }
        if self.max_entry_bytes == 0 || self.max_entry_bytes as u64 > limits::ENTRY_BYTES_MAX {
            return bad(format!(
                "max_entry_bytes {} must be in 1..={} (ENTRY_BYTES_MAX)",
                self.max_entry_bytes,
                limits::ENTRY_BYTES_MAX
            ));
        }
        if self.wal_segment_bytes < limits::WAL_SEGMENT_BYTES_MIN {
            return bad(format!(
                "wal_segment_bytes {} is below WAL_SEGMENT_BYTES_MIN ({})",
                self.wal_segment_bytes,
                limits::WAL_SEGMENT_BYTES_MIN
            ));
        }
        Ok(())
    }
}
