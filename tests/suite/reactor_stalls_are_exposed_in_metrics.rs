//! Each shard's stall probe feeds `/metrics`: `apogee_reactor_stall_seconds` (a histogram with cumulative
//! buckets from 0.5 ms to 100 ms, as many probes as the shard ran) and `apogee_reactor_stall_max_seconds`.

use crate::common;

use std::time::{Duration, Instant};

/// The value of the sample line starting with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn reactor_stalls_are_exposed_in_metrics() {
    let metrics_port = common::free_ports(3);
    let apogee = common::Standalone::start(2, &["-o", &format!("metricsPort={metrics_port}")]);
    let addr = format!("127.0.0.1:{metrics_port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    // Snapshots are taken once a second: wait until both shards published probes.
    while Instant::now() < deadline {
        text = common::http_get(&addr, "/metrics").unwrap_or_default();
        let ready = (0..2).all(|s| {
            sample(
                &text,
                &format!(
                    "apogee_reactor_stall_seconds_count{{broker=\"broker-a-{s}\",shard=\"{s}\"}}"
                ),
            )
            .is_some_and(|n| n >= 100.0)
        });
        if ready {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        text.contains("# TYPE apogee_reactor_stall_seconds histogram"),
        "{text}"
    );
    for s in 0..2 {
        let labels = format!("broker=\"broker-a-{s}\",shard=\"{s}\"");
        let count = sample(
            &text,
            &format!("apogee_reactor_stall_seconds_count{{{labels}}}"),
        )
        .unwrap_or_else(|| panic!("no stall count for shard {s}:\n{text}"));
        assert!(count >= 100.0, "shard {s} ran {count} probes:\n{text}");
        let mut previous = 0.0;
        for le in [
            "0.0005", "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "+Inf",
        ] {
            let n = sample(
                &text,
                &format!("apogee_reactor_stall_seconds_bucket{{{labels},le=\"{le}\"}}"),
            )
            .unwrap_or_else(|| panic!("no bucket le={le} for shard {s}:\n{text}"));
            assert!(n >= previous, "buckets are cumulative:\n{text}");
            previous = n;
        }
        assert_eq!(previous, count, "+Inf holds every probe");
        let sum = sample(
            &text,
            &format!("apogee_reactor_stall_seconds_sum{{{labels}}}"),
        )
        .unwrap();
        let max = sample(
            &text,
            &format!("apogee_reactor_stall_max_seconds{{{labels}}}"),
        )
        .unwrap();
        // Sane: a probe wakes after 1 ms sleeps; an idle shard's lateness is well under a second on average,
        // and the longest one since start is positive and below a minute.
        assert!(
            sum >= 0.0 && sum / count < 0.1,
            "sum {sum} over {count} probes"
        );
        assert!(max > 0.0 && max < 60.0, "max {max}");
    }
    drop(apogee);
}
