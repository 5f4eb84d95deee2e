//! Every JSON body and response header Apogee writes has the field set of RocketMQ 5.3's class for it:
//! Apogee's output is compared key by key (names, JSON types, values) with fixtures written from the Java
//! classes (`tests/fixtures/rocketmq-5.3/README.md` lists each class and its properties), and each fixture
//! decodes back through `apogee_net`.

use std::collections::BTreeMap;

use apogee_net::body::cluster::ClusterInfo;
use apogee_net::body::heartbeat::{ConsumerListBody, LockBatchResponseBody, MessageQueue};
use apogee_net::body::offsets::ConsumerOffsetSerializeWrapper;
use apogee_net::body::route::{BrokerData, QueueData, TopicRouteData};
use apogee_net::body::subscription_group::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
use apogee_net::body::topic_config::{
    DataVersion, RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper, TopicList,
};
use apogee_net::body::{from_json, to_json};
use apogee_net::headers::{
    OffsetResponse, PullMessageResponse, QueryMessageResponse, RegisterBrokerResponse,
    SendMessageResponse, StoreTimeResponse,
};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/rocketmq-5.3/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compares two JSON trees key by key; every difference is listed with its path.
fn diff(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{k}: missing in Apogee's output"));
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                out.push(format!("{path}.{k}: not a property of the RocketMQ class"));
            }
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    diff(&format!("{path}.{k}"), v, w, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), v, w, out);
            }
        }
        _ if json_type(ours) != json_type(theirs) => out.push(format!(
            "{path}: Apogee writes {} ({ours}), RocketMQ {} ({theirs})",
            json_type(ours),
            json_type(theirs)
        )),
        _ if ours != theirs => out.push(format!(
            "{path}: Apogee writes {ours}, fixture has {theirs}"
        )),
        _ => {}
    }
}

/// Asserts that `ours` (Apogee's bytes) matches the fixture field by field.
fn assert_matches(ours: &[u8], fixture_name: &str) {
    let ours: Value = serde_json::from_slice(ours).expect("Apogee writes strict JSON");
    let theirs: Value = serde_json::from_slice(&fixture(fixture_name)).expect("fixture is JSON");
    let mut out = Vec::new();
    diff("$", &ours, &theirs, &mut out);
    assert!(out.is_empty(), "{fixture_name}:\n{}", out.join("\n"));
}

/// Decodes a fixture through `net` and writes it back: nothing is lost on the way.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(fixture_name: &str) -> T {
    let value: T = from_json(&fixture(fixture_name))
        .unwrap_or_else(|e| panic!("{fixture_name} does not decode: {e}"));
    assert_matches(&to_json(&value), fixture_name);
    value
}

fn version(counter: i64) -> DataVersion {
    DataVersion {
        counter,
        ..DataVersion::new(1_700_000_000_000)
    }
}

fn broker_a(addrs: &[(i64, &str)]) -> BrokerData {
    BrokerData {
        cluster: "DefaultCluster".into(),
        broker_name: "broker-a-0".into(),
        broker_addrs: addrs.iter().map(|(i, a)| (*i, a.to_string())).collect(),
        ..Default::default()
    }
}

fn topic_wrapper() -> TopicConfigSerializeWrapper {
    TopicConfigSerializeWrapper {
        topic_config_table: [("T".to_string(), TopicConfig::new("T", 4, 6))].into(),
        data_version: version(3),
        mapping_data_version: version(0),
        ..Default::default()
    }
}

#[test]
fn route_data_has_topic_route_data_queue_data_and_broker_data_fields() {
    let route = TopicRouteData {
        queue_datas: vec![QueueData {
            broker_name: "broker-a-0".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        }],
        broker_datas: vec![broker_a(&[(0, "127.0.0.1:10911")])],
        ..Default::default()
    };
    assert_matches(&to_json(&route), "route.json");
    let back: TopicRouteData = round_trips("route.json");
    assert_eq!(back, route);
}

#[test]
fn cluster_info_has_cluster_info_fields() {
    let info = ClusterInfo {
        broker_addr_table: [(
            "broker-a-0".to_string(),
            broker_a(&[(0, "127.0.0.1:10911"), (1, "127.0.0.1:20911")]),
        )]
        .into(),
        cluster_addr_table: [(
            "DefaultCluster".to_string(),
            ["broker-a-0".to_string()].into(),
        )]
        .into(),
    };
    assert_matches(&to_json(&info), "cluster_info.json");
    assert_eq!(round_trips::<ClusterInfo>("cluster_info.json"), info);
}

#[test]
fn topic_config_table_has_topic_config_and_mapping_wrapper_fields() {
    let wrapper = topic_wrapper();
    assert_matches(&to_json(&wrapper), "topic_config_wrapper.json");
    assert_eq!(
        round_trips::<TopicConfigSerializeWrapper>("topic_config_wrapper.json"),
        wrapper
    );
}

#[test]
fn register_broker_body_has_register_broker_body_fields() {
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: topic_wrapper(),
        filter_server_list: vec![],
    };
    assert_matches(&to_json(&body), "register_broker_body.json");
    assert_eq!(
        round_trips::<RegisterBrokerBody>("register_broker_body.json"),
        body
    );
}

#[test]
fn topic_list_consumer_list_and_lock_answers_have_their_class_fields() {
    let list = TopicList {
        topic_list: vec!["T".into(), "U".into()],
        broker_addr: None,
    };
    assert_matches(&to_json(&list), "topic_list.json");
    assert_eq!(round_trips::<TopicList>("topic_list.json"), list);

    let consumers = ConsumerListBody {
        consumer_id_list: vec!["127.0.0.1@1".into(), "127.0.0.1@2".into()],
    };
    assert_matches(&to_json(&consumers), "consumer_list.json");
    assert_eq!(
        round_trips::<ConsumerListBody>("consumer_list.json"),
        consumers
    );

    let locked = LockBatchResponseBody {
        lock_ok_mq_set: vec![MessageQueue {
            topic: "T".into(),
            broker_name: "broker-a-0".into(),
            queue_id: 1,
        }],
    };
    assert_matches(&to_json(&locked), "lock_batch_response.json");
    assert_eq!(
        round_trips::<LockBatchResponseBody>("lock_batch_response.json"),
        locked
    );
}

#[test]
fn consumer_offsets_have_offset_wrapper_fields_with_quoted_queue_ids() {
    let offsets = ConsumerOffsetSerializeWrapper {
        offset_table: [("T@g".to_string(), BTreeMap::from([(0, 5), (1, 7)]))].into(),
        data_version: Some(version(0)),
    };
    assert_matches(&to_json(&offsets), "consumer_offsets.json");
    assert_eq!(
        round_trips::<ConsumerOffsetSerializeWrapper>("consumer_offsets.json"),
        offsets
    );
    // fastjson's own form (bare integer keys) reads too.
    let bare = br#"{"offsetTable":{"T@g":{0:5,1:7}}}"#;
    let read: ConsumerOffsetSerializeWrapper = from_json(bare).unwrap();
    assert_eq!(read.offset_table, offsets.offset_table);
}

fn ext_json(ext: &BTreeMap<String, String>) -> Vec<u8> {
    serde_json::to_vec(ext).unwrap()
}

fn fixture_ext(name: &str) -> BTreeMap<String, String> {
    serde_json::from_slice(&fixture(name)).expect("header fixtures are string maps")
}

#[test]
fn send_pull_and_register_answers_carry_rocketmq_response_header_fields() {
    let send = SendMessageResponse {
        msg_id: "7F00000100002A9F0000000000000000".into(),
        queue_id: 1,
        queue_offset: 42,
        transaction_id: None,
    };
    let ext: BTreeMap<String, String> = send.to_ext().into_iter().collect();
    assert_matches(&ext_json(&ext), "send_response_header.json");
    let back = SendMessageResponse::from_ext(
        &fixture_ext("send_response_header.json")
            .into_iter()
            .collect(),
    )
    .unwrap();
    assert_eq!(back, send);

    let pull = PullMessageResponse {
        suggest_which_broker_id: 0,
        next_begin_offset: 10,
        min_offset: 0,
        max_offset: 10,
        topic_sys_flag: 0,
        group_sys_flag: 0,
    };
    let ext: BTreeMap<String, String> = pull.to_ext().into_iter().collect();
    assert_matches(&ext_json(&ext), "pull_response_header.json");
    let back = PullMessageResponse::from_ext(
        &fixture_ext("pull_response_header.json")
            .into_iter()
            .collect(),
    )
    .unwrap();
    assert_eq!(back, pull);

    let register = RegisterBrokerResponse {
        ha_server_addr: Some("127.0.0.1:10912".into()),
        master_addr: Some("127.0.0.1:10911".into()),
    };
    let ext: BTreeMap<String, String> = register.to_ext().into_iter().collect();
    assert_matches(&ext_json(&ext), "register_broker_response_header.json");
    let back = RegisterBrokerResponse::from_ext(
        &fixture_ext("register_broker_response_header.json")
            .into_iter()
            .collect(),
    )
    .unwrap();
    assert_eq!(back, register);
}

#[test]
fn offset_time_and_query_answers_carry_their_response_header_fields() {
    let all: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_slice(&fixture("offset_and_query_response_headers.json")).unwrap();
    let sorted =
        |e: apogee_net::command::ExtFields| -> BTreeMap<String, String> { e.into_iter().collect() };
    let offset = sorted(OffsetResponse { offset: 5 }.to_ext());
    for class in [
        "QueryConsumerOffsetResponseHeader",
        "GetMaxOffsetResponseHeader",
        "GetMinOffsetResponseHeader",
        "SearchOffsetResponseHeader",
    ] {
        assert_eq!(offset, all[class], "{class}");
        let back = OffsetResponse::from_ext(&all[class].clone().into_iter().collect()).unwrap();
        assert_eq!(back.offset, 5);
    }
    let time = StoreTimeResponse {
        timestamp: 1_700_000_000_000,
    };
    assert_eq!(
        sorted(time.to_ext()),
        all["GetEarliestMsgStoretimeResponseHeader"]
    );
    let query = QueryMessageResponse {
        index_last_update_timestamp: 1_700_000_000_000,
        index_last_update_phyoffset: 4096,
    };
    assert_eq!(sorted(query.to_ext()), all["QueryMessageResponseHeader"]);
    let back = QueryMessageResponse::from_ext(
        &all["QueryMessageResponseHeader"]
            .clone()
            .into_iter()
            .collect(),
    )
    .unwrap();
    assert_eq!(back, query);
}

#[test]
fn subscription_group_table_has_subscription_group_wrapper_and_config_fields() {
    let mut wrapper = SubscriptionGroupWrapper {
        data_version: version(3),
        ..Default::default()
    };
    wrapper.subscription_group_table.insert(
        "orders-consumer".into(),
        SubscriptionGroupConfig::new("orders-consumer"),
    );
    assert_matches(&to_json(&wrapper), "subscription_group_wrapper.json");
    let back: SubscriptionGroupWrapper = round_trips("subscription_group_wrapper.json");
    assert_eq!(back, wrapper);
}

#[test]
fn a_missing_field_is_reported_by_the_comparison() {
    // The comparison itself must fail on a short body, or the tests above prove nothing.
    let mut out = Vec::new();
    let ours = serde_json::json!({"cluster": "c", "brokerName": "b", "brokerAddrs": {}});
    let theirs = serde_json::json!({"cluster": "c", "brokerName": "b", "brokerAddrs": {},
        "zoneName": null, "enableActingMaster": false});
    diff("$", &ours, &theirs, &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
}
