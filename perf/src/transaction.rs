//! The `transaction` workload: transactional sends against plain sends in one run, then the check-back rate.
//!
//! Three phases, on the same topic and with the same `--producers` concurrent senders:
//! 1. plain: sync sends for `--duration` seconds (after `--warmup`);
//! 2. transactional: `send_in_transaction` with a local transaction that commits at once, for `--duration`
//!    seconds: each counts once its half message was stored and its END (commit) answered;
//! 3. check-back: `--check-backs` half messages ended "unknown"; the broker checks each back with the
//!    producer's checker (which commits it). So that the check-backs measure the broker and not the pace
//!    of the sends, every message carries a CHECK_IMMUNITY_TIME_IN_SECONDS that makes them all due within
//!    the same second, after the last is sent (the sends' pace is known from phase 2). The rate is
//!    distinct half messages checked back per second, from the first check-back to the last.
//!
//! The broker's `transactionTimeOut` and `transactionCheckInterval` come from its own configuration; an
//! embedded broker takes them from `--transaction-timeout-ms` and `--transaction-check-interval-ms`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_client::{LocalTransactionState, Message, MessageExt, Producer, TransactionProducer};
use hdrhistogram::Histogram;

use super::{body, hist, percentiles, Cli};

/// Longest wait for the last check-back, past the broker's transaction timeout.
const CHECK_BACK_WAIT_MAX: Duration = Duration::from_secs(120);
/// Check-back phase: the half messages become due this long after the last is expected to be sent.
const DUE_MARGIN: Duration = Duration::from_secs(3);

/// Half messages checked back, and when the first and the last were.
#[derive(Default)]
struct Checked {
    ids: HashSet<String>,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// One phase's outcome.
struct Phase {
    ok: u64,
    failed: u64,
    seconds: f64,
    latency: Histogram<u64>,
    first_failure: Option<String>,
}

impl Phase {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok, "failed": self.failed, "seconds": self.seconds,
            "msgs_per_s": self.ok as f64 / self.seconds.max(f64::MIN_POSITIVE),
            "latency": percentiles(&self.latency),
        })
    }
}

/// Runs `op` from `--producers` tasks until `--messages` or `--duration` (after `--warmup`).
async fn phase<F, Fut>(cli: &Cli, op: F) -> Phase
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latency = Arc::new(Mutex::new(hist()));
    let first_failure: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..cli.producers.max(1) {
        let (op, measuring, stop) = (op.clone(), measuring.clone(), stop.clone());
        let (ok, failed, latency, first_failure) = (
            ok.clone(),
            failed.clone(),
            latency.clone(),
            first_failure.clone(),
        );
        let max = cli.messages;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = op().await;
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match r {
                    Ok(()) => {
                        let n = ok.fetch_add(1, Ordering::Relaxed) + 1;
                        let us = (started.elapsed().as_micros() as u64).clamp(1, 60_000_000);
                        let _ = latency.lock().unwrap_or_else(|p| p.into_inner()).record(us);
                        if max.is_some_and(|m| n >= m) {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_failure
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(cli.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(cli.duration);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let latency = latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let first_failure = first_failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    Phase {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        seconds,
        latency,
        first_failure,
    }
}

pub async fn run(cli: &Cli, namesrv: &str) -> Result<serde_json::Value, String> {
    let topic = cli.topic.clone();
    let size = cli.size;
    let plain = Producer::start(cli.producer_config(namesrv, "apogee-perf-producer"))
        .await
        .map_err(|e| format!("cannot start a producer with name server {namesrv}: {e}"))?;
    let checked: Arc<Mutex<Checked>> = Arc::default();
    let seen = checked.clone();
    let tx = TransactionProducer::start(
        cli.producer_config(namesrv, "apogee-perf-tx-producer"),
        move |m: &MessageExt| {
            let mut c = seen.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if c.ids.insert(m.msg_id.clone()) {
                c.first.get_or_insert(now);
                c.last = Some(now);
            }
            LocalTransactionState::Commit
        },
    )
    .await
    .map_err(|e| {
        format!("cannot start a transactional producer with name server {namesrv}: {e}")
    })?;

    eprintln!("phase 1/3: plain sends");
    let (p, t) = (plain.clone(), topic.clone());
    let plain_phase = phase(cli, move || {
        let (p, t) = (p.clone(), t.clone());
        async move {
            p.send(Message::new(t, body(size)))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    report("plain", &plain_phase);

    eprintln!("phase 2/3: transactional sends (half + END commit)");
    let (p, t) = (tx.clone(), topic.clone());
    let tx_phase = phase(cli, move || {
        let (p, t) = (p.clone(), t.clone());
        async move {
            let r = p
                .send_in_transaction(Message::new(t, body(size)), |_| {
                    LocalTransactionState::Commit
                })
                .await
                .map_err(|e| e.to_string())?;
            r.end.map_err(|e| format!("END: {e}"))
        }
    })
    .await;
    report("transactional", &tx_phase);

    eprintln!(
        "phase 3/3: {} half messages left unknown, checked back by the broker",
        cli.check_backs
    );
    let sent = Arc::new(AtomicU64::new(0));
    let tx_rate = (tx_phase.ok as f64 / tx_phase.seconds).max(1.0);
    let due_at = Instant::now()
        + Duration::from_secs_f64(cli.check_backs as f64 / tx_rate * 2.5)
        + DUE_MARGIN;
    let mut senders = Vec::new();
    for _ in 0..cli.producers.max(1) {
        let (p, t, sent, n) = (tx.clone(), topic.clone(), sent.clone(), cli.check_backs);
        senders.push(tokio::spawn(async move {
            while sent.fetch_add(1, Ordering::Relaxed) < n {
                let wait_ms = due_at.saturating_duration_since(Instant::now()).as_millis();
                let immunity_s = wait_ms.div_ceil(1000).to_string();
                let m = Message::new(t.clone(), body(size))
                    .with_property("CHECK_IMMUNITY_TIME_IN_SECONDS", immunity_s);
                let _ = p
                    .send_in_transaction(m, |_| LocalTransactionState::Unknown)
                    .await;
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let all_sent = Instant::now();
    let want = cli.check_backs as usize;
    while checked.lock().unwrap_or_else(|p| p.into_inner()).ids.len() < want
        && all_sent.elapsed() < CHECK_BACK_WAIT_MAX
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (count, span) = {
        let c = checked.lock().unwrap_or_else(|p| p.into_inner());
        let span = match (c.first, c.last) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        (c.ids.len(), span)
    };
    let rate = if span > 0.0 { count as f64 / span } else { 0.0 };
    eprintln!(
        "check-back: {count} of {want} half messages checked back in {span:.2} s from the first to the last: {rate:.0} check-backs/s"
    );
    let ratio = tx_phase.ok as f64
        / tx_phase.seconds
        / (plain_phase.ok as f64 / plain_phase.seconds).max(f64::MIN_POSITIVE);
    eprintln!(
        "summary: plain {:.0} msgs/s, transactional {:.0} msgs/s ({:.0} % of plain), check-back {rate:.0} /s",
        plain_phase.ok as f64 / plain_phase.seconds,
        tx_phase.ok as f64 / tx_phase.seconds,
        ratio * 100.0
    );
    if plain_phase.ok == 0 || tx_phase.ok == 0 {
        let first = plain_phase
            .first_failure
            .or(tx_phase.first_failure)
            .unwrap_or_else(|| "no send completed".into());
        return Err(format!("sends to topic {topic} failed; the first: {first}"));
    }
    Ok(serde_json::json!({
        "workload": "Transaction", "producers": cli.producers, "size": cli.size,
        "sent": plain_phase.ok + tx_phase.ok, "failed": plain_phase.failed + tx_phase.failed,
        "plain": plain_phase.json(), "transactional": tx_phase.json(),
        "transactional_to_plain": ratio,
        "check_back": { "half_messages": want, "checked_back": count, "seconds": span, "per_s": rate },
    }))
}

fn report(name: &str, p: &Phase) {
    eprintln!(
        "{name}: {:.0} msgs/s over {:.1} s ({} ok, {} failed); latency p50 {} p99 {} us",
        p.ok as f64 / p.seconds.max(f64::MIN_POSITIVE),
        p.seconds,
        p.ok,
        p.failed,
        p.latency.value_at_quantile(0.5),
        p.latency.value_at_quantile(0.99)
    );
}
