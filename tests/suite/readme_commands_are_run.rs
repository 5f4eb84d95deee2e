//! Every command the README shows is run by the test suite or by `.ci/run`, so none can rot: this test
//! finds each one (lines of `sh` blocks, and inline `cargo …` and `apogee …` spans) and checks that the
//! test or script named for it is the one that runs it. A new README command fails here until it is
//! wired to a test.

const README: &str = include_str!("../../README.md");
const CI: &str = include_str!("../../.ci/run");
const COMMON: &str = include_str!("common/mod.rs");
const SUITE_MAIN: &str = include_str!("main.rs");
const ENGINE_SUITE_MAIN: &str = include_str!("../../engine/tests/suite/main.rs");
const EXAMPLES_TEST: &str = include_str!("readme_examples_work_first_try.rs");
const CLI_TEST: &str = include_str!("cli_errors_are_one_line.rs");
const PERF_TEST: &str = include_str!("../../perf/tests/readme_commands_and_errors.rs");
const THIRD_PARTY_TEST: &str = include_str!("third_party_client_produces_and_consumes.rs");
const TRACE_TEST: &str = include_str!("message_trace_is_read_back_by_msg_id.rs");
const ENGINE_MANIFEST: &str = include_str!("../../engine/Cargo.toml");
const ROOT_MANIFEST: &str = include_str!("../../Cargo.toml");
const ADMIN_TEST: &str = include_str!("admin_verbs_run_against_a_standalone.rs");
const METRICS_TEST: &str = include_str!("consume_stats_lag_is_max_minus_committed_per_queue.rs");
const PROMTOOL_TEST: &str = include_str!("prometheus_rules_pass_promtool.rs");
const TLS_TEST: &str = include_str!("tls_enforcing_refuses_plain_and_serves_tls.rs");
const ACL_TEST: &str = include_str!("acl_refuses_unsigned_wrong_and_unpermitted_requests.rs");
const ACL_NAMESRV_TEST: &str = include_str!("acl_guards_name_server_state_changes.rs");

/// Lines of ```sh blocks, and inline `cargo …` / `apogee …` spans, without trailing comments.
fn readme_commands() -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in README.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if in_sh {
            let command = line.split(" # ").next().unwrap_or("").trim();
            if !command.is_empty() {
                out.push(command.to_owned());
            }
            continue;
        }
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 1 && (span.starts_with("cargo ") || span.starts_with("apogee ")) {
                out.push(span.to_owned());
            }
        }
    }
    out
}

/// Which test or script runs `command`, and whether it does.
fn exercised(command: &str) -> Result<&'static str, String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    match words.as_slice() {
        ["cargo", "test", "--workspace"] => CI
            .lines()
            .any(|l| l.trim() == command)
            .then_some(".ci/run")
            .ok_or_else(|| ".ci/run does not run it".into()),
        ["cargo", "test", "-p", package, "--test", "suite", filter @ ..] => {
            let (main, path) = match *package {
                "apogee" => (SUITE_MAIN, "tests/suite/main.rs"),
                "apogee-engine" => (ENGINE_SUITE_MAIN, "engine/tests/suite/main.rs"),
                _ => return Err(format!("{package} has no test binary named suite")),
            };
            // A filter is a test name's start here: some module of the suite begins with it.
            match filter {
                [] => Ok(path),
                [prefix] => main
                    .lines()
                    .any(|l| l.starts_with(&format!("mod {prefix}")))
                    .then_some(path)
                    .ok_or_else(|| format!("no module of {path} starts with `{prefix}`")),
                _ => Err("one filter at most".into()),
            }
        }
        ["cargo", "run", "--release", "--", "standalone", ..] => COMMON
            .contains("\"standalone\".into()")
            .then_some("tests/suite/common (every Standalone runs `apogee standalone`)")
            .ok_or_else(|| "tests/suite/common no longer starts `apogee standalone`".into()),
        ["cargo", "run", "-p", "apogee-client", "--example", name] => EXAMPLES_TEST
            .contains(&format!("first_try(\"{name}\")"))
            .then_some("tests/suite/readme_examples_work_first_try.rs")
            .ok_or_else(|| format!("no first_try(\"{name}\") in the examples test")),
        ["cargo", "run", "--release", "-p", "apogee-perf", "--", ..] => PERF_TEST
            .contains("cargo run --release -p apogee-perf -- ")
            .then_some("perf/tests/readme_commands_and_errors.rs (reads them from the README)")
            .ok_or_else(|| "the perf test no longer reads the README's commands".into()),
        ["cargo", "bench", "-p", "apogee-engine", "--bench", "append"] => ENGINE_MANIFEST
            .contains("name = \"append\"\nharness = false\n")
            .then_some("engine/benches/append.rs (test = true: a smoke run under cargo test)")
            .filter(|_| ENGINE_MANIFEST.contains("test = true"))
            .ok_or_else(|| "the append bench no longer runs under cargo test".into()),
        ["cargo", "bench", "--bench", "micro"] => ROOT_MANIFEST
            .contains("name = \"micro\"\nharness = false\n")
            .then_some("benches/micro.rs (test = true: a smoke run under cargo test)")
            .filter(|_| ROOT_MANIFEST.contains("test = true"))
            .ok_or_else(|| "the micro bench no longer runs under cargo test".into()),
        ["python3", "-m", "venv", "venv", "&&", "venv/bin/pip", "install", package] => {
            // The third-party tests share one venv, which tests/suite/common installs.
            COMMON
                .contains(&format!("const PACKAGE: &str = \"{package}\";"))
                .then_some("tests/suite/common (the third-party tests' venv)")
                .ok_or_else(|| format!("the third-party tests do not install {package}"))
        }
        ["venv/bin/python", script, _namesrv, _topic] => THIRD_PARTY_TEST
            .contains(script)
            .then_some("tests/suite/third_party_client_produces_and_consumes.rs")
            .ok_or_else(|| format!("the third-party test does not run {script}")),
        ["apogee", "broker", "-c", _] => CLI_TEST
            .contains("\"broker\", \"-c\"")
            .then_some("tests/suite/cli_errors_are_one_line.rs")
            .ok_or_else(|| "no test runs `apogee broker -c`".into()),
        ["apogee", "broker", "--store", _, "--namesrv-addr", ..] => COMMON
            .contains("pub fn broker_on(")
            .then_some("tests/suite/common (broker_on(): the replication tests start masters and slaves this way)")
            .ok_or_else(|| "no test starts brokers with `apogee broker --store`".into()),
        ["apogee", "nameserver", "--listen", _, "-o", option]
            if option.starts_with("tls.config.file=") =>
        {
            TLS_TEST
                .contains("nameserver_with(&[\"-o\".into(), file.clone()])")
                .then_some("tests/suite/tls_enforcing_refuses_plain_and_serves_tls.rs")
                .ok_or_else(|| "no test starts a name server with -o tls.config.file".into())
        }
        ["apogee", "admin", "-n", _, "clusterList", "--tls", "--tls-ca", _] => TLS_TEST
            .contains("[\"--tls\", \"--tls-ca\", &ca]")
            .then_some("tests/suite/tls_enforcing_refuses_plain_and_serves_tls.rs")
            .ok_or_else(|| "no test runs `apogee admin ... --tls --tls-ca`".into()),
        ["apogee", "nameserver", "--listen", _] => COMMON
            .contains("\"nameserver\".into()")
            .then_some("tests/suite/common (nameserver())")
            .ok_or_else(|| "no test runs `apogee nameserver --listen`".into()),
        ["apogee", "standalone"] => Ok("tests/suite/common (every Standalone)"),
        ["apogee", "admin", "trace", _, "-n", _] => TRACE_TEST
            .contains("[\"admin\", \"trace\", &sent.msg_id, \"-n\"")
            .then_some("tests/suite/message_trace_is_read_back_by_msg_id.rs")
            .ok_or_else(|| "no test runs `apogee admin trace`".into()),
        ["apogee", "standalone", "-o", "aclEnable=true", "-o", file] if file.starts_with("aclFile=") => {
            (ACL_TEST.contains("\"aclEnable=true\"") && ACL_TEST.contains("aclFile={}"))
                .then_some("tests/suite/acl_refuses_unsigned_wrong_and_unpermitted_requests.rs")
                .ok_or_else(|| "no test starts a standalone with aclEnable and aclFile".into())
        }
        ["apogee", "admin", "--access-key", _, "--secret-key", _, "-n", _, "updateTopic", ..] => {
            ACL_TEST
                .contains("[\"--access-key\", \"admin001\", \"--secret-key\", \"admin-secret\"]")
                .then_some("tests/suite/acl_refuses_unsigned_wrong_and_unpermitted_requests.rs")
                .ok_or_else(|| "no test runs `apogee admin --access-key`".into())
        }
        ["apogee", "nameserver", "--acl-file", _] => ACL_NAMESRV_TEST
            .contains("\"--acl-file\".into()")
            .then_some("tests/suite/acl_guards_name_server_state_changes.rs")
            .ok_or_else(|| "no test runs `apogee nameserver --acl-file`".into()),
        ["apogee", "admin"] => ADMIN_TEST
            .contains("CARGO_BIN_EXE_apogee")
            .then_some("tests/suite/admin_verbs_run_against_a_standalone.rs")
            .ok_or_else(|| "no test runs `apogee admin`".into()),
        ["apogee", "admin", "-n", _, verb, ..] => ADMIN_TEST
            .contains(&format!("\"{verb}\""))
            .then_some("tests/suite/admin_verbs_run_against_a_standalone.rs")
            .ok_or_else(|| format!("the admin verbs test does not run `{verb}`")),
        ["apogee", "standalone", "-o", option] if option.starts_with("metricsPort=") => METRICS_TEST
            .contains("metricsPort={metrics_port}")
            .then_some("tests/suite/consume_stats_lag_is_max_minus_committed_per_queue.rs (scrapes /metrics)")
            .ok_or_else(|| "no test starts a standalone with metricsPort".into()),
        ["promtool", "test", "rules", path] => PROMTOOL_TEST
            .contains(path.trim_start_matches("deploy/prometheus/"))
            .then_some("tests/suite/prometheus_rules_pass_promtool.rs")
            .ok_or_else(|| format!("the promtool test does not run {path}")),
        _ => Err("no test or script runs it: add one, and a rule here".into()),
    }
}

#[test]
fn every_readme_command_is_run_by_a_test_or_ci() {
    let commands = readme_commands();
    assert!(commands.len() >= 10, "found: {commands:#?}");
    let unrun: Vec<String> = commands
        .iter()
        .filter_map(|c| exercised(c).err().map(|why| format!("`{c}`: {why}")))
        .collect();
    assert!(
        unrun.is_empty(),
        "README commands nothing runs:\n{}",
        unrun.join("\n")
    );
}

/// CI's style gates (formatting, lints as errors) come first; the one test command is the README's.
#[test]
fn ci_runs_the_style_gates_then_exactly_the_readme_test_command() {
    let ci_commands: Vec<&str> = CI
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cargo "))
        .collect();
    assert_eq!(
        ci_commands,
        [
            "cargo fmt --all --check",
            "cargo clippy --workspace --all-targets --quiet -- -D warnings",
            "cargo test --workspace"
        ]
    );
    assert!(readme_commands()
        .iter()
        .any(|c| c == "cargo test --workspace"));
}
