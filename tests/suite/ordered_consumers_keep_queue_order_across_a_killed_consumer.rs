//! Strictly ordered consumption across a crash: two ordered consumers of a group (one of them a separate
//! process) split the queues through broker locks and never consume the same queue at the same time; the
//! process is then SIGKILLed without unlocking, its locks expire on the broker (`rebalanceLockMaxLiveTime`,
//! shortened here), and the survivor takes its queues over. Every queue's messages are consumed in send
//! order: at least once, a re-delivered message only ever the one right after the last committed.
//!
//! The second consumer is this test binary run again as a child with the ignored test
//! `orderly_consumer_child` selected; it logs each message it consumes to a file, one write per line.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_client::{
    ConsumeResult, Message, MessageExt, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};

const TOPIC: &str = "Ordered";
const GROUP: &str = "ordered";
const QUEUES: i32 = 4;
/// Messages per queue in each of the three phases.
const PHASE: usize = 15;
/// How long the child runs at most if nobody kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

fn config(namesrv: &str) -> PushConsumerConfig {
    let mut c = PushConsumerConfig::new(namesrv, GROUP);
    c.lock_renew_interval = Duration::from_millis(500);
    c.lock_max_live = Duration::from_millis(2000);
    c.suspend_current_queue_time = Duration::from_millis(100);
    c
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// (time ms, queue id, sequence number) of one consumption.
type Event = (u64, i32, usize);

fn parse_body(m: &MessageExt) -> usize {
    let text = String::from_utf8_lossy(&m.body);
    let (_, seq) = text.split_once('-').expect("q-seq body");
    seq.parse().expect("sequence number")
}

/// Run only as the child process of the test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of ordered_consumers_keep_queue_order_across_a_killed_consumer"]
async fn orderly_consumer_child() {
    let (Ok(namesrv), Ok(log)) = (
        std::env::var("APOGEE_ORDERLY_NAMESRV"),
        std::env::var("APOGEE_ORDERLY_LOG"),
    ) else {
        panic!("run by the parent test only");
    };
    let file = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("child log"),
    ));
    let consumer = PushConsumer::new(config(&namesrv));
    consumer.subscribe(TOPIC, "*");
    let f = file.clone();
    consumer
        .start_orderly(move |batch: &[MessageExt]| {
            for m in batch {
                let line = format!("{} {} {}\n", now_ms(), m.queue.queue_id, parse_body(m));
                f.lock().unwrap().write_all(line.as_bytes()).expect("log");
            }
            // Slow enough that a take-over mid-stream would interleave visibly.
            std::thread::sleep(Duration::from_millis(5));
            ConsumeResult::Success
        })
        .await
        .expect("child start");
    tokio::time::sleep(CHILD_LIFETIME).await;
}

fn child_events(path: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            Some((
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Per queue, the distinct sequence numbers seen.
fn covered(events: &[Event], upto: usize) -> bool {
    (0..QUEUES).all(|q| {
        let mut seen = vec![false; upto];
        for (_, eq, s) in events {
            if *eq == q && *s < upto {
                seen[*s] = true;
            }
        }
        seen.iter().all(|b| *b)
    })
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

async fn send_phase(producer: &Producer, queues: &[apogee_client::MessageQueue], phase: usize) {
    for seq in phase * PHASE..(phase + 1) * PHASE {
        for mq in queues {
            producer
                .send_to_queue(Message::new(TOPIC, format!("{}-{seq}", mq.queue_id)), mq)
                .await
                .unwrap();
        }
    }
}

/// Whether the survivor consumed queue `q` before `t`.
fn survivor_had_before(mine: &[Event], q: i32, t: u64) -> bool {
    mine.iter().any(|e| e.1 == q && e.0 < t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_consumers_keep_queue_order_across_a_killed_consumer() {
    let apogee = common::Standalone::start(1, &["-o", "rebalanceLockMaxLiveTime=3000"]);
    let queues = common::create_topic(&apogee.namesrv, TOPIC, QUEUES).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    send_phase(&producer, &queues, 0).await;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("child.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            common::exact_test_name(module_path!(), "orderly_consumer_child").as_str(),
            "--nocapture",
        ])
        .env("APOGEE_ORDERLY_NAMESRV", &apogee.namesrv)
        .env("APOGEE_ORDERLY_LOG", &log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child consumer");
    assert!(
        wait_until(Duration::from_secs(30), || !child_events(&log).is_empty()).await,
        "the child consumer never consumed"
    );

    let mine: Arc<Mutex<Vec<Event>>> = Arc::new(Mutex::new(Vec::new()));
    let survivor = PushConsumer::new(config(&apogee.namesrv));
    survivor.subscribe(TOPIC, "*");
    let m = mine.clone();
    survivor
        .start_orderly(move |batch: &[MessageExt]| {
            let mut m = m.lock().unwrap();
            for msg in batch {
                m.push((now_ms(), msg.queue.queue_id, parse_body(msg)));
            }
            std::thread::sleep(Duration::from_millis(5));
            ConsumeResult::Success
        })
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || survivor.assigned().len() == 2).await,
        "the queues were not split: {:?}",
        survivor.assigned()
    );
    send_phase(&producer, &queues, 1).await;
    let all = |mine: &Mutex<Vec<Event>>| {
        let mut v = child_events(&log);
        v.extend(mine.lock().unwrap().iter().cloned());
        v
    };
    assert!(
        wait_until(Duration::from_secs(30), || covered(&all(&mine), 2 * PHASE)).await,
        "phases 0 and 1 not consumed"
    );

    // The child dies holding its locks; the survivor waits for them to expire, then takes over.
    let _ = child.kill();
    let _ = child.wait();
    let killed_at = now_ms();
    send_phase(&producer, &queues, 2).await;
    assert!(
        wait_until(Duration::from_secs(40), || covered(&all(&mine), 3 * PHASE)).await,
        "the survivor did not take the killed consumer's queues over: holds {:?}",
        survivor.assigned()
    );
    assert_eq!(survivor.assigned().len(), QUEUES as usize);

    let child = child_events(&log);
    let mine = mine.lock().unwrap().clone();
    for q in 0..QUEUES {
        let theirs: Vec<&Event> = child.iter().filter(|e| e.1 == q).collect();
        let ours: Vec<&Event> = mine.iter().filter(|e| e.1 == q).collect();
        // Never at the same time: one consumer's events on a queue all come before the other's.
        let exclusive = match (theirs.first(), theirs.last(), ours.first(), ours.last()) {
            (Some(tf), Some(tl), Some(of), Some(ol)) => tl.0 <= of.0 || ol.0 <= tf.0,
            _ => true,
        };
        assert!(
            exclusive,
            "queue {q} consumed by both at once: child {theirs:?} survivor {ours:?}"
        );
        let mut merged: Vec<&Event> = theirs.iter().chain(ours.iter()).cloned().collect();
        merged.sort_by_key(|e| e.0);
        // In send order: each message is the next one, or (after a hand-over) a repeat of already
        // consumed ones from the committed offset on, never a gap or a step back within one consumer.
        let mut next = 0;
        for e in &merged {
            assert!(
                e.2 <= next,
                "queue {q}: {} consumed before {next}: {merged:?}",
                e.2
            );
            next = next.max(e.2 + 1);
        }
        assert_eq!(next, 3 * PHASE, "queue {q}: every message consumed");
        for side in [&theirs, &ours] {
            for w in side.windows(2) {
                assert!(
                    w[1].2 == w[0].2 + 1 || w[1].2 <= w[0].2,
                    "queue {q}: a gap within one consumer: {w:?}"
                );
            }
        }
    }
    // The killed consumer's locks were honoured until they expired: its last renewal was at most one
    // renewal interval before the kill, and the broker keeps a lock 3 s after that.
    let taken_over: Vec<&Event> = mine.iter().filter(|e| e.0 > killed_at).collect();
    let child_queues: Vec<i32> = (0..QUEUES)
        .filter(|q| !survivor_had_before(&mine, *q, killed_at))
        .collect();
    assert_eq!(
        child_queues.len(),
        2,
        "the child held two queues when killed"
    );
    for q in child_queues {
        let first = taken_over
            .iter()
            .filter(|e| e.1 == q)
            .map(|e| e.0)
            .min()
            .expect("taken over");
        assert!(
            first >= killed_at + 2_400,
            "queue {q} taken {} ms after the kill, before its lock expired",
            first - killed_at
        );
    }
    eprintln!(
        "child consumed {}, survivor {}, take-over finished {} ms after the kill",
        child.len(),
        mine.len(),
        mine.iter().map(|e| e.0).max().unwrap_or(killed_at) - killed_at
    );
    survivor.shutdown().await;
}
