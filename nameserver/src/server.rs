//! The name server process: one glommio executor serving the [`Registry`].

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_acl::check::NAMESRV_ADMIN_CODES;
use apogee_acl::{Scope, ShardAcl, SharedAcl};
use apogee_net::body::ops::KvTable;
use apogee_net::body::topic_config::{RegisterBrokerBody, TopicConfigSerializeWrapper, TopicList};
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{
    AddWritePermResponse, BrokerNameRequest, ClusterRequest, KvConfigRequest, KvConfigResponse,
    KvNamespaceRequest, PutKvConfigRequest, RegisterBrokerRequest, RegisterBrokerResponse,
    RouteRequest, TopicRequest, UnregisterBrokerRequest, WipeWritePermResponse,
};
use apogee_net::RemotingCommand;
use glommio::net::TcpListener;
use tracing::{info, warn};

use crate::kv::KvConfig;
use crate::registry::Registry;
use apogee_transport::{self as transport, Conn, Limits, Service, StopSignal};

#[derive(Debug, Clone)]
pub struct NameServerConfig {
    pub listen: SocketAddr,
    pub broker_expiry_ms: u64,
    /// TLS on the listener (`tls.server.mode` and the other `tls.server.*` keys); `None` is plain only.
    pub tls: Option<apogee_transport::tls::TlsServer>,
    /// The accounts that state-changing requests are checked against, when ACL is on
    /// ([`apogee_acl::check::NAMESRV_ADMIN_CODES`]: KV config, topic deletion, broker write permission).
    pub acl: Option<Arc<SharedAcl>>,
}

impl Default for NameServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], crate::NAMESERVER_PORT_DEFAULT)),
            broker_expiry_ms: crate::BROKER_EXPIRY_MS_DEFAULT,
            tls: None,
            acl: None,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct NameServer {
    registry: RefCell<Registry>,
    kv: RefCell<KvConfig>,
    acl: Option<ShardAcl>,
}

impl NameServer {
    /// With ACL on, a request that changes state needs a signed admin account (`None`: it may go on).
    fn refuse(&self, conn: &Conn, req: &RemotingCommand) -> Option<RemotingCommand> {
        let acl = self.acl.as_ref()?;
        let code = RequestCode::from_i32(req.code)?;
        if !NAMESRV_ADMIN_CODES.contains(&code) {
            return None;
        }
        let refusal = acl
            .with(|t| t.check(req, conn.peer.ip(), Scope::NameServer))
            .err()?;
        // State changes are rare admin actions: every refusal is logged (the secret never is).
        warn!(
            peer = %conn.peer,
            request = req.code,
            access_key = refusal.access_key.as_deref().unwrap_or("-"),
            remark = %refusal.remark,
            "request refused by ACL"
        );
        Some(req.error_to(ResponseCode::NoPermission, refusal.remark))
    }

    fn handle(&self, req: &RemotingCommand) -> RemotingCommand {
        let Some(code) = RequestCode::from_i32(req.code) else {
            return req.error_to(
                ResponseCode::RequestCodeNotSupported,
                format!(
                    "request code {} is not supported by the name server",
                    req.code
                ),
            );
        };
        match code {
            RequestCode::RegisterBroker => match RegisterBrokerRequest::from_ext(&req.ext_fields) {
                Err(e) => req.error_to(ResponseCode::SystemError, e.to_string()),
                Ok(header) => {
                    let topics = if req.body.is_empty() {
                        Default::default()
                    } else if let Ok(b) = from_json::<RegisterBrokerBody>(&req.body) {
                        b.topic_config_serialize_wrapper.topic_config_table
                    } else {
                        match from_json::<TopicConfigSerializeWrapper>(&req.body) {
                            Ok(w) => w.topic_config_table,
                            Err(e) => {
                                return req.error_to(
                                    ResponseCode::SystemError,
                                    format!("bad register body: {e}"),
                                )
                            }
                        }
                    };
                    let r = self
                        .registry
                        .borrow_mut()
                        .register(&header, &topics, now_ms());
                    if let Some(old) = &r.replaced {
                        warn!(
                            broker = %header.broker_name,
                            broker_id = header.broker_id,
                            old = %old,
                            new = %header.broker_addr,
                            "two live brokers register the same name and brokerId; the newer address replaces the older"
                        );
                    }
                    let mut resp = req.response_to(ResponseCode::Success, None);
                    // RocketMQ sets both only for a slave whose master is registered; a master's answer
                    // carries neither (null fields are not written).
                    let some = |s: String| (!s.is_empty()).then_some(s);
                    resp.ext_fields = RegisterBrokerResponse {
                        ha_server_addr: some(r.master_ha_addr),
                        master_addr: some(r.master_addr),
                    }
                    .to_ext();
                    resp
                }
            },
            RequestCode::UnregisterBroker => {
                match UnregisterBrokerRequest::from_ext(&req.ext_fields) {
                    Err(e) => req.error_to(ResponseCode::SystemError, e.to_string()),
                    Ok(h) => {
                        self.registry.borrow_mut().unregister(&h.broker_addr);
                        info!(broker = %h.broker_addr, "broker unregistered");
                        req.response_to(ResponseCode::Success, None)
                    }
                }
            }
            RequestCode::GetRouteInfoByTopic => match RouteRequest::from_ext(&req.ext_fields) {
                Err(e) => req.error_to(ResponseCode::SystemError, e.to_string()),
                Ok(RouteRequest { topic }) => match self.registry.borrow().route(&topic) {
                    Some(route) => req
                        .response_to(ResponseCode::Success, None)
                        .with_body(to_json(&route)),
                    None => req.error_to(
                        ResponseCode::TopicNotExist,
                        format!("No topic route info in name server for the topic: {topic}"),
                    ),
                },
            },
            RequestCode::GetBrokerClusterInfo => req
                .response_to(ResponseCode::Success, None)
                .with_body(to_json(&self.registry.borrow().cluster_info())),
            RequestCode::GetAllTopicListFromNameserver => {
                let list = TopicList {
                    topic_list: self.registry.borrow().topic_list(),
                    broker_addr: None,
                };
                req.response_to(ResponseCode::Success, None)
                    .with_body(to_json(&list))
            }
            _ => self.handle_ops(code, req),
        }
    }

    /// Operations requests: topic deletion, topics by cluster, draining a broker, KV config.
    fn handle_ops(&self, code: RequestCode, req: &RemotingCommand) -> RemotingCommand {
        let bad =
            |e: apogee_net::ProtocolError| req.error_to(ResponseCode::SystemError, e.to_string());
        match code {
            RequestCode::DeleteTopicInNamesrv => match TopicRequest::from_ext(&req.ext_fields) {
                Err(e) => bad(e),
                Ok(h) => {
                    let known = self.registry.borrow_mut().delete_topic(
                        &h.topic,
                        h.cluster_name.as_deref().filter(|c| !c.is_empty()),
                    );
                    info!(topic = %h.topic, known, "topic deleted from routes");
                    req.response_to(ResponseCode::Success, None)
                }
            },
            RequestCode::GetTopicsByCluster => match ClusterRequest::from_ext(&req.ext_fields) {
                Err(e) => bad(e),
                Ok(h) => match self.registry.borrow().topics_of_cluster(&h.cluster) {
                    Some(topics) => {
                        req.response_to(ResponseCode::Success, None)
                            .with_body(to_json(&TopicList {
                                topic_list: topics,
                                broker_addr: None,
                            }))
                    }
                    None => req.error_to(
                        ResponseCode::SystemError,
                        format!("cluster [{}] not exist", h.cluster),
                    ),
                },
            },
            RequestCode::WipeWritePermOfBroker | RequestCode::AddWritePermOfBroker => {
                match BrokerNameRequest::from_ext(&req.ext_fields) {
                    Err(e) => bad(e),
                    Ok(h) => {
                        let mut r = req.response_to(ResponseCode::Success, None);
                        let mut registry = self.registry.borrow_mut();
                        if code == RequestCode::WipeWritePermOfBroker {
                            let n = registry.wipe_write_perm(&h.broker_name);
                            info!(broker = %h.broker_name, topics = n, "write permission wiped");
                            r.ext_fields = WipeWritePermResponse {
                                wipe_topic_count: n,
                            }
                            .to_ext();
                        } else {
                            let n = registry.add_write_perm(&h.broker_name);
                            info!(broker = %h.broker_name, topics = n, "write permission added");
                            r.ext_fields = AddWritePermResponse { add_topic_count: n }.to_ext();
                        }
                        r
                    }
                }
            }
            RequestCode::PutKvConfig => match PutKvConfigRequest::from_ext(&req.ext_fields) {
                Err(e) => bad(e),
                Ok(h) => match self.kv.borrow_mut().put(&h.namespace, &h.key, &h.value) {
                    Ok(()) => req.response_to(ResponseCode::Success, None),
                    Err(e) => req.error_to(ResponseCode::SystemError, e),
                },
            },
            RequestCode::GetKvConfig => match KvConfigRequest::from_ext(&req.ext_fields) {
                Err(e) => bad(e),
                Ok(h) => match self.kv.borrow().get(&h.namespace, &h.key) {
                    Some(v) => {
                        let mut r = req.response_to(ResponseCode::Success, None);
                        r.ext_fields = KvConfigResponse {
                            value: Some(v.to_owned()),
                        }
                        .to_ext();
                        r
                    }
                    None => req.error_to(
                        ResponseCode::QueryNotFound,
                        format!("No config item, Namespace: {} Key: {}", h.namespace, h.key),
                    ),
                },
            },
            RequestCode::DeleteKvConfig => match KvConfigRequest::from_ext(&req.ext_fields) {
                Err(e) => bad(e),
                Ok(h) => {
                    self.kv.borrow_mut().delete(&h.namespace, &h.key);
                    req.response_to(ResponseCode::Success, None)
                }
            },
            RequestCode::GetKvlistByNamespace => {
                match KvNamespaceRequest::from_ext(&req.ext_fields) {
                    Err(e) => bad(e),
                    Ok(h) => match self.kv.borrow().namespace(&h.namespace) {
                        Some(table) => {
                            req.response_to(ResponseCode::Success, None)
                                .with_body(to_json(&KvTable {
                                    table: table.clone(),
                                }))
                        }
                        None => req.error_to(
                            ResponseCode::QueryNotFound,
                            format!("No config item, Namespace: {}", h.namespace),
                        ),
                    },
                }
            }
            _ => req.error_to(
                ResponseCode::RequestCodeNotSupported,
                format!(
                    "request code {} is not supported by the name server",
                    req.code
                ),
            ),
        }
    }
}

impl Service for NameServer {
    fn call(
        self: Rc<Self>,
        conn: Rc<Conn>,
        request: RemotingCommand,
    ) -> Pin<Box<dyn Future<Output = Option<RemotingCommand>>>> {
        let response = self
            .refuse(&conn, &request)
            .unwrap_or_else(|| self.handle(&request));
        Box::pin(async move { Some(response) })
    }
}

/// Serves the name server on the current glommio executor until `stop` fires.
pub async fn run_nameserver(config: NameServerConfig, stop: StopSignal) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.listen)?;
    info!(listen = %config.listen, expiry_ms = config.broker_expiry_ms, tls = ?config.tls.as_ref().map(|t| t.mode), acl = config.acl.is_some(), "name server started");
    let server = Rc::new(NameServer {
        registry: RefCell::new(Registry::default()),
        kv: RefCell::new(KvConfig::default()),
        acl: config.acl.clone().map(ShardAcl::new),
    });
    let expirer = {
        let server = server.clone();
        let stop = stop.clone();
        glommio::spawn_local(async move {
            loop {
                let tick = glommio::timer::sleep(Duration::from_millis(
                    crate::EXPIRY_SCAN_INTERVAL_MS.min(config.broker_expiry_ms),
                ));
                if let futures::future::Either::Right(_) =
                    futures::future::select(Box::pin(tick), stop.clone()).await
                {
                    return;
                }
                for addr in server
                    .registry
                    .borrow_mut()
                    .expire(now_ms(), config.broker_expiry_ms)
                {
                    warn!(broker = %addr, "broker silent for {} ms; dropped with its queues", config.broker_expiry_ms);
                }
            }
        })
    };
    transport::serve_with_tls(listener, server, Limits::default(), config.tls, stop).await;
    expirer.await;
    Ok(())
}
