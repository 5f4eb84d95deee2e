//! The name server's route and cluster answers parse under a strict client: serde structs with no
//! defaults, so a missing field (as `enableActingMaster` once was) fails the parse, as it does in the
//! serde-based RocketMQ clients on crates.io. The answers are also compared with the RocketMQ 5.3
//! fixtures in `net/tests/fixtures/rocketmq-5.3`.

use std::collections::{BTreeMap, HashMap};

use apogee_nameserver::registry::Registry;
use apogee_net::body::to_json;
use apogee_net::body::topic_config::TopicConfig;
use apogee_net::headers::RegisterBrokerRequest;
use serde::{Deserialize, Deserializer};

/// A nullable field that must still be present: serde treats a missing `Option` as `None` unless a
/// `deserialize_with` is given, and a strict client wants the key.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StrictRoute {
    #[serde(deserialize_with = "present")]
    order_topic_conf: Option<String>,
    queue_datas: Vec<StrictQueueData>,
    broker_datas: Vec<StrictBrokerData>,
    filter_server_table: HashMap<String, Vec<String>>,
    #[serde(deserialize_with = "present")]
    topic_queue_mapping_by_broker: Option<HashMap<String, serde_json::Value>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StrictQueueData {
    broker_name: String,
    read_queue_nums: i32,
    write_queue_nums: i32,
    perm: i32,
    topic_sys_flag: i32,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StrictBrokerData {
    cluster: String,
    broker_name: String,
    broker_addrs: HashMap<i64, String>,
    #[serde(deserialize_with = "present")]
    zone_name: Option<String>,
    enable_acting_master: bool,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StrictClusterInfo {
    broker_addr_table: HashMap<String, StrictBrokerData>,
    cluster_addr_table: HashMap<String, Vec<String>>,
}

fn registry_with_one_topic() -> Registry {
    let mut r = Registry::default();
    let req = RegisterBrokerRequest {
        broker_name: "broker-a-0".into(),
        broker_addr: "127.0.0.1:10911".into(),
        cluster_name: "DefaultCluster".into(),
        ha_server_addr: "127.0.0.1:10912".into(),
        broker_id: 0,
        zone_name: None,
    };
    let topics: BTreeMap<String, TopicConfig> =
        [("T".to_string(), TopicConfig::new("T", 4, 6))].into();
    r.register(&req, &topics, 0);
    r
}

#[test]
fn route_answer_parses_under_a_strict_deserializer() {
    let r = registry_with_one_topic();
    let body = to_json(&r.route("T").expect("the topic has a route"));
    let strict: StrictRoute = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "strict client rejects the route: {e}\n{}",
            String::from_utf8_lossy(&body)
        )
    });
    assert_eq!(strict.broker_datas[0].broker_addrs[&0], "127.0.0.1:10911");
    assert!(!strict.broker_datas[0].enable_acting_master);

    // Byte-for-byte the fixture's content (key order aside): what RocketMQ 5.3's classes define.
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../net/tests/fixtures/rocketmq-5.3/route.json"
    ))
    .expect("route fixture");
    let ours: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let theirs: serde_json::Value = serde_json::from_slice(&fixture).unwrap();
    assert_eq!(ours, theirs);

    let info = to_json(&r.cluster_info());
    let strict: StrictClusterInfo = serde_json::from_slice(&info).unwrap_or_else(|e| {
        panic!(
            "strict client rejects the cluster info: {e}\n{}",
            String::from_utf8_lossy(&info)
        )
    });
    assert_eq!(strict.cluster_addr_table["DefaultCluster"], ["broker-a-0"]);
}

#[test]
fn the_strict_deserializer_rejects_a_broker_data_without_acting_master() {
    // The RocketMQ 4.x shape that strict clients choke on: the test above would catch its return.
    let old = br#"{"orderTopicConf":null,"queueDatas":[],"filterServerTable":{},"topicQueueMappingByBroker":null,
        "brokerDatas":[{"cluster":"c","brokerName":"b","brokerAddrs":{"0":"a"},"zoneName":null}]}"#;
    let err = serde_json::from_slice::<StrictRoute>(old)
        .err()
        .expect("a missing field must fail");
    assert!(err.to_string().contains("enableActingMaster"), "{err}");
}
