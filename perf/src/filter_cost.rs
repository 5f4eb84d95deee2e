//! `apogee-perf consume --sql EXPR`: what an SQL92 subscription costs the broker, next to a tag one.
//!
//! The topic is loaded with `--messages` messages whose property `a` is `i % 10` and whose tag is
//! `t<i % 10>`, then drained twice from offset 0 by pulls of 32: once with the tag subscription `t0`
//! and once with `EXPR` (`a = 0` matches the same 10 %). Both drains answer the same messages in the
//! same number of pulls, so the difference of their times, per stored message, is what the broker spends
//! on the SQL92 filter: reading each record the consume queue's tag hash would have skipped, and
//! evaluating the selector on its properties. The broker must run with `enablePropertyFilter=true`
//! (`--embedded` does).

use std::time::{Duration, Instant};

use apogee_client::consumer::{addr_of, pull_once, PullOutcome};
use apogee_client::{Message, MessageSelector, Producer, ProducerConfig};

/// Messages per pull in the timed drains.
const PULL_BATCH: i32 = 32;
/// Sends in flight while loading.
const LOAD_CONCURRENCY: usize = 64;

/// One timed drain.
pub struct Drain {
    pub matched: u64,
    pub pulls: u64,
    pub elapsed: Duration,
}

async fn load(namesrv: &str, topic: &str, messages: u64, size: usize) -> Result<(), String> {
    let producer = Producer::start(ProducerConfig::new(namesrv, "apogee-perf-filter-load"))
        .await
        .map_err(|e| format!("cannot start a producer with name server {namesrv}: {e}"))?;
    let mut tasks = Vec::new();
    for w in 0..LOAD_CONCURRENCY as u64 {
        let (p, topic) = (producer.clone(), topic.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < messages {
                let m = Message::new(topic.as_str(), vec![b'x'; size])
                    .with_tags(format!("t{}", i % 10))
                    .with_property("a", (i % 10).to_string());
                p.send(m)
                    .await
                    .map_err(|e| format!("loading {topic}: {e}"))?;
                i += LOAD_CONCURRENCY as u64;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("a loader failed: {e}"))??;
    }
    Ok(())
}

/// Pulls every queue of `topic` from 0 to its end with `selector`; times the whole.
async fn drain(namesrv: &str, topic: &str, selector: &MessageSelector) -> Result<Drain, String> {
    let admin = apogee_client::Admin::new(namesrv);
    let queues = admin
        .queues(topic)
        .await
        .map_err(|e| format!("route of {topic}: {e}"))?;
    let routes = apogee_client::route::Routes::new(
        apogee_client::remoting::Remoting::new().0,
        apogee_client::route::parse_namesrv(namesrv),
    );
    let (mut matched, mut pulls) = (0u64, 0u64);
    let started = Instant::now();
    for mq in &queues {
        let addr = addr_of(&routes, mq)
            .await
            .map_err(|e| format!("broker of {mq:?}: {e}"))?;
        let mut offset = 0i64;
        loop {
            let got = pull_once(
                routes.remoting(),
                &addr,
                "apogee-perf-filter",
                mq,
                offset,
                PULL_BATCH,
                selector,
                None,
                None,
            )
            .await
            .map_err(|e| format!("pull from {addr}: {e}"))?;
            pulls += 1;
            match got {
                PullOutcome::Found { messages, next } => {
                    matched += messages.len() as u64;
                    offset = next;
                }
                PullOutcome::NoMatch { next } | PullOutcome::Moved { next } if next > offset => {
                    offset = next
                }
                _ => break,
            }
        }
    }
    Ok(Drain {
        matched,
        pulls,
        elapsed: started.elapsed(),
    })
}

/// Loads the topic, drains it with `t0` and with `sql`, prints the comparison and returns it as JSON.
pub async fn run(
    namesrv: &str,
    topic: &str,
    messages: u64,
    size: usize,
    sql: &str,
) -> Result<serde_json::Value, String> {
    eprintln!(
        "loading {messages} messages of {size} bytes into {topic} (a = i % 10, tag t<i % 10>)"
    );
    load(namesrv, topic, messages, size).await?;
    // Warm both paths once (connections, the compiled selector, the page cache), then measure.
    let tag = MessageSelector::tag("t0");
    let sql_sel = MessageSelector::sql(sql);
    drain(namesrv, topic, &tag).await?;
    drain(namesrv, topic, &sql_sel).await?;
    let t = drain(namesrv, topic, &tag).await?;
    let s = drain(namesrv, topic, &sql_sel).await?;
    let per = |d: &Drain| d.elapsed.as_nanos() as f64 / messages.max(1) as f64;
    let cost = per(&s) - per(&t);
    eprintln!(
        "tag `t0`: {} matched in {} pulls, {:.1} ms, {:.0} ns per stored message",
        t.matched,
        t.pulls,
        t.elapsed.as_secs_f64() * 1e3,
        per(&t)
    );
    eprintln!(
        "sql `{sql}`: {} matched in {} pulls, {:.1} ms, {:.0} ns per stored message",
        s.matched,
        s.pulls,
        s.elapsed.as_secs_f64() * 1e3,
        per(&s)
    );
    eprintln!("SQL92 filter cost on the broker: {cost:.0} ns per stored message (sql − tag)");
    let eval_ns = evaluation_ns(sql)?;
    eprintln!(
        "of which evaluating the selector on a record's properties: {eval_ns:.0} ns per message"
    );
    Ok(serde_json::json!({
        "messages": messages, "size": size, "sql": sql,
        "tag": {"matched": t.matched, "pulls": t.pulls, "ns_per_message": per(&t)},
        "sql_run": {"matched": s.matched, "pulls": s.pulls, "ns_per_message": per(&s)},
        "sql_filter_cost_ns_per_message": cost, "evaluation_ns_per_message": eval_ns,
    }))
}

/// Evaluations timed for the selector-only figure.
const EVALUATIONS: u64 = 1_000_000;

/// The selector alone: nanoseconds per evaluation on properties like the loaded messages' (the broker
/// does this in place on the stored bytes, without decoding or allocating).
fn evaluation_ns(sql: &str) -> Result<f64, String> {
    let selector = apogee_net::filter::Selector::parse(sql).map_err(|e| format!("--sql: {e}"))?;
    let props: Vec<String> = (0..10)
        .map(|i| {
            let (a, tag) = (i.to_string(), format!("t{i}"));
            let pairs = [
                ("TAGS", tag.as_str()),
                ("UNIQ_KEY", "7F00000100002A9F0000000000000100"),
                ("WAIT", "true"),
                ("a", a.as_str()),
            ];
            apogee_net::properties::encode(pairs).unwrap_or_default()
        })
        .collect();
    let started = Instant::now();
    let mut matched = 0u64;
    for i in 0..EVALUATIONS {
        matched += u64::from(selector.matches(std::hint::black_box(&props[(i % 10) as usize])));
    }
    std::hint::black_box(matched);
    Ok(started.elapsed().as_nanos() as f64 / EVALUATIONS as f64)
}
