//! Whatever a user gets wrong when starting `apogee` (a flag, a config file, a port in use, a store it
//! cannot create) ends it with one line naming what failed and where, and a non-zero exit, never a
//! panic; and its logs carry no colour codes when they do not go to a terminal, or come as JSON.

use crate::common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `apogee args`; returns (exit code, stderr). Killed (and failed) after 30 s.
fn apogee(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apogee");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("apogee {args:?} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Besides log records (which start with their timestamp), one line: `apogee: ...`, the last, containing
/// every one of `names`; and no panic.
fn assert_one_line(stderr: &str, names: &[&str]) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    let is_log = |l: &str| l.len() > 20 && l.as_bytes()[4] == b'-' && l.as_bytes()[10] == b'T';
    let other: Vec<&str> = stderr.lines().filter(|l| !is_log(l)).collect();
    assert_eq!(other.len(), 1, "one line:\n{stderr}");
    let line = other[0];
    assert!(line.starts_with("apogee: "), "{stderr}");
    assert_eq!(
        Some(line),
        stderr.lines().last(),
        "the error comes last:\n{stderr}"
    );
    for n in names {
        assert!(line.contains(n), "`{n}` named in: {line}");
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    for (args, names) in [
        (&["--bogus"][..], &["--bogus"][..]),
        (
            &["broker", "--listen-port", "lots"],
            &["lots", "--listen-port"],
        ),
        (&["nameserver", "--listen", "nowhere"], &["nowhere"]),
        (&["launch"], &["launch"]),
    ] {
        let (code, stderr) = apogee(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_one_line(&stderr, names);
    }
}

#[test]
fn more_shards_than_usable_cpus_are_refused() {
    let (code, stderr) = apogee(&["standalone", "--shards", "256", "--listen-port", "30000"]);
    assert_eq!(code, 1, "{stderr}");
    assert_one_line(&stderr, &["--shards 256", "CPUs this process may use"]);
}

#[test]
fn bad_config_is_named() {
    let (code, stderr) = apogee(&["broker", "-c", "/nonexistent/broker.conf"]);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &["/nonexistent/broker.conf"]);

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "flushDiskType=SOMETIMES\n").unwrap();
    let (code, stderr) = apogee(&["broker", "-c", conf.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &["flushDiskType"]);

    let (code, stderr) = apogee(&["broker", "-o", "listenPort"]);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &["listenPort"]);

    let (code, stderr) = apogee(&["broker", "--namesrv-addr", "127.0.0.1:9876;nameserver"]);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &["namesrvAddr", "`nameserver`"]);
}

#[test]
fn ports_in_use_and_stores_that_cannot_be_made_are_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = apogee(&["nameserver", "--listen", &addr]);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &[&addr]);

    let store = tempfile::tempdir().unwrap();
    let store = store.path().display().to_string();
    let (code, stderr) = apogee(&[
        "standalone",
        "--store",
        &store,
        "--namesrv-addr",
        &addr,
        "--listen-port",
        &common::free_ports(4).to_string(),
        "--shards",
        "1",
    ]);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &[&addr]);

    let port = common::free_ports(4);
    let busy = TcpListener::bind(("0.0.0.0", port)).unwrap();
    let (code, stderr) = apogee(&[
        "broker",
        "--store",
        &store,
        "--namesrv-addr",
        "127.0.0.1:1",
        "--listen-port",
        &port.to_string(),
        "--shards",
        "1",
    ]);
    drop(busy);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &[&port.to_string()]);

    // A store under a path that is a file.
    let file = tempfile::NamedTempFile::new().unwrap();
    let under = file.path().join("store").display().to_string();
    let (code, stderr) = apogee(&[
        "broker",
        "--store",
        &under,
        "--listen-port",
        &common::free_ports(4).to_string(),
        "--shards",
        "1",
    ]);
    assert_eq!(code, 1);
    assert_one_line(&stderr, &[&under]);
}

#[test]
fn logs_have_no_colour_off_a_terminal_and_come_as_json_on_request() {
    // stderr is a pipe here: plain text.
    let mut ns = common::nameserver(120_000);
    let log = ns.0.stop();
    assert!(!log.is_empty());
    for l in &log {
        assert!(
            !l.contains('\u{1b}'),
            "an escape code in a piped log: {l:?}"
        );
    }

    let port = common::free_ports(3) - 1;
    let addr = format!("127.0.0.1:{port}");
    let mut json = common::Process::spawn(
        &[
            "nameserver".into(),
            "--listen".into(),
            addr,
            "--log-format".into(),
            "json".into(),
        ],
        "name server started",
    );
    let log = json.stop();
    let started = log
        .iter()
        .find(|l| l.contains("name server started"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(started).expect("a JSON log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "name server started");
    for l in log.iter().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}
