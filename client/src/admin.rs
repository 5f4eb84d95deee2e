//! Administration: create topics on a cluster, list clusters and topics, offsets and lag of a group,
//! subscription groups (create, list, delete), offset reset by time, delay offsets, view a message by its offset id, query
//! messages by key.

use std::time::Duration;

use apogee_net::body::cluster::ClusterInfo;
use apogee_net::body::delay_offset::DelayOffsetTable;
use apogee_net::body::subscription_group::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
use apogee_net::body::topic_config::TopicList;
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::RequestCode;
use apogee_net::headers::{
    CreateTopicRequest, DeleteSubscriptionGroupRequest, QueryMessageRequest, ResetOffsetRequest,
    ViewMessageRequest,
};
use apogee_net::{msgid, record, RemotingCommand};

use crate::consumer::{query_offset, queue_offset};
use crate::error::ClientError;
use crate::message::{MessageExt, MessageQueue};
use crate::remoting::Remoting;
use crate::route::{self, parse_namesrv, Routes};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Admin {
    routes: Routes,
}

impl Admin {
    pub fn new(namesrv: &str) -> Self {
        Self::with_options(namesrv, None, None)
    }

    /// An admin whose every connection is TLS, verified against `tls`'s CA.
    pub fn with_tls(namesrv: &str, tls: crate::tls::TlsConfig) -> Self {
        Self::with_options(namesrv, Some(tls), None)
    }

    pub fn with_tls_opt(namesrv: &str, tls: Option<crate::tls::TlsConfig>) -> Self {
        Self::with_options(namesrv, tls, None)
    }

    /// An admin whose requests are signed with `credentials` (ACL), when given.
    pub fn with_credentials(namesrv: &str, credentials: Option<crate::Credentials>) -> Self {
        Self::with_options(namesrv, None, credentials)
    }

    /// An admin with TLS and ACL credentials, each when given.
    pub fn with_options(
        namesrv: &str,
        tls: Option<crate::tls::TlsConfig>,
        credentials: Option<crate::Credentials>,
    ) -> Self {
        let (remoting, _) = Remoting::with_tls(tls);
        let remoting = remoting.with_credentials(credentials);
        Self {
            routes: Routes::new(remoting, parse_namesrv(namesrv)),
        }
    }

    pub async fn clusters(&self) -> Result<ClusterInfo, ClientError> {
        self.routes.cluster_info().await
    }

    pub async fn topics(&self) -> Result<Vec<String>, ClientError> {
        let r = self
            .routes
            .ask(RemotingCommand::request(
                RequestCode::GetAllTopicListFromNameserver as i32,
                0,
            ))
            .await?;
        Ok(from_json::<TopicList>(&r.body)
            .map_err(|e| ClientError::Protocol {
                addr: "name server".into(),
                source: e,
            })?
            .topic_list)
    }

    /// Creates (or updates) a topic with `queues` read and write queues on every master of `cluster`.
    pub async fn create_topic(
        &self,
        cluster: &str,
        topic: &str,
        queues: i32,
    ) -> Result<usize, ClientError> {
        let info = self.clusters().await?;
        let names = info
            .cluster_addr_table
            .get(cluster)
            .ok_or_else(|| ClientError::NameServer(format!("no cluster `{cluster}`")))?;
        let mut done = 0;
        for name in names {
            let Some(addr) = info
                .broker_addr_table
                .get(name)
                .and_then(|b| b.master_addr())
            else {
                continue;
            };
            self.create_topic_on(addr, topic, queues).await?;
            done += 1;
        }
        self.routes.invalidate(topic);
        Ok(done)
    }

    /// Creates (or updates) a topic on one broker.
    pub async fn create_topic_on(
        &self,
        broker_addr: &str,
        topic: &str,
        queues: i32,
    ) -> Result<(), ClientError> {
        let header = CreateTopicRequest {
            topic: topic.into(),
            default_topic: Some(apogee_net::topic::DEFAULT_TOPIC.into()),
            read_queue_nums: Some(queues),
            write_queue_nums: Some(queues),
            perm: Some(6),
            topic_filter_type: Some("SINGLE_TAG".into()),
            topic_sys_flag: Some(0),
            order: false,
        };
        let req = RemotingCommand::request(RequestCode::UpdateAndCreateTopic as i32, 0)
            .with_ext_fields(header.to_ext());
        self.routes
            .remoting()
            .invoke_ok(broker_addr, req, ADMIN_TIMEOUT)
            .await
            .map(|_| ())
    }

    pub(crate) fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Master addresses of every broker of `cluster`.
    pub async fn masters(&self, cluster: &str) -> Result<Vec<String>, ClientError> {
        let info = self.clusters().await?;
        let names = info
            .cluster_addr_table
            .get(cluster)
            .ok_or_else(|| ClientError::NameServer(format!("no cluster `{cluster}`")))?;
        Ok(names
            .iter()
            .filter_map(|n| info.broker_addr_table.get(n).and_then(|b| b.master_addr()))
            .map(str::to_owned)
            .collect())
    }

    /// Creates (or updates) a subscription group on every master of `cluster` (mqadmin's
    /// `updateSubGroup -c`); the brokers create its retry topic. Returns how many brokers took it.
    pub async fn create_subscription_group(
        &self,
        cluster: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<usize, ClientError> {
        let masters = self.masters(cluster).await?;
        for addr in &masters {
            self.create_subscription_group_on(addr, config).await?;
        }
        Ok(masters.len())
    }

    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on one broker.
    pub async fn create_subscription_group_on(
        &self,
        broker_addr: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<(), ClientError> {
        let req = RemotingCommand::request(RequestCode::UpdateAndCreateSubscriptionGroup as i32, 0)
            .with_body(to_json(config));
        self.routes
            .remoting()
            .invoke_ok(broker_addr, req, ADMIN_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// Every subscription group of one broker (GET_ALL_SUBSCRIPTIONGROUP_CONFIG).
    pub async fn subscription_groups_on(
        &self,
        broker_addr: &str,
    ) -> Result<SubscriptionGroupWrapper, ClientError> {
        let req = RemotingCommand::request(RequestCode::GetAllSubscriptionGroupConfig as i32, 0);
        let r = self
            .routes
            .remoting()
            .invoke_ok(broker_addr, req, ADMIN_TIMEOUT)
            .await?;
        from_json(&r.body).map_err(|e| ClientError::Protocol {
            addr: broker_addr.into(),
            source: e,
        })
    }

    /// Deletes a subscription group on every master of `cluster` (mqadmin's `deleteSubGroup`), and its
    /// committed offsets with `clean_offset`. Returns how many brokers were asked.
    pub async fn delete_subscription_group(
        &self,
        cluster: &str,
        group: &str,
        clean_offset: bool,
    ) -> Result<usize, ClientError> {
        let masters = self.masters(cluster).await?;
        for addr in &masters {
            let header = DeleteSubscriptionGroupRequest {
                group_name: group.into(),
                clean_offset,
            };
            let req = RemotingCommand::request(RequestCode::DeleteSubscriptionGroup as i32, 0)
                .with_ext_fields(header.to_ext());
            self.routes
                .remoting()
                .invoke_ok(addr, req, ADMIN_TIMEOUT)
                .await?;
        }
        Ok(masters.len())
    }

    /// The delay scheduler's progress of one broker (GET_ALL_DELAY_OFFSET): level → next offset of its
    /// schedule queue.
    pub async fn delay_offsets_on(
        &self,
        broker_addr: &str,
    ) -> Result<std::collections::BTreeMap<i32, u64>, ClientError> {
        let req = RemotingCommand::request(RequestCode::GetAllDelayOffset as i32, 0);
        let r = self
            .routes
            .remoting()
            .invoke_ok(broker_addr, req, ADMIN_TIMEOUT)
            .await?;
        from_json::<DelayOffsetTable>(&r.body)
            .map(|t| t.offset_table)
            .map_err(|e| ClientError::Protocol {
                addr: broker_addr.into(),
                source: e,
            })
    }

    /// Moves `group`'s offsets on `topic` to the first message stored at or after `timestamp_ms` (-1: the
    /// end of each queue), forward or back, on every broker of the topic (mqadmin's `resetOffsetByTime`,
    /// INVOKE_BROKER_TO_RESET_OFFSET with `isForce`). Online consumers of the group go on from there at
    /// once; an offline group finds the offsets when it starts. Returns each queue's new offset.
    pub async fn reset_offset_by_time(
        &self,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
    ) -> Result<Vec<(MessageQueue, i64)>, ClientError> {
        let r = self.routes.refresh(topic).await?;
        let mut brokers: Vec<String> = r
            .broker_datas
            .iter()
            .filter_map(|b| b.master_addr().map(str::to_owned))
            .collect();
        brokers.sort();
        brokers.dedup();
        let mut table = Vec::new();
        for addr in brokers {
            let header = ResetOffsetRequest {
                topic: topic.into(),
                group: group.into(),
                timestamp: timestamp_ms,
                is_force: true,
                queue_id: None,
                offset: None,
            };
            let req = RemotingCommand::request(RequestCode::InvokeBrokerToResetOffset as i32, 0)
                .with_ext_fields(header.to_ext());
            let resp = self
                .routes
                .remoting()
                .invoke_ok(&addr, req, ADMIN_TIMEOUT)
                .await?;
            let part = apogee_net::body::reset_offset::decode(&resp.body)
                .map_err(|e| ClientError::Protocol { addr, source: e })?;
            table.extend(part.into_iter().map(|(q, o)| {
                let mq = MessageQueue {
                    topic: q.topic,
                    broker_name: q.broker_name,
                    queue_id: q.queue_id,
                };
                (mq, o)
            }));
        }
        table.sort();
        Ok(table)
    }

    /// Readable queues of a topic.
    pub async fn queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        let r = self.routes.refresh(topic).await?;
        Ok(route::read_queues(topic, &r))
    }

    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        queue_offset(&self.routes, mq, true).await
    }

    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        queue_offset(&self.routes, mq, false).await
    }

    pub async fn consumer_offset(
        &self,
        group: &str,
        mq: &MessageQueue,
    ) -> Result<Option<i64>, ClientError> {
        query_offset(&self.routes, group, mq).await
    }

    /// A group's lag on a topic: per queue (max offset − committed offset), and the total.
    pub async fn lag(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<(Vec<(MessageQueue, i64)>, i64), ClientError> {
        let mut per = Vec::new();
        let mut total = 0;
        for mq in self.queues(topic).await? {
            let max = self.max_offset(&mq).await?;
            let done = self.consumer_offset(group, &mq).await?.unwrap_or(0);
            let lag = (max - done).max(0);
            total += lag;
            per.push((mq, lag));
        }
        Ok((per, total))
    }

    /// Messages of `topic` with `key` (a key given at send, or the client-made message id) stored between
    /// `begin_ms` and `end_ms`, from every broker of the topic; at most `max` per broker.
    pub async fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: i32,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<MessageExt>, ClientError> {
        let r = self.routes.refresh(topic).await?;
        let mut out = Vec::new();
        for b in &r.broker_datas {
            let Some(addr) = b.master_addr() else {
                continue;
            };
            let header = QueryMessageRequest {
                topic: topic.into(),
                key: key.into(),
                max_num: max,
                begin_timestamp: Some(begin_ms),
                end_timestamp: Some(end_ms),
            };
            let req = RemotingCommand::request(RequestCode::QueryMessage as i32, 0)
                .with_ext_fields(header.to_ext());
            let resp = self
                .routes
                .remoting()
                .invoke(addr, req, ADMIN_TIMEOUT)
                .await?;
            if resp.code == apogee_net::codes::ResponseCode::QueryNotFound as i32 {
                continue;
            }
            if resp.code != apogee_net::codes::ResponseCode::Success as i32 {
                return Err(ClientError::Broker {
                    addr: addr.into(),
                    code: resp.code,
                    remark: resp.remark.unwrap_or_default(),
                });
            }
            let recs = record::decode_all(&resp.body).map_err(|e| ClientError::Protocol {
                addr: addr.into(),
                source: e,
            })?;
            out.extend(
                recs.into_iter()
                    .map(|rec| MessageExt::from_record(rec, &b.broker_name)),
            );
        }
        Ok(out)
    }

    /// A message by its offset id (as a send result's `offset_msg_id`).
    pub async fn view_message(&self, offset_msg_id: &str) -> Result<MessageExt, ClientError> {
        let (addr, offset) =
            msgid::decode(offset_msg_id).map_err(|e| ClientError::BadMessage(e.to_string()))?;
        let addr = addr.to_string();
        let req = RemotingCommand::request(RequestCode::ViewMessageById as i32, 0)
            .with_ext_fields(ViewMessageRequest { offset }.to_ext());
        let r = self
            .routes
            .remoting()
            .invoke_ok(&addr, req, ADMIN_TIMEOUT)
            .await?;
        let rec = record::decode(&r.body).map_err(|e| ClientError::Protocol {
            addr: addr.clone(),
            source: e,
        })?;
        Ok(MessageExt::from_record(rec, ""))
    }
}
