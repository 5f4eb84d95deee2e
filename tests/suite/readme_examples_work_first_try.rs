//! The README's client examples, run as a new user would: each as its own process against a fresh
//! standalone, on the first try. The sends auto-create the topic a few milliseconds before the consumer
//! subscribes to it, so this also proves that a new topic is routed at once and that consumers keep a
//! subscription whose route is not there yet.
//!
//! The example binaries are built with the test's own cargo (a no-op under `cargo test --workspace`,
//! which builds every example already).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");

/// Builds the client's examples with the cargo that runs this test and returns the path of `name`.
fn example(name: &str) -> PathBuf {
    // <target>/<profile>/deps/<this test>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_owned();
    let target_dir = profile_dir.parent().expect("<target>").to_owned();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "-p", "apogee-client", "--example", name])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// Runs an example against `namesrv`, killed after `timeout`.
fn run(path: &Path, namesrv: &str, timeout: Duration) -> Output {
    let mut child = Command::new(path)
        .env("NAMESRV_ADDR", namesrv)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the example");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait().expect("poll the example").is_some() {
            return child.wait_with_output().expect("example output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("example output");
    panic!(
        "{} still running after {timeout:?}:\n{}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README names the command; a fresh standalone; the example sends 10 and receives those 10.
fn first_try(name: &str) {
    let command = format!("cargo run -p apogee-client --example {name}");
    assert!(
        README.lines().any(|l| l.starts_with(&command)),
        "the README runs this example with `{command}`"
    );
    let path = example(name);
    let apogee = common::Standalone::start(1, &[]);
    let out = run(&path, &apogee.namesrv, Duration::from_secs(60));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let sent = stdout.lines().filter(|l| l.starts_with("sent ")).count();
    let received: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("received "))
        .collect();
    assert_eq!(sent, 10, "{stdout}\n{stderr}");
    assert_eq!(received.len(), 10, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("done: sent 10, received 10"),
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn quickstart_sends_10_and_receives_10_on_a_fresh_standalone() {
    first_try("quickstart");
}

#[test]
fn push_consumer_example_sends_10_and_receives_10_on_a_fresh_standalone() {
    first_try("push_consumer");
}

#[test]
fn the_readme_shows_the_push_consumer_example_as_it_is() {
    let file = include_str!("../../client/examples/push_consumer.rs");
    let block = README
        .split("`client/examples/push_consumer.rs`:\n\n```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README: a rust block after `client/examples/push_consumer.rs`:");
    assert_eq!(
        block, file,
        "README.md's push consumer code and client/examples/push_consumer.rs differ: copy the file into the README"
    );
}
