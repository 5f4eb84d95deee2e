//! HEART_BEAT, UNREGISTER_CLIENT and GET_CONSUMER_LIST_BY_GROUP: the client table's inputs and answer.

use std::rc::Rc;

use apogee_net::body::heartbeat::{ConsumerListBody, HeartbeatData};
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::ResponseCode;
use apogee_net::headers::{ConsumerGroupRequest, UnregisterClientRequest};
use apogee_net::RemotingCommand;
use apogee_transport::Conn;

use tracing::warn;

use super::{now_ms, Broker};

pub fn heartbeat(broker: &Rc<Broker>, conn: &Rc<Conn>, req: &RemotingCommand) -> RemotingCommand {
    let data: HeartbeatData = match from_json(&req.body) {
        Ok(d) => d,
        Err(e) => {
            return req.error_to(
                ResponseCode::SystemError,
                format!("bad heartbeat body: {e}"),
            )
        }
    };
    let hello = super::clients::Hello {
        conn,
        now: now_ms(),
        language: req.language.name(),
        version: req.version,
    };
    let mut changed = Vec::new();
    {
        let mut clients = broker.clients.borrow_mut();
        for p in &data.producer_data_set {
            if !clients.producer_heartbeat(&p.group_name, &data.client_id, &hello) {
                return req.error_to(ResponseCode::SystemBusy, "client table is full");
            }
        }
        for c in &data.consumer_data_set {
            match clients.consumer_heartbeat(c, &data.client_id, &hello) {
                None => return req.error_to(ResponseCode::SystemBusy, "client table is full"),
                Some(true) => changed.push(c.group_name.clone()),
                Some(false) => {}
            }
        }
    }
    for c in &data.consumer_data_set {
        super::filter::register(broker, &c.group_name, &c.subscription_data_set);
    }
    for c in &data.consumer_data_set {
        // RocketMQ finds (or auto-creates) the group and creates its retry topic on every heartbeat.
        match super::subscription_groups::find_or_create(broker, &c.group_name) {
            Ok(Some(config)) => {
                if let Err(e) = super::subscription_groups::ensure_retry_topic(broker, &config) {
                    warn!(shard = broker.shard, group = %c.group_name, error = %e, "retry topic not created");
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(shard = broker.shard, group = %c.group_name, error = %e, "subscription group not created")
            }
        }
    }
    for g in changed {
        broker.notify_group_changed(&g);
    }
    req.response_to(ResponseCode::Success, None)
}

pub fn unregister(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match UnregisterClientRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    let changed = broker.clients.borrow_mut().unregister(
        &h.client_id,
        h.producer_group.as_deref(),
        h.consumer_group.as_deref(),
    );
    for g in changed {
        broker.notify_group_changed(&g);
    }
    req.response_to(ResponseCode::Success, None)
}

pub fn consumer_list(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let group = match ConsumerGroupRequest::from_ext(&req.ext_fields) {
        Ok(h) => h.consumer_group,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    let ids = broker.clients.borrow().consumer_ids(&group);
    if ids.is_empty() {
        return req.error_to(
            ResponseCode::SystemError,
            format!("no consumer for this group, {group}"),
        );
    }
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&ConsumerListBody {
            consumer_id_list: ids,
        }))
}
