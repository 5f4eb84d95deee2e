//! A slave's copy of its master's metadata (RocketMQ's `SlaveSynchronize`): the topic table, the
//! consumer offsets, the subscription groups and the delay scheduler's progress, read over the master's remoting port every [`SLAVE_SYNC_INTERVAL_MS`] (and every
//! second until the first copy succeeds), so that a slave serves pulls and offsets for every topic when
//! its master is gone.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use apogee_net::body::delay_offset::DelayOffsetTable;
use apogee_net::body::from_json;
use apogee_net::body::subscription_group::SubscriptionGroupWrapper;
use apogee_net::body::topic_config::TopicConfigSerializeWrapper;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;
use apogee_transport::StopSignal;
use futures::future::{select, Either};
use serde::Deserialize;
use tracing::{debug, warn};

use crate::broker::{registration, Broker};

/// How often a slave copies its master's metadata (RocketMQ: 10 s).
pub const SLAVE_SYNC_INTERVAL_MS: u64 = 10_000;
/// How often it tries until the first copy succeeds.
const FIRST_SYNC_RETRY_MS: u64 = 1_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetTable {
    #[serde(default)]
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Copies until `stop`.
pub async fn run(broker: Rc<Broker>, stop: StopSignal) {
    let mut synced_once = false;
    loop {
        let wait = if synced_once {
            SLAVE_SYNC_INTERVAL_MS
        } else {
            FIRST_SYNC_RETRY_MS
        };
        let tick = glommio::timer::sleep(Duration::from_millis(wait));
        if let Either::Right(_) = select(Box::pin(tick), stop.clone()).await {
            return;
        }
        // Dledger mode: only while this node is not the leader that takes sends.
        if !broker.is_slave() {
            continue;
        }
        let Some(master) = broker.master.borrow().addr.clone() else {
            continue;
        };
        if master == broker.addr {
            continue; // a stale answer naming this node, from when it led
        }
        match sync_once(&broker, &master).await {
            Ok(()) => synced_once = true,
            Err(e) => {
                if synced_once {
                    warn!(shard = broker.shard, master = %master, error = %e, "cannot copy the master's metadata")
                } else {
                    debug!(shard = broker.shard, master = %master, error = %e, "first metadata copy failed")
                }
            }
        }
    }
}

async fn ask(broker: &Broker, master: &str, code: RequestCode) -> Result<RemotingCommand, String> {
    let req = RemotingCommand::request(code as i32, 1);
    let r = registration::call(broker.tls_client.as_ref(), master, &req)
        .await
        .map_err(|e| format!("{code:?}: {e}"))?;
    if r.code != ResponseCode::Success as i32 {
        return Err(format!("{code:?} answered {}: {:?}", r.code, r.remark));
    }
    Ok(r)
}

async fn sync_once(broker: &Rc<Broker>, master: &str) -> Result<(), String> {
    let topics = ask(broker, master, RequestCode::GetAllTopicConfig).await?;
    let wrapper: TopicConfigSerializeWrapper =
        serde_json::from_slice(&topics.body).map_err(|e| format!("topic table: {e}"))?;
    let changed = broker.topics.borrow_mut().replace_from_master(wrapper);
    if let Some(ticket) = changed {
        crate::broker::topics::durable(broker, ticket)
            .await
            .map_err(|e| e.to_string())?;
    }
    let offsets = ask(broker, master, RequestCode::GetAllConsumerOffset).await?;
    let table: OffsetTable =
        serde_json::from_slice(&offsets.body).map_err(|e| format!("consumer offsets: {e}"))?;
    for (key, queues) in table.offset_table {
        let Some((topic, group)) = key.split_once('@') else {
            continue;
        };
        for (queue_id, offset) in queues {
            // The master holds at most as many; a slave whose own table is fuller says so.
            if let Err(e) = broker.engine.commit_offset(topic, group, queue_id, offset) {
                tracing::warn!(topic, group, queue_id, error = %e, "master's consumer offset not copied");
            }
        }
    }
    let groups = ask(broker, master, RequestCode::GetAllSubscriptionGroupConfig).await?;
    let groups: SubscriptionGroupWrapper =
        from_json(&groups.body).map_err(|e| format!("subscription groups: {e}"))?;
    let changed = broker.groups.borrow_mut().replace_from_master(groups);
    if let Some(ticket) = changed {
        crate::broker::subscription_groups::durable(broker, ticket)
            .await
            .map_err(|e| e.to_string())?;
    }
    let delay = ask(broker, master, RequestCode::GetAllDelayOffset).await?;
    let delay: DelayOffsetTable =
        from_json(&delay.body).map_err(|e| format!("delay offsets: {e}"))?;
    broker
        .schedule
        .replace_from_master(delay)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
