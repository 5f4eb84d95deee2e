//! The role watcher: follows the Raft node's role, term and leader, decides when a leader may take sends,
//! and re-registers with the name servers at once on every change.
//!
//! A new leader may hold committed entries it has not applied yet (they were committed in an earlier
//! term, or committed by the old leader and only now delivered here). It proposes a barrier (an entry
//! without records, [`super::entry::encode_barrier`]) and becomes writable once it applied it: entries
//! apply in index order, so every entry before the barrier is in its commit log by then, and the queue
//! offsets it assigns next follow them. Writable is tied to the term: a leader deposed and elected again
//! proposes a new barrier.
//!
//! Re-registration: the writable leader registers as brokerId 0 (master), the others with their Raft id,
//! as soon as the role changes, and once more [`REREGISTER_AFTER_MS`] later so that a follower that
//! registered before the new leader learns the new master's address from the name servers' answer.

use std::rc::Rc;
use std::time::Duration;

use apogee_dledger::Role;
use apogee_transport::StopSignal;
use futures::channel::oneshot;
use futures::future::{select, Either};
use tracing::{info, warn};

use super::{entry, Dledger, APPLY_WAIT_MAX_MS};
use crate::broker::{registration, Broker};

/// A second registration this long after a role change.
pub const REREGISTER_AFTER_MS: u64 = 1_500;
/// The watcher looks at the node at least this often, news or not.
const POLL_MS: u64 = 500;

/// What changed, as the watcher tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    writable: bool,
    role: Role,
    term: u64,
    leader: Option<u64>,
}

/// Watches until `stop`.
pub async fn run(broker: Rc<Broker>, d: Rc<Dledger>, stop: StopSignal) {
    let mut seen: Option<Seen> = None;
    let mut reregister_at: Option<std::time::Instant> = None;
    loop {
        let s = d.node.status();
        if s.role == Role::Leader && d.writable_term.get() != s.term && d.failed.borrow().is_none()
        {
            match barrier(&broker, &d, &stop).await {
                Ok(index) => {
                    let now = d.node.status();
                    if now.role == Role::Leader && now.term == s.term {
                        d.writable_term.set(s.term);
                        info!(shard = broker.shard, group = %d.group, term = s.term, barrier = index, "Dledger: leader applied its whole log; taking sends");
                    }
                }
                Err(e) => {
                    warn!(shard = broker.shard, group = %d.group, term = s.term, error = %e, "Dledger: leader barrier not applied; trying again");
                }
            }
        }
        let s = d.node.status();
        let now = Seen {
            writable: d.is_writable(),
            role: s.role,
            term: s.term,
            leader: s.leader_id,
        };
        if seen != Some(now) {
            if seen.map(|x| x.writable) != Some(now.writable)
                || seen.map(|x| x.leader) != Some(now.leader)
            {
                info!(
                    shard = broker.shard,
                    group = %d.group,
                    role = ?now.role,
                    term = now.term,
                    leader = %d.leader_text(),
                    broker_id = d.broker_id(),
                    writable = now.writable,
                    "Dledger role changed; registering"
                );
                registration::register_all(&broker).await;
                reregister_at =
                    Some(std::time::Instant::now() + Duration::from_millis(REREGISTER_AFTER_MS));
            }
            seen = Some(now);
            continue;
        }
        if reregister_at.is_some_and(|t| std::time::Instant::now() >= t) {
            reregister_at = None;
            registration::register_all(&broker).await;
        }
        let changed = d.node.changed();
        let news = d.role_news.notified();
        let tick = glommio::timer::sleep(Duration::from_millis(POLL_MS));
        let woke = select(Box::pin(changed), select(Box::pin(news), Box::pin(tick)));
        // `stop` first: after the node shuts down, `changed` is ready at once and would win every time.
        if let Either::Left(_) = select(stop.clone(), woke).await {
            return;
        }
        if broker.stopping.get() {
            return;
        }
    }
}

/// Proposes a barrier and waits until this node applied it; returns its index.
async fn barrier(broker: &Broker, d: &Dledger, stop: &StopSignal) -> Result<u64, String> {
    let id = d.next_proposal_id();
    let (tx, rx) = oneshot::channel();
    d.waiters.borrow_mut().insert(id, tx);
    let data = entry::encode_barrier(id, broker.engine.config().store_host);
    let index = match d.node.propose(data).await {
        Ok(i) => i,
        Err(e) => {
            d.waiters.borrow_mut().remove(&id);
            return Err(format!("{e}"));
        }
    };
    let timeout = glommio::timer::sleep(Duration::from_millis(APPLY_WAIT_MAX_MS));
    let stopping = stop.clone();
    match select(rx, select(Box::pin(timeout), stopping)).await {
        Either::Left((Ok(_), _)) => Ok(index),
        Either::Left((Err(_), _)) => Err("the apply task stopped".into()),
        Either::Right((Either::Right(_), _)) => {
            d.waiters.borrow_mut().remove(&id);
            Err("the shard is stopping".into())
        }
        Either::Right((Either::Left(_), _)) => {
            d.waiters.borrow_mut().remove(&id);
            Err(format!(
                "barrier {index} committed but not applied within {APPLY_WAIT_MAX_MS} ms"
            ))
        }
    }
}
