//! The README's `apogee-perf` commands, run as written (built in the test's profile rather than
//! `--release`, for 1 s instead of 30, and against an in-process Apogee where they name a name server), and
//! what `apogee-perf` says when it cannot run: one line naming what failed and where, a non-zero exit,
//! never a panic.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");
const PREFIX: &str = "cargo run --release -p apogee-perf -- ";

fn perf(args: &[String], dir: Option<&std::path::Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apogee-perf"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn apogee-perf");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("apogee-perf {args:?} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `--duration N` becomes 1 s without warm-up; a name server address becomes `namesrv`; `--json` added.
/// Splits a command line as a shell does for the README's commands: on whitespace, with double quotes
/// grouping words (`--message-delay-level "1s 2s"`).
fn shell_words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in command.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

fn shortened(command: &str, namesrv: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let words = shell_words(command);
    let mut words = words.iter().map(String::as_str);
    while let Some(w) = words.next() {
        match w {
            "--duration" => {
                words.next();
            }
            // A test's load, not a benchmark's.
            "--messages" => {
                words.next();
                out.extend(["--messages".into(), "2000".into()]);
            }
            "--namesrv" => {
                words.next();
                out.extend(["--namesrv".into(), namesrv.into()]);
            }
            w => out.push(w.into()),
        }
    }
    // Paced runs (`--rate`) get longer: the first sends wait for the embedded broker's routes, and on a
    // busy 2-core CI machine (debug builds, other tests running) none had been answered after 1 s.
    let seconds = if command.contains("--rate") { "3" } else { "1" };
    out.extend(["--duration", seconds, "--warmup", "0", "--json"].map(String::from));
    out
}

/// A standalone Apogee in this process, for the commands that name a name server.
fn standalone(dir: &std::path::Path) -> (apogee::Running, String) {
    let port = |span: u16| {
        let seed = std::process::id() as u16;
        (0..500u16)
            .map(|i| 20_000 + (seed.wrapping_add(i.wrapping_mul(89)) % 9_000))
            .find(|b| {
                (b - 2..b - 2 + span).all(|p| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
            })
            .expect("free ports")
    };
    let ns_port = port(3) - 1;
    let config = apogee::BrokerConfig {
        store_path_root_dir: dir.to_owned(),
        shards: 1,
        listen_port: port(4),
        namesrv_addr: vec![format!("127.0.0.1:{ns_port}")],
        mapped_file_size_commit_log: 64 * 1024 * 1024,
        ..Default::default()
    };
    let ns = apogee_nameserver::NameServerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], ns_port)),
        broker_expiry_ms: apogee_nameserver::BROKER_EXPIRY_MS_DEFAULT,
        tls: None,
        ..Default::default()
    };
    let running = apogee::start(config, Some(ns)).expect("standalone starts");
    (running, format!("127.0.0.1:{ns_port}"))
}

#[test]
fn every_readme_perf_command_runs() {
    let commands: Vec<&str> = README
        .lines()
        .filter_map(|l| l.strip_prefix(PREFIX))
        .collect();
    assert!(
        commands.len() >= 3,
        "the README's perf commands: {commands:?}"
    );
    let store = tempfile::tempdir().unwrap();
    let (running, namesrv) = standalone(store.path());
    let work = tempfile::tempdir().unwrap(); // --embedded puts its temporary store under the current folder
                                             // The ACL command reads `plain_acl.yml` from the current folder: the README's example, as written.
    let plain_acl = README
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README: the plain_acl.yml example (a yaml block)");
    std::fs::write(work.path().join("plain_acl.yml"), plain_acl).unwrap();
    for command in commands {
        let args = shortened(command, &namesrv);
        let out = perf(&args, Some(work.path()));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{command}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{command}:\n{stderr}");
        let summary: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{command}: {e}:\n{stdout}\n{stderr}"));
        if command.contains("--sql") {
            // Both drains find the same 10 % of the 2000 loaded messages.
            assert_eq!(summary["tag"]["matched"], 200, "{command}: {summary}");
            assert_eq!(summary["sql_run"]["matched"], 200, "{command}: {summary}");
            assert!(
                stderr.contains("SQL92 filter cost on the broker"),
                "{stderr}"
            );
            continue;
        }
        if command.contains("--trace-compare") {
            for run in ["trace_off", "trace_on"] {
                assert!(
                    summary[run]["sent"].as_u64().unwrap() > 0,
                    "{run}: {summary}"
                );
                assert_eq!(summary[run]["failed"], 0, "{run}: {summary}");
            }
            assert!(stderr.contains("trace off:"), "{stderr}");
            continue;
        }
        assert!(
            summary["sent"].as_u64().unwrap() > 0,
            "{command}: {summary}"
        );
        assert_eq!(summary["failed"], 0, "{command}: {summary}");
        if let Some(at) = args.iter().position(|a| a == "--report") {
            let page = std::fs::read_to_string(work.path().join(&args[at + 1]))
                .unwrap_or_else(|e| panic!("{command}: the report: {e}"));
            assert!(page.starts_with("<!DOCTYPE html>"), "{command}");
            assert!(page.contains("<polyline"), "{command}: no curve drawn");
        }
        if command.contains("--rate") {
            assert!(stderr.contains("pacing: sends started"), "{stderr}");
            assert!(
                summary["pacing_error"]["count"].as_u64().unwrap() > 0,
                "{summary}"
            );
        }
    }
    running.stop();
}

/// Whether `line` is the embedded broker's own log (tracing's `<RFC 3339 time>Z  <LEVEL> ...`): on a busy
/// machine it may warn of a reactor stall while the run fails, which is not the run's error message.
fn is_embedded_broker_log(line: &str) -> bool {
    let Some((time, rest)) = line.split_once("Z ") else {
        return false;
    };
    let level = rest.trim_start().split(' ').next().unwrap_or("");
    time.len() >= "2026-01-01T00:00:00".len()
        && time.as_bytes()[4] == b'-'
        && time.as_bytes()[10] == b'T'
        && ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level)
}

/// One line `apogee-perf: ...` naming each of `names`; no panic.
fn assert_error(out: &Output, code: i32, names: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("embedded apogee:") && !is_embedded_broker_log(l))
        .collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    assert!(lines[0].starts_with("apogee-perf: "), "{stderr}");
    for n in names {
        assert!(lines[0].contains(n), "`{n}` named in: {}", lines[0]);
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_unreachable_name_server_is_one_line() {
    let out = perf(
        &args(&["produce", "--namesrv", "127.0.0.1:1", "--duration", "1"]),
        None,
    );
    assert_error(&out, 1, &["127.0.0.1:1"]);
}

#[test]
fn tls_without_a_ca_or_with_sql_is_one_line() {
    let out = perf(
        &args(&[
            "produce",
            "--tls",
            "--namesrv",
            "127.0.0.1:1",
            "--duration",
            "1",
        ]),
        None,
    );
    assert_error(&out, 1, &["--tls-ca"]);
    let out = perf(
        &args(&["consume", "--embedded", "--tls", "--sql", "a = 0"]),
        None,
    );
    assert_error(&out, 2, &["--tls", "--sql"]);
}

#[test]
fn bad_flags_are_one_line() {
    for a in [
        &["produce", "--bogus"][..],
        &["fly"],
        &["e2e", "--rate", "fast"],
        &[],
    ] {
        let out = perf(&args(a), None);
        assert_error(&out, 2, &[]);
    }
}

#[test]
fn a_store_that_cannot_be_made_is_named() {
    // --embedded makes its store under the current folder: here, one removed after the process entered it.
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("gone");
    std::fs::create_dir(&cwd).unwrap();
    let script = format!(
        "cd '{0}' && rmdir '{0}' && exec '{1}' produce --embedded --duration 1",
        cwd.display(),
        env!("CARGO_BIN_EXE_apogee-perf")
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_error(&out, 1, &["cannot create a temporary store"]);
}

#[test]
fn a_refused_request_is_one_line() {
    // The broker refuses to create a topic with an illegal name; the run stops there and says so.
    let work = tempfile::tempdir().unwrap();
    let out = perf(
        &args(&[
            "produce",
            "--embedded",
            "--topic",
            "bad/topic",
            "--duration",
            "1",
        ]),
        Some(work.path()),
    );
    assert_error(&out, 1, &["bad/topic"]);
}

#[test]
fn the_embedded_broker_log_is_told_apart_from_the_run_error() {
    // Lines from a run that failed on a busy machine: the stall warning is the broker's, the error the run's.
    assert!(is_embedded_broker_log(
        "2026-12-07T14:06:15.998036Z  WARN apogee::stall: reactor stall: the shard did not poll for 16 ms"
    ));
    assert!(!is_embedded_broker_log(
        "apogee-perf: cannot create topic bad/topic on cluster DefaultCluster: broker 127.0.0.1:54710 answered code 1"
    ));
    assert!(!is_embedded_broker_log(
        "apogee-perf: 2026-12-07T14:06:15Z is not a duration"
    ));
}
