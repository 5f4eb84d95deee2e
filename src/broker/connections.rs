//! Who is connected: GET_CONSUMER_CONNECTION_LIST and GET_PRODUCER_CONNECTION_LIST (from the client
//! table that heartbeats fill, [`super::clients`]), and GET_CONSUMER_RUNNING_INFO, which the broker
//! forwards to the consumer itself over the consumer's own connection, as RocketMQ does.

use std::rc::Rc;
use std::time::Duration;

use apogee_net::body::ops::{Connection, ConsumerConnection, ProducerConnection};
use apogee_net::body::to_json;
use apogee_net::codes::ResponseCode;
use apogee_net::headers::{ConsumerGroupRequest, ConsumerRunningInfoRequest, ProducerGroupRequest};
use apogee_net::RemotingCommand;

use super::clients::ClientEntry;
use super::Broker;

/// How long a consumer has to answer a forwarded GET_CONSUMER_RUNNING_INFO.
pub const RUNNING_INFO_TIMEOUT_MS: u64 = 5_000;

fn connection(client_id: &str, e: &ClientEntry) -> Connection {
    Connection {
        client_id: client_id.to_owned(),
        client_addr: e.conn.peer.to_string(),
        language: e.language.clone(),
        version: e.version,
    }
}

pub fn consumers(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let group = match ConsumerGroupRequest::from_ext(&req.ext_fields) {
        Ok(h) => h.consumer_group,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    let clients = broker.clients.borrow();
    let Some(g) = clients.consumers.get(&group) else {
        return req.error_to(
            ResponseCode::ConsumerNotOnline,
            format!("the consumer group[{group}] not online"),
        );
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let body = ConsumerConnection {
        connection_set: g.members.iter().map(|(id, e)| connection(id, e)).collect(),
        subscription_table: g
            .subscriptions
            .iter()
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect(),
        consume_type: non_empty(&g.consume_type),
        message_model: non_empty(&g.message_model),
        consume_from_where: non_empty(&g.consume_from_where),
    };
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&body))
}

pub fn producers(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let group = match ProducerGroupRequest::from_ext(&req.ext_fields) {
        Ok(h) => h.producer_group,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    let clients = broker.clients.borrow();
    let Some(members) = clients.producers.get(&group) else {
        return req.error_to(
            ResponseCode::SystemError,
            format!("the producer group[{group}] not exist"),
        );
    };
    let body = ProducerConnection {
        connection_set: members.iter().map(|(id, e)| connection(id, e)).collect(),
    };
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&body))
}

/// GET_CONSUMER_RUNNING_INFO: the same request, sent to the named consumer; its answer, as it is.
pub async fn running_info(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match ConsumerRunningInfoRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    let conn = broker
        .clients
        .borrow()
        .consumers
        .get(&h.consumer_group)
        .and_then(|g| g.members.get(&h.client_id))
        .map(|e| e.conn.clone());
    let Some(conn) = conn else {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "The Consumer <{}> <{}> not online",
                h.consumer_group, h.client_id
            ),
        );
    };
    let mut ask = RemotingCommand::request(req.code, 0).with_ext_fields(h.to_ext());
    ask.serialize_type = apogee_net::header::SerializeType::Json;
    match conn
        .call(ask, Duration::from_millis(RUNNING_INFO_TIMEOUT_MS))
        .await
    {
        Ok(answer) => {
            let mut r = req.response_to(ResponseCode::Success, answer.remark.clone());
            r.code = answer.code;
            r.body = answer.body;
            r
        }
        Err(e) => req.error_to(
            ResponseCode::SystemError,
            format!(
                "consumer {} of {} did not give its running info: {e}",
                h.client_id, h.consumer_group
            ),
        ),
    }
}
