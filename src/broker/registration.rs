//! Registering with name servers: REGISTER_BROKER to every name server on start and every
//! `register_interval_ms` (the whole topic table), an increment at once when topics are created or changed
//! (only those topics, as RocketMQ 5's `registerIncrementBrokerData`), and UNREGISTER_BROKER on a clean stop.
//!
//! A send that auto-creates a topic only wakes the registration task ([`Broker::register_now`]): the send
//! path never waits for a name server. Changes made while a registration is on the wire go out together in
//! the next increment, so a burst of topic creations costs a few registrations, not one each.
//!
//! Each call uses its own short connection (once per 30 s per name server: not worth keeping open), with a
//! timeout, so a dead name server delays nothing else.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use apogee_net::body::to_json;
use apogee_net::body::topic_config::{
    RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper,
};
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{RegisterBrokerRequest, RegisterBrokerResponse, UnregisterBrokerRequest};
use apogee_net::{frame, RemotingCommand};
use apogee_transport::tls::{self, TlsClient};
use apogee_transport::StopSignal;
use bytes::BytesMut;
use futures::future::{join_all, select, Either};
use futures::io::AsyncReadExt;
use glommio::net::TcpStream;
use tracing::{debug, info, warn};

use super::Broker;

pub const CALL_TIMEOUT_MS: u64 = 3_000;

/// Sends one request on a new connection (TLS when `tls` is given) and reads its response.
pub async fn call(
    tls: Option<&TlsClient>,
    addr: &str,
    request: &RemotingCommand,
) -> std::io::Result<RemotingCommand> {
    let work = async {
        let stream = TcpStream::connect(crate::resolve::resolve(addr).await?).await?;
        let mut stream = tls::connect(stream, tls, addr).await?;
        let mut out = BytesMut::new();
        frame::encode(request, &mut out).map_err(std::io::Error::other)?;
        tls::send_all(&mut stream, &out).await?;
        let mut buf = BytesMut::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            if let Some(r) = frame::decode(&mut buf).map_err(std::io::Error::other)? {
                if r.opaque == request.opaque {
                    return Ok(r);
                }
                continue;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "name server closed the connection",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let timeout = glommio::timer::sleep(Duration::from_millis(CALL_TIMEOUT_MS));
    match select(Box::pin(work), Box::pin(timeout)).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from {addr} in {CALL_TIMEOUT_MS} ms"),
        )),
    }
}

fn header(broker: &Broker) -> RegisterBrokerRequest {
    RegisterBrokerRequest {
        broker_name: broker.name.clone(),
        broker_addr: broker.addr.clone(),
        cluster_name: broker.config.broker_cluster_name.clone(),
        ha_server_addr: broker.config.shard_ha_addr(broker.shard),
        broker_id: broker.broker_id(),
        zone_name: None,
    }
}

/// Registers the whole topic table with every name server at once; returns how many accepted.
pub async fn register_all(broker: &Rc<Broker>) -> usize {
    let wrapper = broker.topics.borrow().wrapper();
    register(broker, wrapper, "registered").await
}

/// Registers only `topics` (created or changed since the name servers last heard of them).
pub async fn register_increment(
    broker: &Rc<Broker>,
    topics: BTreeMap<String, TopicConfig>,
) -> usize {
    let wrapper = TopicConfigSerializeWrapper {
        topic_config_table: topics,
        data_version: broker.topics.borrow().version.clone(),
        ..Default::default()
    };
    register(broker, wrapper, "registered topic increment").await
}

async fn register(broker: &Rc<Broker>, wrapper: TopicConfigSerializeWrapper, what: &str) -> usize {
    let topics = wrapper.topic_config_table.len();
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: wrapper,
        filter_server_list: vec![],
    };
    let mut req =
        RemotingCommand::request(RequestCode::RegisterBroker as i32, 1).with_body(to_json(&body));
    req.ext_fields = header(broker).to_ext();
    let tls = broker.tls_client.as_ref();
    let calls = broker.config.namesrv_addr.iter().map(|ns| {
        let req = req.clone();
        async move { (ns, call(tls, ns, &req).await) }
    });
    let mut ok = 0;
    for (ns, r) in join_all(calls).await {
        match r {
            Ok(resp) if resp.code == ResponseCode::Success as i32 => {
                ok += 1;
                debug!(shard = broker.shard, nameserver = %ns, topics, "{what}");
                if broker.is_slave() {
                    learn_master(broker, &resp);
                }
            }
            Ok(resp) => {
                warn!(shard = broker.shard, nameserver = %ns, code = resp.code, remark = ?resp.remark, "registration refused")
            }
            Err(e) => {
                warn!(shard = broker.shard, nameserver = %ns, error = %e, "registration failed")
            }
        }
    }
    ok
}

/// A slave learns its master's addresses from a registration answer (`masterAddr`, `haServerAddr`).
fn learn_master(broker: &Broker, resp: &RemotingCommand) {
    let Ok(h) = RegisterBrokerResponse::from_ext(&resp.ext_fields) else {
        return;
    };
    let non_empty = |s: Option<String>| s.filter(|a| !a.is_empty());
    let (addr, ha_addr) = (non_empty(h.master_addr), non_empty(h.ha_server_addr));
    let mut m = broker.master.borrow_mut();
    if addr.is_some() && (m.addr != addr || m.ha_addr != ha_addr) {
        info!(shard = broker.shard, master = ?addr, ha = ?ha_addr, "master known");
    }
    if addr.is_some() {
        m.addr = addr;
        m.ha_addr = ha_addr;
    }
}

pub async fn unregister_all(broker: &Rc<Broker>) {
    let h = header(broker);
    let mut req = RemotingCommand::request(RequestCode::UnregisterBroker as i32, 2);
    req.ext_fields = UnregisterBrokerRequest {
        broker_name: h.broker_name,
        broker_addr: h.broker_addr,
        cluster_name: h.cluster_name,
        broker_id: h.broker_id,
    }
    .to_ext();
    let tls = broker.tls_client.as_ref();
    let calls = broker.config.namesrv_addr.iter().map(|ns| {
        let req = req.clone();
        async move { (ns, call(tls, ns, &req).await) }
    });
    for (ns, r) in join_all(calls).await {
        if let Err(e) = r {
            warn!(shard = broker.shard, nameserver = %ns, error = %e, "unregistration failed");
        }
    }
}

/// Topics whose config differs from what the name servers were last told.
fn changed_topics(
    broker: &Broker,
    told: &BTreeMap<String, TopicConfig>,
) -> BTreeMap<String, TopicConfig> {
    broker
        .topics
        .borrow()
        .topics
        .iter()
        .filter(|(name, cfg)| told.get(*name) != Some(*cfg))
        .map(|(name, cfg)| (name.clone(), cfg.clone()))
        .collect()
}

/// Registers the whole table every interval, and an increment as soon as topics change, until `stop`
/// fires. Runs after the start-up registration ([`register_all`]).
pub async fn run(broker: Rc<Broker>, stop: StopSignal) {
    let interval = Duration::from_millis(broker.config.register_interval_ms);
    // What the name servers were last told (the start-up registration sent the whole table).
    let mut told = broker.topics.borrow().topics.clone();
    let mut next_full = std::time::Instant::now() + interval;
    loop {
        // Created before the table is read: a change made after this point wakes the wait below, and one
        // made while the last registration was on the wire is already in `increment`.
        let changed = broker.register_now.notified();
        let now = std::time::Instant::now();
        if now >= next_full {
            told = broker.topics.borrow().topics.clone();
            next_full = now + interval;
            register_all(&broker).await;
            continue;
        }
        let increment = changed_topics(&broker, &told);
        if !increment.is_empty() {
            told.extend(increment.iter().map(|(k, v)| (k.clone(), v.clone())));
            register_increment(&broker, increment).await;
            continue;
        }
        let tick = glommio::timer::sleep(next_full - now);
        if let Either::Right(_) =
            select(select(Box::pin(changed), Box::pin(tick)), stop.clone()).await
        {
            return;
        }
    }
}
