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
    /// Per live connection: its id, the highest offset that slave reported holding, and its address. A
    /// slave that reconnects starts over from what it reports, so a slave that lost bytes never counts them.
    slaves: RefCell<Vec<(u64, u64, String)>>,
    next_id: Cell<u64>,
    waiters: RefCell<Vec<(u64, oneshot::Sender<()>)>>,
}

impl HaMaster {
    /// A slave connected, holding everything below `offset`; returns its connection id.
    pub fn connected(&self, offset: u64, peer: &str) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.slaves.borrow_mut().push((id, offset, peer.to_owned()));
        self.complete_waiters();
        id
    }

    pub fn disconnected(&self, id: u64) {
        self.slaves.borrow_mut().retain(|(c, _, _)| *c != id);
    }

    pub fn connections(&self) -> usize {
        self.slaves.borrow().len()
    }

    /// The highest offset a connected slave holds everything below.
    pub fn acked_offset(&self) -> u64 {
        self.slaves
            .borrow()
            .iter()
            .map(|(_, o, _)| *o)
            .max()
            .unwrap_or(0)
    }

    /// Each connected slave's address and the offset it holds everything below (for the metrics).
    pub fn slave_offsets(&self) -> Vec<(String, u64)> {
        self.slaves
            .borrow()
            .iter()
            .map(|(_, o, p)| (p.clone(), *o))
            .collect()
    }

    /// Slave `id` reports holding everything below `offset`: completes the sends it covers.
    pub fn acked(&self, id: u64, offset: u64) {
        if let Some(slot) = self
            .slaves
            .borrow_mut()
            .iter_mut()
            .find(|(c, _, _)| *c == id)
        {
            slot.1 = offset;
        }
        self.complete_waiters();
    }

    fn complete_waiters(&self) {
        let acked = self.acked_offset();
        self.waiters.borrow_mut().retain_mut(|(end, tx)| {
            if *end <= acked {
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
        self.connections() > 0 && master_written.saturating_sub(self.acked_offset()) < max_gap_bytes
    }

    /// Waits until a slave holds everything below `end`, for at most `timeout_ms`.
    pub async fn wait_for(
        &self,
        end: u64,
        master_written: u64,
        max_gap_bytes: u64,
        timeout_ms: u64,
    ) -> SlaveWait {
        if self.acked_offset() >= end {
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
        if acked || self.acked_offset() >= end {
            return SlaveWait::Acked;
        }
        self.waiters
            .borrow_mut()
            .retain(|(_, tx)| !tx.is_canceled());
        SlaveWait::TimedOut
    }
}

/// Longest a start-up question to a name server may take.
const NAMESRV_CHECK_TIMEOUT_MS: u64 = 3_000;

/// A slave process replicates shard i of its master from its own shard i, so both must run the same number
/// of shards. Asked of the name servers before the shards start: `Err` names both counts when the master
/// (brokers `<brokerName>-<i>` with a brokerId 0 in the cluster) runs another number. When no name server
/// answers or the master is not registered yet there is nothing to compare, and the slave starts.
pub fn check_master_shards(config: &crate::BrokerConfig) -> Result<(), String> {
    if config.broker_role != crate::config::BrokerRole::Slave {
        return Ok(());
    }
    for ns in &config.namesrv_addr {
        let Some(info) = cluster_info(ns) else {
            continue;
        };
        let prefix = format!("{}-", config.broker_name);
        let masters = info
            .cluster_addr_table
            .get(&config.broker_cluster_name)
            .into_iter()
            .flatten()
            .filter(|name| {
                name.strip_prefix(&prefix)
                    .is_some_and(|i| i.parse::<usize>().is_ok())
            })
            .filter(|name| {
                info.broker_addr_table
                    .get(*name)
                    .is_some_and(|b| b.master_addr().is_some())
            })
            .count();
        if masters > 0 && masters != config.shards {
            return Err(format!(
                "this slave runs {} shards but its master {} runs {masters} (per the name server {ns}); \
                 shard i replicates shard i, so start the slave with --shards {masters}",
                config.shards, config.broker_name
            ));
        }
        return Ok(());
    }
    Ok(())
}

/// GET_BROKER_CLUSTER_INFO from one name server, on a plain blocking socket (called before any executor
/// runs); `None` when it does not answer.
fn cluster_info(ns: &str) -> Option<apogee_net::body::cluster::ClusterInfo> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = ns.parse().ok()?;
    let timeout = Duration::from_millis(NAMESRV_CHECK_TIMEOUT_MS);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let req = apogee_net::RemotingCommand::request(
        apogee_net::codes::RequestCode::GetBrokerClusterInfo as i32,
        1,
    );
    let mut out = bytes::BytesMut::new();
    apogee_net::frame::encode(&req, &mut out).ok()?;
    stream.write_all(&out).ok()?;
    let mut buf = bytes::BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(resp) = apogee_net::frame::decode(&mut buf).ok()? {
            return apogee_net::body::from_json(&resp.body).ok();
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
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
