//! Routes from name servers: which brokers serve a topic, with how many queues. Name servers are tried
//! in turn from the last one that answered; routes are cached and refreshed every 30 s and after errors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_net::body::route::{perm, QueueData, TopicRouteData};
use apogee_net::body::{cluster::ClusterInfo, from_json};
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;

use crate::error::ClientError;
use crate::message::MessageQueue;
use crate::remoting::Remoting;

/// How long a cached route is used before it is asked for again.
pub const ROUTE_TTL: Duration = Duration::from_secs(30);
/// Name server call timeout.
pub const NAMESERVER_TIMEOUT: Duration = Duration::from_secs(3);

/// topic → (when fetched, route).
type RouteCache = HashMap<String, (Instant, Arc<TopicRouteData>)>;

#[derive(Clone)]
pub struct Routes {
    remoting: Remoting,
    namesrv: Arc<Vec<String>>,
    preferred: Arc<AtomicUsize>,
    cache: Arc<Mutex<RouteCache>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses `host:port;host:port`.
pub fn parse_namesrv(list: &str) -> Vec<String> {
    list.split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Routes {
    pub fn new(remoting: Remoting, namesrv: Vec<String>) -> Self {
        Self {
            remoting,
            namesrv: Arc::new(namesrv),
            preferred: Default::default(),
            cache: Default::default(),
        }
    }

    pub fn remoting(&self) -> &Remoting {
        &self.remoting
    }

    /// The name server addresses this client was given.
    pub fn name_servers(&self) -> &[String] {
        &self.namesrv
    }

    /// Asks name servers in turn; the first that answers (with anything) is used and preferred next time.
    pub async fn ask(&self, request: RemotingCommand) -> Result<RemotingCommand, ClientError> {
        let n = self.namesrv.len();
        if n == 0 {
            return Err(ClientError::NameServer(
                "no name server address configured".into(),
            ));
        }
        let start = self.preferred.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let addr = &self.namesrv[idx];
            match self
                .remoting
                .invoke(addr, request.clone(), NAMESERVER_TIMEOUT)
                .await
            {
                Ok(r) => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    return Ok(r);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(ClientError::NameServer(errors.join("; ")))
    }

    /// The route of a topic, from the cache when fresh.
    pub async fn route(&self, topic: &str) -> Result<Arc<TopicRouteData>, ClientError> {
        if let Some((at, r)) = lock(&self.cache).get(topic) {
            if at.elapsed() < ROUTE_TTL {
                return Ok(r.clone());
            }
        }
        self.refresh(topic).await
    }

    /// Fetches a topic's route now.
    pub async fn refresh(&self, topic: &str) -> Result<Arc<TopicRouteData>, ClientError> {
        let req = RemotingCommand::request(RequestCode::GetRouteInfoByTopic as i32, 0)
            .with_ext_fields(
                apogee_net::headers::RouteRequest {
                    topic: topic.into(),
                }
                .to_ext(),
            );
        let r = self.ask(req).await?;
        if r.code == ResponseCode::TopicNotExist as i32 {
            lock(&self.cache).remove(topic);
            return Err(ClientError::NoRoute(topic.to_owned()));
        }
        if r.code != ResponseCode::Success as i32 {
            return Err(ClientError::NameServer(
                r.remark.unwrap_or_else(|| format!("code {}", r.code)),
            ));
        }
        let route: TopicRouteData = from_json(&r.body).map_err(|e| ClientError::Protocol {
            addr: "name server".into(),
            source: e,
        })?;
        let route = Arc::new(route);
        lock(&self.cache).insert(topic.to_owned(), (Instant::now(), route.clone()));
        Ok(route)
    }

    pub fn invalidate(&self, topic: &str) {
        lock(&self.cache).remove(topic);
    }

    /// Every cached route's brokers' master addresses (for heartbeats).
    pub fn known_brokers(&self) -> Vec<String> {
        let mut out: Vec<String> = lock(&self.cache)
            .values()
            .flat_map(|(_, r)| {
                r.broker_datas
                    .iter()
                    .filter_map(|b| b.master_addr().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub async fn cluster_info(&self) -> Result<ClusterInfo, ClientError> {
        let r = self
            .ask(RemotingCommand::request(
                RequestCode::GetBrokerClusterInfo as i32,
                0,
            ))
            .await?;
        from_json(&r.body).map_err(|e| ClientError::Protocol {
            addr: "name server".into(),
            source: e,
        })
    }
}

/// The master address of a broker name in a route.
pub fn master_addr(route: &TopicRouteData, broker_name: &str) -> Option<String> {
    route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker_name)
        .and_then(|b| b.master_addr())
        .map(str::to_owned)
}

/// Where to read a broker name's queues: its master, or, when the route names none (the master is
/// gone), its slave with the lowest id, as RocketMQ's clients fall back for pulls and offsets.
pub fn read_addr(route: &TopicRouteData, broker_name: &str) -> Option<String> {
    let b = route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker_name)?;
    b.master_addr()
        .or_else(|| b.broker_addrs.values().next().map(String::as_str))
        .map(str::to_owned)
}

/// Queues of a topic whose brokers allow `needed` (a perm bit), `count` of each broker's queue data
/// apiece, sorted by broker then id.
fn queues_with(
    topic: &str,
    route: &TopicRouteData,
    needed: i32,
    count: fn(&QueueData) -> i32,
) -> Vec<MessageQueue> {
    let mut out: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| q.perm & needed != 0)
        .flat_map(|q| {
            (0..count(q)).map(move |id| MessageQueue {
                topic: topic.into(),
                broker_name: q.broker_name.clone(),
                queue_id: id,
            })
        })
        .collect();
    out.sort();
    out
}

/// Writable queues of a topic (on brokers with a master), sorted by broker then id.
pub fn write_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut out = queues_with(topic, route, perm::WRITE, |q| q.write_queue_nums);
    out.retain(|q| master_addr(route, &q.broker_name).is_some());
    out
}

/// Readable queues of a topic, sorted by broker then id.
pub fn read_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    queues_with(topic, route, perm::READ, |q| q.read_queue_nums)
}
