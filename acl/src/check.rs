//! Checking one request against the [`AclTable`]: RocketMQ's `PlainAccessResource.parse` (which
//! resources a request touches, and whether it publishes or subscribes) and
//! `PlainPermissionManager.validate` (in this order):
//!
//! 1. a peer in `globalWhiteRemoteAddresses` passes;
//! 2. no `AccessKey` → "No accessKey is configured"; an unknown one → "No acl config for {ak}";
//! 3. a peer in the account's `whiteRemoteAddress` passes (without a signature, as in RocketMQ: the
//!    white list admits, it never restricts);
//! 4. a missing or wrong `Signature` → "Check signature failed for accessKey={ak}";
//! 5. a send to the trace topic passes;
//! 6. admin-only codes need `admin: true` → "Need admin permission for request code={code}, but
//!    accessKey={ak} is not";
//! 7. every resource needs its permission (listed, else the account's default) → "No default permission
//!    for topic:{t}" / "group:{g}". An admin account with no topic or group entries passes.
//!
//! The remarks are RocketMQ's `AclException` messages. RocketMQ answers them with SYSTEM_ERROR and the
//! exception's text; Apogee answers NO_PERMISSION (16) with the message, so that clients can tell a
//! refusal from a fault.
//!
//! Resources per request code (RocketMQ 5.1's table; LITE_PULL_MESSAGE is added, as it reads like a pull):
//!
//! | request | needs |
//! |---|---|
//! | SEND_MESSAGE | `topic`: PUB; a `%RETRY%` topic: group `group`: SUB |
//! | SEND_MESSAGE_V2, SEND_BATCH_MESSAGE | `b`: PUB; a `%RETRY%` topic: group `a`: SUB |
//! | CONSUMER_SEND_MSG_BACK | group `group`: SUB |
//! | PULL_MESSAGE, LITE_PULL_MESSAGE | `topic`: SUB, group `consumerGroup`: SUB |
//! | QUERY_MESSAGE | `topic`: SUB |
//! | HEART_BEAT | each consumer group: SUB, and each of its subscribed topics: SUB |
//! | UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP | group `consumerGroup`: SUB |
//! | UPDATE_CONSUMER_OFFSET | group `consumerGroup`: SUB, `topic`: SUB |
//!
//! Other requests need a valid signature only (and admin, for the admin-only codes). An empty name counts
//! as no name, as RocketMQ's null does.
//!
//! Nothing here allocates on the way to "allowed" except a heartbeat's body parse (once per 30 s per
//! client); refusals allocate their remark.

use std::net::IpAddr;

use apogee_net::body::{from_json, heartbeat::HeartbeatData};
use apogee_net::codes::RequestCode;
use apogee_net::signature::{self, Verdict};
use apogee_net::RemotingCommand;

use crate::perm::{self, PUB, SUB};
use crate::table::{Account, AclTable};

/// Retry topics name their group after this prefix (RocketMQ's `MixAll.RETRY_GROUP_TOPIC_PREFIX`).
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// Sends to this topic skip the resource check (RocketMQ's rule for message trace).
pub const TRACE_TOPIC: &str = apogee_net::topic::TRACE_TOPIC_DEFAULT;

/// Broker requests only admin accounts may make (RocketMQ's `Permission.ADMIN_CODE`).
pub const BROKER_ADMIN_CODES: [RequestCode; 5] = [
    RequestCode::UpdateAndCreateTopic,
    RequestCode::UpdateBrokerConfig,
    RequestCode::DeleteTopicInBroker,
    RequestCode::UpdateAndCreateSubscriptionGroup,
    RequestCode::DeleteSubscriptionGroup,
];

/// Name server requests that change its state: checked, and only admin accounts may make them. The
/// others (routes, cluster info, KV reads) are not checked, as RocketMQ's name server checks none;
/// REGISTER_BROKER and UNREGISTER_BROKER come from brokers, which do not sign.
pub const NAMESRV_ADMIN_CODES: [RequestCode; 5] = [
    RequestCode::PutKvConfig,
    RequestCode::DeleteKvConfig,
    RequestCode::DeleteTopicInNamesrv,
    RequestCode::WipeWritePermOfBroker,
    RequestCode::AddWritePermOfBroker,
];

/// Which server checks, and so which codes are admin-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Broker,
    NameServer,
}

/// A request turned away: the remark for the answer, and what to log (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// RocketMQ's text, sent back as the remark.
    pub remark: String,
    pub access_key: Option<String>,
    /// `topic:T` or `group:G`, when a resource was refused.
    pub resource: Option<String>,
}

/// One resource a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resource<'a> {
    /// A topic, or a group's name (without `%RETRY%`).
    name: &'a str,
    group: bool,
    needed: u8,
}

impl<'a> Resource<'a> {
    /// A topic; a retry topic stands for its group (RocketMQ's `isRetryTopic` in `checkPerm`).
    fn topic(name: &'a str, needed: u8) -> Self {
        match name.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
            Some(group) => Self::group(group, needed),
            None => Self {
                name,
                group: false,
                needed,
            },
        }
    }

    fn group(name: &'a str, needed: u8) -> Self {
        Self {
            name,
            group: true,
            needed,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{}:{}",
            if self.group { "group" } else { "topic" },
            self.name
        )
    }
}

/// Calls `f` for each resource `cmd` touches; stops at the first `Err`.
fn resources<'a>(
    cmd: &'a RemotingCommand,
    code: Option<RequestCode>,
    f: &mut dyn FnMut(Resource<'_>) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    // An empty name is no resource, as a missing one (RocketMQ's null): the C++ client unregisters a
    // producer with `consumerGroup=""`, which would otherwise be refused as the group "".
    let ext = |k: &str| cmd.ext(k).filter(|v| !v.is_empty());
    let send = |topic: Option<&'a str>, group: Option<&'a str>| match topic {
        Some(t) if t.starts_with(RETRY_GROUP_TOPIC_PREFIX) => {
            group.map(|g| Resource::group(g, SUB))
        }
        Some(t) => Some(Resource::topic(t, PUB)),
        None => None,
    };
    let mut each = |r: Option<Resource<'_>>| r.map_or(Ok(()), &mut *f);
    match code {
        Some(RequestCode::SendMessage) => each(send(ext("topic"), ext("group"))),
        Some(RequestCode::SendMessageV2 | RequestCode::SendBatchMessage) => {
            each(send(ext("b"), ext("a")))
        }
        Some(RequestCode::ConsumerSendMsgBack) => {
            each(ext("group").map(|g| Resource::group(g, SUB)))
        }
        Some(RequestCode::PullMessage | RequestCode::LitePullMessage) => {
            each(ext("topic").map(|t| Resource::topic(t, SUB)))?;
            each(ext("consumerGroup").map(|g| Resource::group(g, SUB)))
        }
        Some(RequestCode::QueryMessage) => each(ext("topic").map(|t| Resource::topic(t, SUB))),
        Some(RequestCode::UnregisterClient | RequestCode::GetConsumerListByGroup) => {
            each(ext("consumerGroup").map(|g| Resource::group(g, SUB)))
        }
        Some(RequestCode::UpdateConsumerOffset) => {
            each(ext("consumerGroup").map(|g| Resource::group(g, SUB)))?;
            each(ext("topic").map(|t| Resource::topic(t, SUB)))
        }
        Some(RequestCode::HeartBeat) => {
            // RocketMQ refuses a heartbeat whose body it cannot read (its parse throws).
            let data: HeartbeatData = from_json(&cmd.body).map_err(|e| Refusal {
                remark: format!("heartbeat body is not RocketMQ's HeartbeatData: {e}"),
                access_key: cmd.ext(signature::ACCESS_KEY).map(str::to_owned),
                resource: None,
            })?;
            for c in &data.consumer_data_set {
                each(Some(Resource::group(&c.group_name, SUB)))?;
                for s in &c.subscription_data_set {
                    each(Some(Resource::topic(&s.topic, SUB)))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn refuse(remark: String, access_key: Option<&str>, resource: Option<String>) -> Refusal {
    Refusal {
        remark,
        access_key: access_key.map(str::to_owned),
        resource,
    }
}

impl AclTable {
    /// Checks `cmd`, sent from `peer`, as a `scope` server (module docs for the order and the remarks).
    pub fn check(&self, cmd: &RemotingCommand, peer: IpAddr, scope: Scope) -> Result<(), Refusal> {
        if self
            .global_white_remote_addresses
            .iter()
            .any(|p| p.matches(peer))
        {
            return Ok(());
        }
        let Some(ak) = cmd.ext(signature::ACCESS_KEY) else {
            return Err(refuse("No accessKey is configured".into(), None, None));
        };
        let Some(account) = self.accounts.get(ak) else {
            return Err(refuse(format!("No acl config for {ak}"), Some(ak), None));
        };
        if account.white_remote_address.matches(peer) {
            return Ok(());
        }
        match signature::verify(&account.mac, cmd) {
            Ok(Verdict::Valid) => {}
            Ok(Verdict::Invalid) => {
                return Err(refuse(
                    format!("Check signature failed for accessKey={ak}"),
                    Some(ak),
                    None,
                ))
            }
            Err(e) => return Err(refuse(e.to_string(), Some(ak), None)),
        }
        check_perm(account, cmd, scope)
    }
}

fn check_perm(account: &Account, cmd: &RemotingCommand, scope: Scope) -> Result<(), Refusal> {
    let ak = account.access_key.as_str();
    let code = RequestCode::from_i32(cmd.code);
    // RocketMQ lets a send to the trace topic through before any other permission check.
    let trace_send = matches!(
        code,
        Some(RequestCode::SendMessage | RequestCode::SendMessageV2 | RequestCode::SendBatchMessage)
    ) && [cmd.ext("topic"), cmd.ext("b")].contains(&Some(TRACE_TOPIC));
    if trace_send {
        return Ok(());
    }
    let admin_codes: &[RequestCode] = match scope {
        Scope::Broker => &BROKER_ADMIN_CODES,
        Scope::NameServer => &NAMESRV_ADMIN_CODES,
    };
    if code.is_some_and(|c| admin_codes.contains(&c)) && !account.admin {
        return Err(refuse(
            format!(
                "Need admin permission for request code={}, but accessKey={ak} is not",
                cmd.code
            ),
            Some(ak),
            None,
        ));
    }
    if account.admin && account.topics.is_empty() && account.groups.is_empty() {
        return Ok(());
    }
    resources(cmd, code, &mut |r| {
        let (listed, default) = if r.group {
            (account.groups.get(r.name), account.default_group_perm)
        } else {
            (account.topics.get(r.name), account.default_topic_perm)
        };
        if perm::allows(r.needed, listed.copied().unwrap_or(default)) {
            Ok(())
        } else {
            let what = r.describe();
            Err(refuse(
                format!("No default permission for {what}"),
                Some(ak),
                Some(what),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const FILE: &str = "\
globalWhiteRemoteAddresses: [10.9.9.*]
accounts:
  - accessKey: producer1
    secretKey: producer-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [orders=PUB, denied=DENY]
    groupPerms: [g1=SUB]
  - accessKey: consumer1
    secretKey: consumer-secret
    whiteRemoteAddress: 10.1.1.1
    defaultTopicPerm: SUB
    groupPerms: [g1=SUB]
  - accessKey: admin01
    secretKey: admin-secret
    admin: true
";

    fn table() -> AclTable {
        AclTable::parse(FILE, Path::new("t.yml")).unwrap()
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn send(topic: &str) -> RemotingCommand {
        RemotingCommand::request(RequestCode::SendMessageV2 as i32, 1)
            .with_ext("a", "pg")
            .with_ext("b", topic)
            .with_body(b"body".to_vec())
    }

    fn signed(mut cmd: RemotingCommand, ak: &str, sk: &str) -> RemotingCommand {
        signature::sign(&mut cmd, ak, sk, None).unwrap();
        cmd
    }

    fn remark(r: Result<(), Refusal>) -> String {
        r.unwrap_err().remark
    }

    #[test]
    fn rocketmqs_remarks_in_rocketmqs_order() {
        let t = table();
        let b = Scope::Broker;
        assert_eq!(
            remark(t.check(&send("orders"), LOCAL, b)),
            "No accessKey is configured"
        );
        let unknown = signed(send("orders"), "nobody00", "whatever");
        assert_eq!(
            remark(t.check(&unknown, LOCAL, b)),
            "No acl config for nobody00"
        );
        let wrong = signed(send("orders"), "producer1", "not-the-secret");
        assert_eq!(
            remark(t.check(&wrong, LOCAL, b)),
            "Check signature failed for accessKey=producer1"
        );
        assert_eq!(
            t.check(
                &signed(send("orders"), "producer1", "producer-secret"),
                LOCAL,
                b
            ),
            Ok(())
        );
        let denied = t
            .check(
                &signed(send("denied"), "producer1", "producer-secret"),
                LOCAL,
                b,
            )
            .unwrap_err();
        assert_eq!(denied.remark, "No default permission for topic:denied");
        assert_eq!(denied.resource.as_deref(), Some("topic:denied"));
        let create = RemotingCommand::request(RequestCode::UpdateAndCreateTopic as i32, 1)
            .with_ext("topic", "t");
        assert_eq!(
            remark(t.check(
                &signed(create.clone(), "producer1", "producer-secret"),
                LOCAL,
                b
            )),
            "Need admin permission for request code=17, but accessKey=producer1 is not"
        );
        assert_eq!(
            t.check(&signed(create, "admin01", "admin-secret"), LOCAL, b),
            Ok(())
        );
    }

    #[test]
    fn white_lists_admit_without_a_signature() {
        let t = table();
        let global: IpAddr = "10.9.9.4".parse().unwrap();
        assert_eq!(t.check(&send("denied"), global, Scope::Broker), Ok(()));
        let mut unsigned = send("x");
        unsigned
            .ext_fields
            .insert("AccessKey".into(), "consumer1".into());
        assert_eq!(
            t.check(&unsigned, "10.1.1.1".parse().unwrap(), Scope::Broker),
            Ok(())
        );
        assert!(t
            .check(&unsigned, "10.1.1.2".parse().unwrap(), Scope::Broker)
            .is_err());
    }

    #[test]
    fn pulls_need_sub_on_topic_and_group_and_retry_topics_are_groups() {
        let t = table();
        let pull = |group: &str| {
            RemotingCommand::request(RequestCode::PullMessage as i32, 1)
                .with_ext("topic", "orders")
                .with_ext("consumerGroup", group)
        };
        assert_eq!(
            t.check(
                &signed(pull("g1"), "consumer1", "consumer-secret"),
                LOCAL,
                Scope::Broker
            ),
            Ok(())
        );
        assert_eq!(
            remark(t.check(
                &signed(pull("g2"), "consumer1", "consumer-secret"),
                LOCAL,
                Scope::Broker
            )),
            "No default permission for group:g2"
        );
        // A send to %RETRY%g1 is the group g1's business (SUB), not a topic's PUB.
        let retry = send("%RETRY%g1").with_ext("a", "g1");
        assert_eq!(
            t.check(
                &signed(retry, "producer1", "producer-secret"),
                LOCAL,
                Scope::Broker
            ),
            Ok(())
        );
    }

    #[test]
    fn heartbeats_need_sub_on_every_group_and_subscription() {
        let t = table();
        let hb = |group: &str, topic: &str| {
            let body = format!(
                r#"{{"clientID":"c","producerDataSet":[],"consumerDataSet":[{{"groupName":"{group}","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{{"topic":"{topic}","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1}}],"unitMode":false}}]}}"#
            );
            RemotingCommand::request(RequestCode::HeartBeat as i32, 1).with_body(body.into_bytes())
        };
        let ok = signed(hb("g1", "orders"), "consumer1", "consumer-secret");
        assert_eq!(t.check(&ok, LOCAL, Scope::Broker), Ok(()));
        let no_group = signed(hb("g9", "orders"), "consumer1", "consumer-secret");
        assert_eq!(
            remark(t.check(&no_group, LOCAL, Scope::Broker)),
            "No default permission for group:g9"
        );
    }

    #[test]
    fn an_empty_group_is_no_resource() {
        // The C++ client unregisters a producer with consumerGroup="".
        let t = table();
        let unregister = RemotingCommand::request(RequestCode::UnregisterClient as i32, 1)
            .with_ext("clientID", "c")
            .with_ext("producerGroup", "pg")
            .with_ext("consumerGroup", "");
        let by_producer = signed(unregister, "producer1", "producer-secret");
        assert_eq!(t.check(&by_producer, LOCAL, Scope::Broker), Ok(()));
    }

    #[test]
    fn name_server_admin_codes_are_its_own() {
        let t = table();
        let put = RemotingCommand::request(RequestCode::PutKvConfig as i32, 1).with_ext("key", "k");
        let by_producer = signed(put.clone(), "producer1", "producer-secret");
        assert!(t.check(&by_producer, LOCAL, Scope::Broker).is_ok());
        assert_eq!(
            remark(t.check(&by_producer, LOCAL, Scope::NameServer)),
            "Need admin permission for request code=100, but accessKey=producer1 is not"
        );
        assert!(t
            .check(
                &signed(put, "admin01", "admin-secret"),
                LOCAL,
                Scope::NameServer
            )
            .is_ok());
    }
}
