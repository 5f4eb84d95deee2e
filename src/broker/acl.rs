//! The ACL check in front of every request a shard serves (`aclEnable=true`): the shard's view of the
//! accounts ([`apogee_acl::ShardAcl`]) and the refusal log.
//!
//! A refused request is answered NO_PERMISSION with RocketMQ's remark and logged with the peer, the
//! request code, the access key and the refused resource; never the secret or the signature. Refusal
//! logs are bounded per shard ([`REFUSAL_LOGS_PER_SECOND_MAX`]), so that a flood of unsigned requests
//! cannot flood the log; the rest are counted and the count is logged with the next logged refusal.

use std::cell::Cell;

use apogee_acl::{Scope, ShardAcl};
use apogee_net::codes::ResponseCode;
use apogee_net::RemotingCommand;
use apogee_transport::Conn;
use tracing::warn;

/// Refusals one shard logs per second at most.
pub const REFUSAL_LOGS_PER_SECOND_MAX: u32 = 20;

/// One shard's ACL: the accounts and the refusal log's budget.
pub struct BrokerAcl {
    accounts: ShardAcl,
    /// (second of the current budget, refusals logged in it, refusals not logged since the last log).
    budget: Cell<(u64, u32, u64)>,
}

impl BrokerAcl {
    pub fn new(accounts: ShardAcl) -> Self {
        Self {
            accounts,
            budget: Cell::new((0, 0, 0)),
        }
    }

    /// `None` if `req` may go on; else the answer refusing it.
    pub fn check(
        &self,
        shard: usize,
        conn: &Conn,
        req: &RemotingCommand,
    ) -> Option<RemotingCommand> {
        let refusal = self
            .accounts
            .with(|t| t.check(req, conn.peer.ip(), Scope::Broker))
            .err()?;
        let second = super::now_ms() / 1000;
        let (mut at, mut logged, mut skipped) = self.budget.get();
        if at != second {
            (at, logged) = (second, 0);
        }
        if logged < REFUSAL_LOGS_PER_SECOND_MAX {
            warn!(
                shard,
                peer = %conn.peer,
                request = req.code,
                access_key = refusal.access_key.as_deref().unwrap_or("-"),
                resource = refusal.resource.as_deref().unwrap_or("-"),
                remark = %refusal.remark,
                unlogged_before = skipped,
                "request refused by ACL"
            );
            logged += 1;
            skipped = 0;
        } else {
            skipped += 1;
        }
        self.budget.set((at, logged, skipped));
        Some(req.error_to(ResponseCode::NoPermission, refusal.remark))
    }
}
