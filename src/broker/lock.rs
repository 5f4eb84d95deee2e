//! LOCK_BATCH_MQ / UNLOCK_BATCH_MQ: broker-side queue locks for ordered consumption. A lock belongs to one
//! client of a group and expires `rebalanceLockMaxLiveTime` ([`LOCK_EXPIRY_MS_DEFAULT`]) after its last
//! renewal (clients renew every 20 s); a second client never gets a queue whose lock is alive.

use std::collections::HashMap;
use std::rc::Rc;

use apogee_net::body::heartbeat::{LockBatchRequestBody, LockBatchResponseBody, MessageQueue};
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::ResponseCode;
use apogee_net::RemotingCommand;

use super::{now_ms, Broker};

/// RocketMQ's default `rebalanceLockMaxLiveTime`.
pub const LOCK_EXPIRY_MS_DEFAULT: u64 = 60_000;
/// Locks one shard holds at most.
pub const LOCKS_MAX: usize = 100_000;

pub struct LockTable {
    /// (group, queue) → (client id, last renewal ms).
    locks: HashMap<(String, MessageQueue), (String, u64)>,
    expiry_ms: u64,
}

impl LockTable {
    pub fn new(expiry_ms: u64) -> Self {
        Self {
            locks: HashMap::new(),
            expiry_ms,
        }
    }

    /// Locks what is free, expired or already ours; returns what this client now holds.
    pub fn lock(
        &mut self,
        group: &str,
        client: &str,
        mqs: &[MessageQueue],
        now: u64,
    ) -> Vec<MessageQueue> {
        if self.locks.len() >= LOCKS_MAX {
            let expiry = self.expiry_ms;
            self.locks
                .retain(|_, (_, t)| now.saturating_sub(*t) <= expiry);
        }
        let mut ok = Vec::new();
        for mq in mqs {
            let key = (group.to_owned(), mq.clone());
            let free = match self.locks.get(&key) {
                None => self.locks.len() < LOCKS_MAX,
                Some((owner, t)) => owner == client || now.saturating_sub(*t) > self.expiry_ms,
            };
            if free {
                self.locks.insert(key, (client.to_owned(), now));
                ok.push(mq.clone());
            }
        }
        ok
    }

    pub fn unlock(&mut self, group: &str, client: &str, mqs: &[MessageQueue]) {
        for mq in mqs {
            let key = (group.to_owned(), mq.clone());
            if self
                .locks
                .get(&key)
                .is_some_and(|(owner, _)| owner == client)
            {
                self.locks.remove(&key);
            }
        }
    }
}

pub fn lock(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let body: LockBatchRequestBody = match from_json(&req.body) {
        Ok(b) => b,
        Err(e) => return req.error_to(ResponseCode::SystemError, format!("bad lock body: {e}")),
    };
    let ok = broker.locks.borrow_mut().lock(
        &body.consumer_group,
        &body.client_id,
        &body.mq_set,
        now_ms(),
    );
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&LockBatchResponseBody { lock_ok_mq_set: ok }))
}

pub fn unlock(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let body: LockBatchRequestBody = match from_json(&req.body) {
        Ok(b) => b,
        Err(e) => return req.error_to(ResponseCode::SystemError, format!("bad unlock body: {e}")),
    };
    broker
        .locks
        .borrow_mut()
        .unlock(&body.consumer_group, &body.client_id, &body.mq_set);
    req.response_to(ResponseCode::Success, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(id: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: id,
        }
    }

    #[test]
    fn a_lock_is_exclusive_until_it_expires() {
        let mut t = LockTable::new(LOCK_EXPIRY_MS_DEFAULT);
        assert_eq!(t.lock("g", "c1", &[mq(0), mq(1)], 0).len(), 2);
        assert!(t.lock("g", "c2", &[mq(0)], 1000).is_empty());
        assert_eq!(
            t.lock("g", "c1", &[mq(0)], 1000).len(),
            1,
            "the owner renews"
        );
        assert_eq!(
            t.lock("g", "c2", &[mq(1)], LOCK_EXPIRY_MS_DEFAULT + 1)
                .len(),
            1,
            "expired locks are taken over"
        );
        t.unlock("g", "c1", &[mq(0)]);
        assert_eq!(t.lock("g", "c2", &[mq(0)], 2000).len(), 1);
    }
}
