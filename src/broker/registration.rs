//! Registering with name servers: REGISTER_BROKER to every name server on start, every
//! `register_interval_ms` and soon after a topic is created; UNREGISTER_BROKER on a clean stop.
//!
//! Each call uses its own short connection (once per 30 s per name server: not worth keeping open), with a
//! timeout, so a dead name server delays nothing else.

use std::rc::Rc;
use std::time::Duration;

use apogee_nameserver::transport::StopSignal;
use apogee_net::body::to_json;
use apogee_net::body::topic_config::RegisterBrokerBody;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{RegisterBrokerRequest, RegisterBrokerResponse, UnregisterBrokerRequest};
use apogee_net::{frame, RemotingCommand};
use bytes::BytesMut;
use futures::future::{join_all, select, Either};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use tracing::{debug, info, warn};

use super::Broker;

pub const CALL_TIMEOUT_MS: u64 = 3_000;

/// Sends one request on a new connection and reads its response.
pub async fn call(addr: &str, request: &RemotingCommand) -> std::io::Result<RemotingCommand> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut out = BytesMut::new();
        frame::encode(request, &mut out).map_err(std::io::Error::other)?;
        stream.write_all(&out).await?;
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
        broker_id: broker.config.broker_id,
        zone_name: None,
    }
}

/// Registers with every name server at once; returns how many accepted.
pub async fn register_all(broker: &Rc<Broker>) -> usize {
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: broker.topics.borrow().wrapper(),
        filter_server_list: vec![],
    };
    let mut req =
        RemotingCommand::request(RequestCode::RegisterBroker as i32, 1).with_body(to_json(&body));
    req.ext_fields = header(broker).to_ext();
    let calls = broker.config.namesrv_addr.iter().map(|ns| {
        let req = req.clone();
        async move { (ns, call(ns, &req).await) }
    });
    let mut ok = 0;
    for (ns, r) in join_all(calls).await {
        match r {
            Ok(resp) if resp.code == ResponseCode::Success as i32 => {
                ok += 1;
                debug!(shard = broker.shard, nameserver = %ns, "registered");
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
    let calls = broker.config.namesrv_addr.iter().map(|ns| {
        let req = req.clone();
        async move { (ns, call(ns, &req).await) }
    });
    for (ns, r) in join_all(calls).await {
        if let Err(e) = r {
            warn!(shard = broker.shard, nameserver = %ns, error = %e, "unregistration failed");
        }
    }
}

/// Registers every interval, and within a second of a topic change, until `stop` fires.
pub async fn run(broker: Rc<Broker>, stop: StopSignal) {
    let interval = Duration::from_millis(broker.config.register_interval_ms);
    loop {
        let changed = broker.register_now.notified();
        let tick = glommio::timer::sleep(interval);
        let woke = select(Box::pin(changed), Box::pin(tick));
        match select(woke, stop.clone()).await {
            Either::Right(_) => return,
            Either::Left((Either::Left(_), _)) => {
                // Coalesce a burst of topic creations into one registration.
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
            Either::Left((Either::Right(_), _)) => {}
        }
        register_all(&broker).await;
    }
}
