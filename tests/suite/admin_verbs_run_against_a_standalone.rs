//! Every `apogee admin` verb runs against a fresh standalone and says what it did: each is run as the
//! binary, its `--json` output parsed and checked against what the test did; tables are aligned; a
//! missing topic or group exits 3 and a refused or unreachable request exits 1, each with one line.

use crate::common;

use std::process::Command;
use std::time::Duration;

use apogee_client::{Producer, ProducerConfig, PushConsumer, PushConsumerConfig};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// A failure: its exit code, and its one stderr line.
    fn failed(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "{}", self.stderr);
        assert!(self.stderr.starts_with("apogee admin "), "{}", self.stderr);
        self.stderr.trim_end()
    }
}

fn admin(namesrv: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_apogee"))
        .arg("admin")
        .args(["-n", namesrv])
        .args(args)
        .output()
        .expect("run apogee admin");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(namesrv: &str, args: &[&str]) -> Value {
    let mut with = args.to_vec();
    with.push("--json");
    admin(namesrv, &with).json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_verbs_run_against_a_standalone() {
    let apogee = common::Standalone::start(1, &[]);
    let ns = apogee.namesrv.clone();
    let addr = apogee.shard_addr(0);

    let clusters = json(&ns, &["clusterList"]);
    let brokers = clusters["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0]["addr"], addr.as_str());
    assert_eq!(brokers[0]["brokerName"], "broker-a-0");

    let created = json(
        &ns,
        &[
            "updateTopic",
            "-t",
            "AdminT",
            "-c",
            "DefaultCluster",
            "-r",
            "4",
            "-w",
            "4",
        ],
    );
    assert_eq!(created["brokers"].as_array().unwrap().len(), 1);
    let route = common::eventually(Duration::from_secs(10), || async {
        let r = admin(&ns, &["topicRoute", "-t", "AdminT", "--json"]);
        (r.code == 0).then(|| r.json())
    })
    .await
    .expect("the new topic is routed");
    assert_eq!(route["queueDatas"][0]["writeQueueNums"], 4);
    let topics = json(&ns, &["topicList"]);
    assert!(topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "AdminT"));
    let topics = json(&ns, &["topicList", "-c", "DefaultCluster"]);
    assert!(topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "AdminT"));

    let mut sent = Vec::new();
    for i in 0..3 {
        let body = format!("hello{i}");
        sent.push(json(
            &ns,
            &[
                "sendMessage",
                "-t",
                "AdminT",
                "-p",
                &body,
                "-k",
                "k1",
                "-c",
                "tagA",
            ],
        ));
    }
    assert!(sent.iter().all(|s| s["status"] == "SendOk"), "{sent:?}");
    let status = json(&ns, &["topicStatus", "-t", "AdminT"]);
    let stored: i64 = status["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["maxOffset"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 3);
    let table = admin(&ns, &["topicStatus", "-t", "AdminT"]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("#Broker Name  #QID"),
        "{}",
        table.stdout
    );
    assert_eq!(lines.len(), 5, "a header and 4 queues: {}", table.stdout);
    let column = lines[0].find("#QID").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[column..].starts_with(char::is_numeric)),
        "aligned: {}",
        table.stdout
    );

    let by_id = json(
        &ns,
        &[
            "queryMsgById",
            "-i",
            sent[1]["offsetMsgId"].as_str().unwrap(),
        ],
    );
    assert_eq!(by_id["messages"][0]["body"], "hello1");
    assert_eq!(by_id["messages"][0]["tags"], "tagA");
    let by_key = json(&ns, &["queryMsgByKey", "-t", "AdminT", "-k", "k1"]);
    assert_eq!(by_key["messages"].as_array().unwrap().len(), 3);
    let (b, q, o) = (
        sent[2]["brokerName"].as_str().unwrap().to_owned(),
        sent[2]["queueId"].to_string(),
        sent[2]["queueOffset"].to_string(),
    );
    let by_offset = json(
        &ns,
        &[
            "queryMsgByOffset",
            "-t",
            "AdminT",
            "-b",
            &b,
            "-i",
            &q,
            "-o",
            &o,
        ],
    );
    assert_eq!(by_offset["messages"][0]["body"], "hello2");
    let consumed = json(&ns, &["consumeMessage", "-t", "AdminT"]);
    let mut bodies: Vec<&str> = consumed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["hello0", "hello1", "hello2"]);

    let group = json(
        &ns,
        &[
            "updateSubGroup",
            "-g",
            "AdminG",
            "-c",
            "DefaultCluster",
            "-r",
            "3",
        ],
    );
    assert_eq!(group["retryMaxTimes"], 3);
    // A group is reset only once it has offsets (or is online), as in RocketMQ: commit 0 everywhere first.
    let (remoting, _) = apogee_client::remoting::Remoting::new();
    let routes = apogee_client::route::Routes::new(remoting, vec![ns.clone()]);
    for mq in apogee_client::Admin::new(&ns)
        .queues("AdminT")
        .await
        .unwrap()
    {
        apogee_client::consumer::commit_offset(&routes, "AdminG", &mq, 0)
            .await
            .unwrap();
    }
    let reset = json(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "AdminG",
            "-t",
            "AdminT",
            "-s",
            "-1",
        ],
    );
    let at_end: i64 = reset["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["offset"].as_i64().unwrap())
        .sum();
    assert_eq!(at_end, 3);
    let progress = json(&ns, &["consumerProgress", "-g", "AdminG", "-t", "AdminT"]);
    assert_eq!(progress["diffTotal"], 0);
    json(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "AdminG",
            "-t",
            "AdminT",
            "-s",
            "0",
        ],
    );
    let progress = json(&ns, &["consumerProgress", "-g", "AdminG", "-t", "AdminT"]);
    assert_eq!(progress["diffTotal"], 3, "{progress}");
    for q in progress["queues"].as_array().unwrap() {
        assert_eq!(
            q["diff"],
            q["brokerOffset"].as_i64().unwrap() - q["consumerOffset"].as_i64().unwrap()
        );
    }

    // Connected clients.
    let producer = Producer::start(ProducerConfig::new(&ns, "AdminPG"))
        .await
        .unwrap();
    producer.queues("AdminT").await.unwrap(); // learns the brokers it heartbeats to
    producer.heartbeat().await;
    let consumer = PushConsumer::new(PushConsumerConfig::new(&ns, "AdminCG"));
    consumer.subscribe("AdminT", "*");
    consumer
        .start(|_| apogee_client::ConsumeResult::Success)
        .await
        .unwrap();
    let pc = json(
        &ns,
        &["producerConnection", "-g", "AdminPG", "-t", "AdminT"],
    );
    assert_eq!(pc["connectionSet"].as_array().unwrap().len(), 1);
    assert_eq!(pc["connectionSet"][0]["language"], "RUST");
    let cc = common::eventually(Duration::from_secs(10), || async {
        let r = admin(&ns, &["consumerConnection", "-g", "AdminCG", "--json"]);
        (r.code == 0).then(|| r.json())
    })
    .await
    .expect("the push consumer shows as connected");
    assert_eq!(cc["connectionSet"].as_array().unwrap().len(), 1);
    assert!(cc["subscriptionTable"]["AdminT"].is_object());
    let offline = admin(&ns, &["consumerConnection", "-g", "Nobody"]);
    assert!(offline.failed(3).contains("not online"));

    // consumerStatus: the broker forwards GET_CONSUMER_RUNNING_INFO to the consumer, which answers with
    // what it holds. Once it has consumed AdminT's 3 messages, its commit offsets add up to them.
    let running = common::eventually(Duration::from_secs(20), || async {
        let r = json(&ns, &["consumerStatus", "-g", "AdminCG"]);
        let committed: i64 = r[0]["mqTable"]
            .as_array()?
            .iter()
            .filter(|q| q["topic"] == "AdminT")
            .map(|q| q["commitOffset"].as_i64().unwrap_or(0))
            .sum();
        (committed == 3).then_some(r)
    })
    .await
    .expect("the consumer reports commit offsets covering AdminT's 3 messages");
    assert_eq!(running.as_array().unwrap().len(), 1, "{running}");
    assert_eq!(running[0]["clientId"], consumer.client_id(), "{running}");
    assert_eq!(
        running[0]["properties"]["PROP_CONSUME_TYPE"], "CONSUME_PASSIVELY",
        "{running}"
    );
    assert!(
        running[0]["subscriptionSet"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["topic"] == "AdminT" && s["subString"] == "*"),
        "{running}"
    );
    let table = admin(
        &ns,
        &[
            "consumerStatus",
            "-g",
            "AdminCG",
            "-i",
            consumer.client_id(),
        ],
    );
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.starts_with("#ClientId"), "{}", table.stdout);
    let gone = admin(
        &ns,
        &["consumerStatus", "-g", "AdminCG", "-i", "127.0.0.1@nobody"],
    );
    assert!(gone.failed(1).contains("not online"), "{}", gone.stderr);

    let status = json(&ns, &["brokerStatus", "-b", &addr]);
    assert_eq!(status[&addr]["msgPutTotalTodayNow"], "3");
    let stats = json(&ns, &["statsAll", "-t", "AdminT"]);
    let rows = stats["stats"].as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["topic"] == "AdminT" && r["inMsg24Hour"] == 3),
        "{stats}"
    );
    let g = rows
        .iter()
        .find(|r| r["group"] == "AdminG")
        .expect("AdminG has offsets on AdminT");
    assert_eq!(g["accumulation"], 3);
    let table = admin(&ns, &["statsAll", "-t", "AdminT"]);
    assert!(table.stdout.starts_with("#Topic"), "{}", table.stdout);
    consumer.shutdown().await;

    let config = json(&ns, &["getBrokerConfig", "-b", &addr]);
    assert_eq!(config["autoCreateTopicEnable"], "true");
    json(
        &ns,
        &[
            "updateBrokerConfig",
            "-b",
            &addr,
            "-k",
            "autoCreateTopicEnable",
            "-v",
            "false",
        ],
    );
    assert_eq!(
        json(&ns, &["getBrokerConfig", "-b", &addr])["autoCreateTopicEnable"],
        "false"
    );
    let refused = admin(
        &ns,
        &[
            "updateBrokerConfig",
            "-b",
            &addr,
            "-k",
            "listenPort",
            "-v",
            "1",
        ],
    );
    assert!(refused.failed(1).contains("restart"));

    let wiped = json(&ns, &["wipeWritePerm", "-b", "broker-a-0"]);
    assert!(wiped["nameServers"][0]["wipeTopicCount"].as_i64().unwrap() >= 1);
    assert_eq!(
        json(&ns, &["topicRoute", "-t", "AdminT"])["queueDatas"][0]["perm"],
        4
    );
    json(&ns, &["addWritePerm", "-b", "broker-a-0"]);
    assert_eq!(
        json(&ns, &["topicRoute", "-t", "AdminT"])["queueDatas"][0]["perm"],
        6
    );

    json(
        &ns,
        &[
            "deleteSubGroup",
            "-g",
            "AdminG",
            "-c",
            "DefaultCluster",
            "-r",
        ],
    );
    let deleted = json(
        &ns,
        &["deleteTopic", "-t", "AdminT", "-c", "DefaultCluster"],
    );
    assert_eq!(deleted["brokers"], 1);
    let gone = admin(&ns, &["topicRoute", "-t", "AdminT"]);
    assert!(gone.failed(3).contains("AdminT"));

    let closed = common::free_ports(3) - 1;
    let unreachable = admin(&format!("127.0.0.1:{closed}"), &["topicList"]);
    assert!(unreachable
        .failed(1)
        .contains(&format!("127.0.0.1:{closed}")));
    let usage = admin(&ns, &["updateTopic", "-t", "X"]);
    assert!(usage.failed(2).contains("-c clusterName"));
}
