//! deploy/prometheus holds valid Prometheus config and rules, and the alert rules fire as their unit tests
//! say (`promtool check config`, `promtool check rules`, `promtool test rules`). Skips, saying why, where
//! promtool is missing and cannot be installed.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn prometheus_rules_pass_promtool() {
    let Some((promtool, _)) = common::prometheus_tools() else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "apogee-rules.yml"],
        &["test", "rules", "apogee-rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
