//! A name server started with `--acl-file` (as `apogee nameserver --acl-file plain_acl.yml`) refuses
//! state changes (KV config writes and deletes, topic deletion) unsigned or from a non-admin account
//! with NO_PERMISSION and RocketMQ's remark, serves them to a signed admin, and leaves reads open.

use crate::common;

use std::time::Duration;

use apogee_client::{Admin, ClientError, Credentials};

const PLAIN_ACL: &str = "\
accounts:
  - accessKey: producer1
    secretKey: producer-secret
    defaultTopicPerm: PUB
  - accessKey: admin001
    secretKey: admin-secret
    admin: true
";

fn refused(r: Result<impl std::fmt::Debug, ClientError>, remark: &str) {
    match r {
        Err(ClientError::Broker {
            code: 16,
            remark: got,
            ..
        }) => assert_eq!(got, remark),
        other => panic!("expected NO_PERMISSION `{remark}`, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_guards_name_server_state_changes() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, PLAIN_ACL).unwrap();
    let port = common::free_ports(3) - 1;
    let namesrv = format!("127.0.0.1:{port}");
    let _ns = common::Process::spawn(
        &[
            "nameserver".into(),
            "--listen".into(),
            namesrv.clone(),
            "--acl-file".into(),
            acl_file.display().to_string(),
        ],
        "name server started",
    );
    let creds = |ak: &str, sk: &str| Some(Credentials::new(ak, sk));
    let unsigned = Admin::new(&namesrv);
    let producer = Admin::with_credentials(&namesrv, creds("producer1", "producer-secret"));
    let wrong = Admin::with_credentials(&namesrv, creds("admin001", "not-the-secret"));
    let admin = Admin::with_credentials(&namesrv, creds("admin001", "admin-secret"));

    refused(
        unsigned.put_kv("ns", "k", "v").await,
        "No accessKey is configured",
    );
    refused(
        wrong.put_kv("ns", "k", "v").await,
        "Check signature failed for accessKey=admin001",
    );
    refused(
        producer.put_kv("ns", "k", "v").await,
        "Need admin permission for request code=100, but accessKey=producer1 is not",
    );
    admin
        .put_kv("ns", "k", "v")
        .await
        .expect("the admin writes");
    // Reads are not checked, as in RocketMQ's name server.
    assert_eq!(
        unsigned.get_kv("ns", "k").await.unwrap().as_deref(),
        Some("v")
    );
    refused(
        producer.delete_kv("ns", "k").await,
        "Need admin permission for request code=102, but accessKey=producer1 is not",
    );
    // DELETE_TOPIC_IN_NAMESRV, as mqadmin deleteTopic sends it to each name server.
    let (remoting, _) = apogee_client::remoting::Remoting::new();
    let delete = apogee_net::RemotingCommand::request(
        apogee_net::codes::RequestCode::DeleteTopicInNamesrv as i32,
        0,
    )
    .with_ext("topic", "t");
    refused(
        remoting
            .invoke_ok(&namesrv, delete.clone(), Duration::from_secs(5))
            .await,
        "No accessKey is configured",
    );
    let signed = remoting.with_credentials(creds("admin001", "admin-secret"));
    signed
        .invoke_ok(&namesrv, delete, Duration::from_secs(5))
        .await
        .expect("the admin deletes a topic");
    admin.delete_kv("ns", "k").await.expect("the admin deletes");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), unsigned.get_kv("ns", "k"))
            .await
            .unwrap()
            .unwrap(),
        None
    );
}
