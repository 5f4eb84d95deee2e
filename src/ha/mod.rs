//! Master/slave replication of each shard's commit log: RocketMQ's classic HA (reference §9), per shard.
//!
//! Shard i of a slave process follows shard i of its master process: it connects to the master shard's HA
//! port (`haListenPort`, listenPort + 1 by default, + 4 i), reports the offset its log ends at, and appends
//! what the master ships there, byte for byte ([`apogee_engine`]'s `append_replicated`). The slave builds
//! its own consume queues and key index as a master does, serves pulls and queries, refuses sends, and
//! copies the master's topic table and consumer offsets over the remoting port ([`sync`]).
//!
//! | file | owns |
//! |---|---|
//! | [`master`] | the HA port: one task pair per slave connection (reports in, pushes out) |
//! | [`slave`] | the connection to the master and the appends |
//! | [`sync`] | the slave's periodic copy of topics and consumer offsets |
//! | this file | [`HaMaster`]: how far slaves have acknowledged, and SYNC_MASTER's waiting sends |
//!
//! SYNC_MASTER: a send is answered SEND_OK only once a slave reported an offset past the message's end
//! (group commit across the network: one report completes every send below it); FLUSH_SLAVE_TIMEOUT when
//! that takes longer than `syncFlushTimeout`; SLAVE_NOT_AVAILABLE at once when no slave is connected
//! within `haMaxGapNotInSync` bytes. In every case the message is stored on the master.

pub mod master;
pub mod slave;
pub mod sync;

use std::cell::{Cell, RefCell};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};

/// What a SYNC_MASTER send waiting for its slave ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaveWait {
    Acked,
    /// No slave within `haMaxGapNotInSync`: SLAVE_NOT_AVAILABLE.
    NoSlave,
    /// Not acknowledged within `syncFlushTimeout`: FLUSH_SLAVE_TIMEOUT.
    TimedOut,
}

/// Sends waiting for a slave's acknowledgement, at most (each is also a request in flight, which the
/// shard bounds; this bound makes the table's own size explicit).
pub const SLAVE_WAITERS_MAX: usize = 65_536;

/// A master shard's view of its slaves. Owned by the shard (`!Send`).
#[derive(Default)]
pub struct HaMaster {
    connections: Cell<usize>,
    /// Highest offset a connected slave has reported holding.
    acked: Cell<u64>,
    waiters: RefCell<Vec<(u64, oneshot::Sender<()>)>>,
}

impl HaMaster {
    pub fn connected(&self) {
        self.connections.set(self.connections.get() + 1);
    }

    pub fn disconnected(&self) {
        self.connections
            .set(self.connections.get().saturating_sub(1));
    }

    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// The highest offset a slave has acknowledged.
    pub fn acked_offset(&self) -> u64 {
        self.acked.get()
    }

    /// A slave reports holding everything below `offset`: completes the sends it covers.
    pub fn acked(&self, offset: u64) {
        if offset <= self.acked.get() {
            return;
        }
        self.acked.set(offset);
        self.waiters.borrow_mut().retain_mut(|(end, tx)| {
            if *end <= offset {
                // The send may have timed out and gone: nothing to tell then.
                let (dead, _) = oneshot::channel();
                let _ = std::mem::replace(tx, dead).send(());
                false
            } else {
                true
            }
        });
    }

    /// Whether a slave is close enough for a SYNC_MASTER send to wait for it.
    pub fn slave_ok(&self, master_written: u64, max_gap_bytes: u64) -> bool {
        self.connections.get() > 0
            && master_written.saturating_sub(self.acked.get()) < max_gap_bytes
    }

    /// Waits until a slave holds everything below `end`, for at most `timeout_ms`.
    pub async fn wait_for(
        &self,
        end: u64,
        master_written: u64,
        max_gap_bytes: u64,
        timeout_ms: u64,
    ) -> SlaveWait {
        if self.acked.get() >= end {
            return SlaveWait::Acked;
        }
        if !self.slave_ok(master_written, max_gap_bytes)
            || self.waiters.borrow().len() >= SLAVE_WAITERS_MAX
        {
            return SlaveWait::NoSlave;
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push((end, tx));
        let timeout = glommio::timer::sleep(Duration::from_millis(timeout_ms));
        let outcome = select(rx, Box::pin(timeout)).await;
        let acked = matches!(outcome, Either::Left((Ok(()), _)));
        // Dropping the receiver marks the waiter cancelled, so the table can forget it.
        drop(outcome);
        if acked || self.acked.get() >= end {
            return SlaveWait::Acked;
        }
        self.waiters
            .borrow_mut()
            .retain(|(_, tx)| !tx.is_canceled());
        SlaveWait::TimedOut
    }
}

/// What a slave shard knows about its master, from `haMasterAddress` or the name server's answers.
#[derive(Debug, Default, Clone)]
pub struct MasterInfo {
    /// The master's remoting address (for the metadata copy).
    pub addr: Option<String>,
    /// The master's HA address.
    pub ha_addr: Option<String>,
}
