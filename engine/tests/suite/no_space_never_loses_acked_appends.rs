//! ENOSPC at a preallocation, at a flush and at a metadata write: the append that could not be made durable
//! is answered with an error (never acknowledged), later appends are refused as "disk is full" rather than
//! failing the engine, reads go on, and once the disk has room again appends resume by themselves. Every
//! acknowledged append is there after a reopen.
//!
//! The faults are injected at the engine's I/O boundary ([`apogee_engine::faults`]) so that each one hits
//! exactly the operation named; the end-to-end tests on a real full file system are in the workspace's
//! `tests/`.

use std::time::{Duration, Instant};

use crate::common::*;
use apogee_engine::faults::{self, FaultPoint};
use apogee_engine::{Engine, EngineError, FlushMode, ReadStatus};

/// How long the engine may take to notice that space returned (it samples and retries every second).
const RESUME_WITHIN: Duration = Duration::from_secs(8);

async fn append_seq(engine: &Engine, seq: u64) -> Result<(), EngineError> {
    engine
        .append(&[message("T", 0, body_for(seq), "")])
        .await
        .map(|_| ())
}

/// Appends with new sequence numbers until one succeeds; the failures must all be "disk is full".
async fn append_until_accepted(engine: &Engine, next: &mut u64, acked: &mut Vec<u64>) {
    let deadline = Instant::now() + RESUME_WITHIN;
    loop {
        match append_seq(engine, *next).await {
            Ok(()) => {
                acked.push(*next);
                *next += 1;
                return;
            }
            Err(e @ EngineError::DiskFull { .. }) => {
                assert!(
                    Instant::now() < deadline,
                    "appends did not resume within {RESUME_WITHIN:?}: {e}"
                );
                *next += 1;
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("expected DiskFull while waiting for space, got {e}"),
        }
    }
}

/// Every acknowledged body is in the queue, in order; unacknowledged ones may appear (at-least-once), but
/// only between them and at most once each.
async fn assert_acked_readable(engine: &Engine, acked: &[u64], next: u64) {
    let mut offset = engine.min_offset("T", 0);
    let mut seen = Vec::new();
    loop {
        let r = engine
            .read_queue("T", 0, offset, 256, 8 << 20, &|_| true)
            .await
            .unwrap();
        if r.status != ReadStatus::Found {
            break;
        }
        for rec in apogee_net::record::decode_all(&r.body).unwrap() {
            let text = std::str::from_utf8(&rec.body).unwrap();
            let seq: u64 = text[1..text.find(':').unwrap()].parse().unwrap();
            assert!(seq < next, "a stored body is one this test sent");
            assert_eq!(rec.body.as_ref(), body_for(seq).as_slice());
            seen.push(seq);
        }
        offset = r.next_offset;
    }
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no append is stored twice");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "stored in send order");
    for a in acked {
        assert!(
            seen.contains(a),
            "acknowledged append {a} is missing; stored: {seen:?}"
        );
    }
}

#[test]
fn no_space_at_preallocation_refuses_appends_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let (mut acked, mut next) = (Vec::new(), 0u64);
        for _ in 0..20 {
            append_seq(&engine, next).await.unwrap();
            acked.push(next);
            next += 1;
        }
        // From now on no file can be created or grown: the segment ahead, consume queue segments, ...
        faults::arm(FaultPoint::Preallocate, libc::ENOSPC, u32::MAX);
        let mut refused = None;
        for _ in 0..2_000 {
            match append_seq(&engine, next).await {
                Ok(()) => acked.push(next),
                Err(e) => {
                    refused = Some(e);
                    next += 1;
                    break;
                }
            }
            next += 1;
        }
        let refused =
            refused.expect("appends are refused once the log needs a segment it cannot create");
        assert!(
            matches!(refused, EngineError::DiskFull { .. }),
            "a full disk is not an engine failure: {refused}"
        );
        assert!(refused.to_string().contains("No space left"), "{refused}");
        assert_eq!(
            engine.max_offset("T", 0),
            acked.len() as u64,
            "a refused append stores nothing"
        );
        let err = append_seq(&engine, next).await.unwrap_err();
        assert!(matches!(err, EngineError::DiskFull { .. }), "{err}");
        next += 1;
        // Reads go on while writes are refused.
        let r = engine
            .read_queue("T", 0, 0, 8, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::Found);
        // Space returns: appends resume without a restart.
        faults::clear();
        append_until_accepted(&engine, &mut next, &mut acked).await;
        for _ in 0..20 {
            append_seq(&engine, next).await.unwrap();
            acked.push(next);
            next += 1;
        }
        engine.shutdown().await.unwrap();
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        assert_acked_readable(&engine, &acked, next).await;
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn no_space_at_flush_answers_the_waiting_append_with_an_error_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let (mut acked, mut next) = (Vec::new(), 0u64);
        for _ in 0..10 {
            append_seq(&engine, next).await.unwrap();
            acked.push(next);
            next += 1;
        }
        faults::arm(FaultPoint::FlushWrite, libc::ENOSPC, 1);
        let err = append_seq(&engine, next).await.unwrap_err();
        next += 1;
        assert!(
            matches!(err, EngineError::DiskFull { .. }),
            "the append whose flush failed is not acknowledged, and not an engine failure: {err}"
        );
        let err = append_seq(&engine, next).await.unwrap_err();
        next += 1;
        assert!(err.to_string().contains("disk is full"), "{err}");
        append_until_accepted(&engine, &mut next, &mut acked).await;
        engine.shutdown().await.unwrap();
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        assert_acked_readable(&engine, &acked, next).await;
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn no_space_at_a_metadata_write_refuses_appends_until_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let (mut acked, mut next) = (Vec::new(), 0u64);
        append_seq(&engine, next).await.unwrap();
        acked.push(next);
        next += 1;
        // The checkpointer writes every second; the next write meets a full disk.
        faults::arm(FaultPoint::MetadataWrite, libc::ENOSPC, 1);
        let deadline = Instant::now() + RESUME_WITHIN;
        let refusal = loop {
            match append_seq(&engine, next).await {
                Ok(()) => acked.push(next),
                Err(e) => break e,
            }
            next += 1;
            assert!(
                Instant::now() < deadline,
                "the failed checkpoint never refused writes"
            );
            glommio::timer::sleep(Duration::from_millis(50)).await;
        };
        next += 1;
        assert!(
            refusal.to_string().contains("checkpoint"),
            "the refusal says what could not be written: {refusal}"
        );
        append_until_accepted(&engine, &mut next, &mut acked).await;
        engine.shutdown().await.unwrap();
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        assert_acked_readable(&engine, &acked, next).await;
        engine.shutdown().await.unwrap();
    });
}
