//! A third-party RocketMQ client signs against Apogee as against RocketMQ: the Apache RocketMQ C++ client
//! (PyPI `rocketmq` 0.4.4, its `ClientRPCHook` and session credentials), driven by
//! `tests/suite/third_party/rocketmq_cpp_acl.py`, produces and consumes on an ACL-enabled broker with its
//! access key and secret, and its unsigned send is refused with NO_PERMISSION.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use apogee_client::{Admin, Credentials};

const TOPIC: &str = "CppAclTopic";

const PLAIN_ACL: &str = "\
accounts:
  - accessKey: cppclient1
    secretKey: cpp-secret-1
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - CppAclTopic=PUB|SUB
    groupPerms:
      - CPP_ACL_CONSUMER=SUB
  - accessKey: admin001
    secretKey: admin-secret
    admin: true
";

async fn run_client(namesrv: &str, args: &[&str]) -> String {
    let python = common::third_party_python();
    let home = tempfile::tempdir().unwrap(); // the C++ client logs under $HOME/logs
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/suite/third_party/rocketmq_cpp_acl.py");
    let mut all = vec![namesrv.to_owned(), TOPIC.to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        let out = Command::new(python)
            .arg(script)
            .args(&all)
            .env("HOME", home.path())
            .output()
            .expect("run the C++ client");
        drop(home);
        out
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_client_signs_with_acl() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, PLAIN_ACL).unwrap();
    let acl_opt = format!("aclFile={}", acl_file.display());
    let mut apogee = common::Standalone::start(1, &["-o", "aclEnable=true", "-o", &acl_opt]);
    let admin = Admin::with_credentials(
        &apogee.namesrv,
        Some(Credentials::new("admin001", "admin-secret")),
    );
    admin
        .create_topic("DefaultCluster", TOPIC, 2)
        .await
        .unwrap();
    common::eventually(Duration::from_secs(20), || async {
        admin.queues(TOPIC).await.ok().filter(|q| q.len() == 2)
    })
    .await
    .expect("topic routed");

    let unsigned = run_client(&apogee.namesrv, &["unsigned"]).await;
    assert!(
        unsigned.lines().any(|l| l.starts_with("REFUSED")),
        "an unsigned send is refused:\n{unsigned}"
    );

    let signed = run_client(&apogee.namesrv, &["signed", "cppclient1", "cpp-secret-1"]).await;
    let sent = signed
        .lines()
        .filter(|l| l.starts_with("SENT status=0"))
        .count();
    assert_eq!(sent, 3, "every signed send is SEND_OK:\n{signed}");
    assert!(
        signed
            .lines()
            .any(|l| l == "CONSUMED signed-cpp-0,signed-cpp-1,signed-cpp-2"),
        "the signed consumer reads them:\n{signed}"
    );

    // The refusal of the unsigned send is the broker's, logged as such (the C++ client without
    // credentials still sends an empty AccessKey, which no account has: RocketMQ's "No acl config for ");
    // the signed requests all passed.
    let log = apogee.process.stop().join("\n");
    assert!(
        log.lines()
            .any(|l| l.contains("request refused by ACL") && l.contains("No acl config for")),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("request refused by ACL") && l.contains("cppclient1")),
        "a request signed by the C++ client was refused:\n{log}"
    );
}
