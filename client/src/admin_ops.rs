//! The operations half of [`Admin`]: broker stats and runtime info, topic and consume stats, connections,
//! topic deletion, broker config, name server KV config and write permission. What `apogee admin`'s
//! verbs call; every call is a RocketMQ remoting request, so it works against RocketMQ brokers too.

use std::collections::BTreeMap;
use std::time::Duration;

use apogee_net::body::from_json;
use apogee_net::body::heartbeat::MessageQueue as WireQueue;
use apogee_net::body::ops::{
    BrokerStatsData, ConsumerConnection, GroupList, KvTable, ProducerConnection,
};
use apogee_net::body::queue_map::{self, ConsumeStats, TopicOffset};
use apogee_net::body::route::TopicRouteData;
use apogee_net::body::running_info::ConsumerRunningInfo;
use apogee_net::body::topic_config::TopicList;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{
    AddWritePermResponse, BrokerNameRequest, ClusterRequest, ConsumeStatsRequest,
    ConsumerGroupRequest, ConsumerRunningInfoRequest, CreateTopicRequest, KvConfigRequest,
    ProducerGroupRequest, PutKvConfigRequest, TopicRequest, ViewBrokerStatsRequest,
    WipeWritePermResponse,
};
use apogee_net::RemotingCommand;

use crate::admin::Admin;
use crate::error::ClientError;

const OPS_TIMEOUT: Duration = Duration::from_secs(5);
/// GET_CONSUMER_RUNNING_INFO: longer than the broker's own wait for the consumer's answer (5 s), so that
/// the broker's explanation arrives rather than a timeout of ours.
const RUNNING_INFO_TIMEOUT: Duration = Duration::from_secs(8);

fn protocol(addr: &str) -> impl FnOnce(apogee_net::ProtocolError) -> ClientError + '_ {
    move |source| ClientError::Protocol {
        addr: addr.to_owned(),
        source,
    }
}

impl Admin {
    async fn call_ok(
        &self,
        addr: &str,
        req: RemotingCommand,
    ) -> Result<RemotingCommand, ClientError> {
        self.routes()
            .remoting()
            .invoke_ok(addr, req, OPS_TIMEOUT)
            .await
    }

    /// Every master address of every cluster the name servers know, sorted.
    pub async fn all_masters(&self) -> Result<Vec<String>, ClientError> {
        let info = self.clusters().await?;
        let mut out: Vec<String> = info
            .broker_addr_table
            .values()
            .filter_map(|b| b.master_addr().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Master addresses of the brokers serving `topic`, sorted.
    pub async fn topic_masters(&self, topic: &str) -> Result<Vec<String>, ClientError> {
        let r = self.route(topic).await?;
        let mut out: Vec<String> = r
            .broker_datas
            .iter()
            .filter_map(|b| b.master_addr().map(str::to_owned))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// A topic's route as the name servers give it.
    pub async fn route(&self, topic: &str) -> Result<TopicRouteData, ClientError> {
        Ok((*self.routes().refresh(topic).await?).clone())
    }

    /// UPDATE_AND_CREATE_TOPIC with every field given (mqadmin's updateTopic).
    pub async fn create_topic_with(
        &self,
        broker_addr: &str,
        header: &CreateTopicRequest,
    ) -> Result<(), ClientError> {
        let req = RemotingCommand::request(RequestCode::UpdateAndCreateTopic as i32, 0)
            .with_ext_fields(header.to_ext());
        self.call_ok(broker_addr, req).await?;
        self.routes().invalidate(&header.topic);
        Ok(())
    }

    /// GET_BROKER_RUNTIME_INFO of one broker.
    pub async fn runtime_info(
        &self,
        broker_addr: &str,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let req = RemotingCommand::request(RequestCode::GetBrokerRuntimeInfo as i32, 0);
        let r = self.call_ok(broker_addr, req).await?;
        Ok(from_json::<KvTable>(&r.body)
            .map_err(protocol(broker_addr))?
            .table)
    }

    /// VIEW_BROKER_STATS_DATA: one stats item (`TOPIC_PUT_NUMS`, ...) of one key on one broker.
    pub async fn view_stats(
        &self,
        broker_addr: &str,
        stats_name: &str,
        stats_key: &str,
    ) -> Result<BrokerStatsData, ClientError> {
        let req = RemotingCommand::request(RequestCode::ViewBrokerStatsData as i32, 0)
            .with_ext_fields(
                ViewBrokerStatsRequest {
                    stats_name: stats_name.into(),
                    stats_key: stats_key.into(),
                }
                .to_ext(),
            );
        let r = self.call_ok(broker_addr, req).await?;
        from_json(&r.body).map_err(protocol(broker_addr))
    }

    /// GET_TOPIC_STATS_INFO from every broker of the topic, sorted by queue.
    pub async fn topic_stats(
        &self,
        topic: &str,
    ) -> Result<Vec<(WireQueue, TopicOffset)>, ClientError> {
        let mut out = Vec::new();
        for addr in self.topic_masters(topic).await? {
            let req = RemotingCommand::request(RequestCode::GetTopicStatsInfo as i32, 0)
                .with_ext_fields(
                    TopicRequest {
                        topic: topic.into(),
                        cluster_name: None,
                    }
                    .to_ext(),
                );
            let r = self.call_ok(&addr, req).await?;
            out.extend(queue_map::decode_topic_stats(&r.body).map_err(protocol(&addr))?);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// GET_CONSUME_STATS of `group` (on `topic`, or every topic it committed offsets on) from `brokers`,
    /// merged: per queue offsets, and the TPS summed.
    pub async fn consume_stats_on(
        &self,
        brokers: &[String],
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats, ClientError> {
        let mut all = ConsumeStats::default();
        for addr in brokers {
            let req = RemotingCommand::request(RequestCode::GetConsumeStats as i32, 0)
                .with_ext_fields(
                    ConsumeStatsRequest {
                        consumer_group: group.into(),
                        topic: topic.map(str::to_owned),
                    }
                    .to_ext(),
                );
            let r = self.call_ok(addr, req).await?;
            let part = ConsumeStats::decode(&r.body).map_err(protocol(addr))?;
            all.offset_table.extend(part.offset_table);
            all.consume_tps += part.consume_tps;
        }
        all.offset_table.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// A group's progress: on `topic`'s brokers, or on every master when no topic is given.
    pub async fn consume_stats(
        &self,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats, ClientError> {
        let brokers = match topic {
            Some(t) => self.topic_masters(t).await?,
            None => self.all_masters().await?,
        };
        self.consume_stats_on(&brokers, group, topic).await
    }

    /// GET_CONSUMER_CONNECTION_LIST: the first master that knows the group online answers; connections
    /// from every master are merged (each shard is a broker a consumer heartbeats to).
    pub async fn consumer_connection(
        &self,
        group: &str,
    ) -> Result<ConsumerConnection, ClientError> {
        let mut merged: Option<ConsumerConnection> = None;
        let mut last_err = None;
        for addr in self.all_masters().await? {
            let req = RemotingCommand::request(RequestCode::GetConsumerConnectionList as i32, 0)
                .with_ext_fields(
                    ConsumerGroupRequest {
                        consumer_group: group.into(),
                    }
                    .to_ext(),
                );
            match self.call_ok(&addr, req).await {
                Ok(r) => {
                    let c: ConsumerConnection = from_json(&r.body).map_err(protocol(&addr))?;
                    match merged.as_mut() {
                        None => merged = Some(c),
                        Some(m) => add_new_clients(&mut m.connection_set, c.connection_set),
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        merged.ok_or_else(|| {
            last_err.unwrap_or_else(|| ClientError::NameServer("no broker is registered".into()))
        })
    }

    /// GET_CONSUMER_RUNNING_INFO: the broker a consumer is connected to forwards the request to it and
    /// hands back its answer; the first master that has `client_id` of `group` online answers.
    pub async fn consumer_running_info(
        &self,
        group: &str,
        client_id: &str,
    ) -> Result<ConsumerRunningInfo, ClientError> {
        let mut last_err = None;
        for addr in self.all_masters().await? {
            let header = ConsumerRunningInfoRequest {
                consumer_group: group.into(),
                client_id: client_id.into(),
                jstack_enable: false,
            };
            let req = RemotingCommand::request(RequestCode::GetConsumerRunningInfo as i32, 0)
                .with_ext_fields(header.to_ext());
            match self
                .routes()
                .remoting()
                .invoke_ok(&addr, req, RUNNING_INFO_TIMEOUT)
                .await
            {
                Ok(r) => return ConsumerRunningInfo::decode(&r.body).map_err(protocol(&addr)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| ClientError::NameServer("no broker is registered".into())))
    }

    /// GET_PRODUCER_CONNECTION_LIST on the brokers of `topic`, merged.
    pub async fn producer_connection(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<ProducerConnection, ClientError> {
        let mut merged: Option<ProducerConnection> = None;
        let mut last_err = None;
        for addr in self.topic_masters(topic).await? {
            let req = RemotingCommand::request(RequestCode::GetProducerConnectionList as i32, 0)
                .with_ext_fields(
                    ProducerGroupRequest {
                        producer_group: group.into(),
                    }
                    .to_ext(),
                );
            match self.call_ok(&addr, req).await {
                Ok(r) => {
                    let c: ProducerConnection = from_json(&r.body).map_err(protocol(&addr))?;
                    let m = merged.get_or_insert_with(Default::default);
                    add_new_clients(&mut m.connection_set, c.connection_set);
                }
                Err(e) => last_err = Some(e),
            }
        }
        merged.ok_or_else(|| last_err.unwrap_or_else(|| ClientError::NoRoute(topic.to_owned())))
    }

    /// QUERY_TOPIC_CONSUME_BY_WHO on every broker of the topic: the groups that consume it.
    pub async fn consumed_by(&self, topic: &str) -> Result<Vec<String>, ClientError> {
        let mut groups = std::collections::BTreeSet::new();
        for addr in self.topic_masters(topic).await? {
            let req = RemotingCommand::request(RequestCode::QueryTopicConsumeByWho as i32, 0)
                .with_ext_fields(
                    TopicRequest {
                        topic: topic.into(),
                        cluster_name: None,
                    }
                    .to_ext(),
                );
            let r = self.call_ok(&addr, req).await?;
            groups.extend(
                from_json::<GroupList>(&r.body)
                    .map_err(protocol(&addr))?
                    .group_list,
            );
        }
        Ok(groups.into_iter().collect())
    }

    /// Deletes a topic (mqadmin's deleteTopic): DELETE_TOPIC_IN_BROKER on every master of `cluster`, then
    /// DELETE_TOPIC_IN_NAMESRV on every name server. Returns how many brokers deleted it.
    pub async fn delete_topic(&self, cluster: &str, topic: &str) -> Result<usize, ClientError> {
        let masters = self.masters(cluster).await?;
        let header = TopicRequest {
            topic: topic.into(),
            cluster_name: None,
        };
        for addr in &masters {
            let req = RemotingCommand::request(RequestCode::DeleteTopicInBroker as i32, 0)
                .with_ext_fields(header.to_ext());
            self.call_ok(addr, req).await?;
        }
        for ns in self.routes().name_servers() {
            let req = RemotingCommand::request(RequestCode::DeleteTopicInNamesrv as i32, 0)
                .with_ext_fields(header.to_ext());
            self.call_ok(ns, req).await?;
        }
        self.routes().invalidate(topic);
        Ok(masters.len())
    }

    /// GET_BROKER_CONFIG: `(key, value)` pairs in the broker's order.
    pub async fn broker_config(
        &self,
        broker_addr: &str,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let req = RemotingCommand::request(RequestCode::GetBrokerConfig as i32, 0);
        let r = self.call_ok(broker_addr, req).await?;
        Ok(String::from_utf8_lossy(&r.body)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect())
    }

    /// UPDATE_BROKER_CONFIG with `key=value` pairs.
    pub async fn update_broker_config(
        &self,
        broker_addr: &str,
        pairs: &[(String, String)],
    ) -> Result<(), ClientError> {
        let body: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let req =
            RemotingCommand::request(RequestCode::UpdateBrokerConfig as i32, 0).with_body(body);
        self.call_ok(broker_addr, req).await.map(|_| ())
    }

    /// GET_TOPICS_BY_CLUSTER.
    pub async fn topics_of_cluster(&self, cluster: &str) -> Result<Vec<String>, ClientError> {
        let req = RemotingCommand::request(RequestCode::GetTopicsByCluster as i32, 0)
            .with_ext_fields(
                ClusterRequest {
                    cluster: cluster.into(),
                }
                .to_ext(),
            );
        let r = self.routes().ask(req).await?;
        if r.code != ResponseCode::Success as i32 {
            return Err(ClientError::NameServer(r.remark.unwrap_or_default()));
        }
        Ok(from_json::<TopicList>(&r.body)
            .map_err(protocol("name server"))?
            .topic_list)
    }

    /// WIPE_WRITE_PERM_OF_BROKER (`wipe`) or ADD_WRITE_PERM_OF_BROKER on every name server: (name server,
    /// topics changed) each.
    pub async fn set_write_perm(
        &self,
        broker_name: &str,
        wipe: bool,
    ) -> Result<Vec<(String, i32)>, ClientError> {
        let code = if wipe {
            RequestCode::WipeWritePermOfBroker
        } else {
            RequestCode::AddWritePermOfBroker
        };
        let mut out = Vec::new();
        for ns in self.routes().name_servers() {
            let req = RemotingCommand::request(code as i32, 0).with_ext_fields(
                BrokerNameRequest {
                    broker_name: broker_name.into(),
                }
                .to_ext(),
            );
            let r = self.call_ok(ns, req).await?;
            let n = if wipe {
                WipeWritePermResponse::from_ext(&r.ext_fields).map(|h| h.wipe_topic_count)
            } else {
                AddWritePermResponse::from_ext(&r.ext_fields).map(|h| h.add_topic_count)
            }
            .map_err(protocol(ns))?;
            out.push((ns.clone(), n));
        }
        Ok(out)
    }

    /// Pulls up to `max` messages of `mq` from `offset` (no long poll, nothing committed): what
    /// queryMsgByOffset and consumeMessage read.
    pub async fn pull_at(
        &self,
        mq: &crate::MessageQueue,
        offset: i64,
        max: i32,
    ) -> Result<crate::consumer::PullOutcome, ClientError> {
        let addr = crate::consumer::addr_of(self.routes(), mq).await?;
        crate::consumer::pull_once(
            self.routes().remoting(),
            &addr,
            "APOGEE_ADMIN_CONSUMER",
            mq,
            offset,
            max,
            &crate::consumer::selector::MessageSelector::all(),
            None,
            None,
        )
        .await
    }

    /// PUT_KV_CONFIG on every name server.
    pub async fn put_kv(&self, namespace: &str, key: &str, value: &str) -> Result<(), ClientError> {
        for ns in self.routes().name_servers() {
            let req = RemotingCommand::request(RequestCode::PutKvConfig as i32, 0).with_ext_fields(
                PutKvConfigRequest {
                    namespace: namespace.into(),
                    key: key.into(),
                    value: value.into(),
                }
                .to_ext(),
            );
            self.call_ok(ns, req).await?;
        }
        Ok(())
    }

    /// GET_KV_CONFIG from the name servers (the first that answers); `None` when not set.
    pub async fn get_kv(&self, namespace: &str, key: &str) -> Result<Option<String>, ClientError> {
        let req = RemotingCommand::request(RequestCode::GetKvConfig as i32, 0).with_ext_fields(
            KvConfigRequest {
                namespace: namespace.into(),
                key: key.into(),
            }
            .to_ext(),
        );
        let r = self.routes().ask(req).await?;
        if r.code == ResponseCode::QueryNotFound as i32 {
            return Ok(None);
        }
        if r.code != ResponseCode::Success as i32 {
            return Err(ClientError::NameServer(r.remark.unwrap_or_default()));
        }
        Ok(r.ext("value").map(str::to_owned))
    }

    /// DELETE_KV_CONFIG on every name server.
    pub async fn delete_kv(&self, namespace: &str, key: &str) -> Result<(), ClientError> {
        for ns in self.routes().name_servers() {
            let req = RemotingCommand::request(RequestCode::DeleteKvConfig as i32, 0)
                .with_ext_fields(
                    KvConfigRequest {
                        namespace: namespace.into(),
                        key: key.into(),
                    }
                    .to_ext(),
                );
            self.call_ok(ns, req).await?;
        }
        Ok(())
    }
}

/// Adds the connections of `from` whose client is not in `into` yet: each shard of a process is a broker
/// a client connects to, so the same client shows up in every shard's list.
fn add_new_clients(
    into: &mut Vec<apogee_net::body::ops::Connection>,
    from: Vec<apogee_net::body::ops::Connection>,
) {
    for conn in from {
        if !into.iter().any(|x| x.client_id == conn.client_id) {
            into.push(conn);
        }
    }
}
