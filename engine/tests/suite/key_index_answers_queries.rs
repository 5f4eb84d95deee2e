//! The key index answers `topic#KEY` and `topic#UNIQ_KEY` lookups within a time range, across sealed files,
//! after a clean restart, after a crash (rebuilt from the log), and after a damaged index file.

use crate::common::*;
use apogee_engine::{Engine, EngineConfig, FlushMode};
use apogee_net::record;

fn index_config(path: &std::path::Path) -> EngineConfig {
    let mut c = config(path, FlushMode::Sync);
    c.index_slots = 64;
    c.index_entries_max = 50; // two keys per message: a sealed file every 25 messages
    c
}

async fn fill(engine: &Engine) {
    for i in 0..300u64 {
        let props = format!(
            "KEYS\u{1}order-{} shared\u{2}UNIQ_KEY\u{1}U{i}\u{2}",
            i % 10
        );
        engine
            .append(&[message("Keyed", (i % 2) as i32, body_for(i), &props)])
            .await
            .unwrap();
    }
    engine
        .append(&[message("Other", 0, b"x".to_vec(), "KEYS\u{1}order-3\u{2}")])
        .await
        .unwrap();
}

async fn check(engine: &Engine) {
    let found = engine
        .query_by_key("Keyed", "order-3", 100, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        30,
        "every message with the key, none from another topic"
    );
    let mut bodies: Vec<Vec<u8>> = found
        .iter()
        .map(|b| record::decode(b).unwrap().body.to_vec())
        .collect();
    bodies.sort();
    let mut want: Vec<Vec<u8>> = (0..300u64).filter(|i| i % 10 == 3).map(body_for).collect();
    want.sort();
    assert_eq!(bodies, want);
    let one = engine
        .query_by_key("Keyed", "U123", 10, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        &record::decode(&one[0]).unwrap().body[..],
        &body_for(123)[..]
    );
    assert_eq!(
        engine
            .query_by_key("Keyed", "order-3", 5, 0, i64::MAX)
            .await
            .unwrap()
            .len(),
        5,
        "max is honoured"
    );
    assert!(
        engine
            .query_by_key("Keyed", "order-3", 100, 0, 1000)
            .await
            .unwrap()
            .is_empty(),
        "time range is honoured"
    );
    assert!(engine
        .query_by_key("Keyed", "absent", 100, 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        engine
            .query_by_key("Other", "order-3", 100, 0, i64::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn key_index_answers_across_sealed_files_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let p = path.clone();
    run(move || async move {
        let engine = Engine::open(index_config(&p)).await.unwrap();
        fill(&engine).await;
        check(&engine).await;
        engine.shutdown().await.unwrap();
    });
    let sealed = std::fs::read_dir(path.join("index")).unwrap().count();
    assert!(
        sealed >= 10,
        "full indexes were sealed to disk ({sealed} files)"
    );
    let p = path.clone();
    run(move || async move {
        let engine = Engine::open(index_config(&p)).await.unwrap();
        check(&engine).await;
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn key_index_is_rebuilt_after_a_crash_and_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let p = path.clone();
    run(move || async move {
        let engine = Engine::open(index_config(&p)).await.unwrap();
        fill(&engine).await;
        // No shutdown: the active index (and whatever was not sealed yet) is lost with the process.
    });
    // Damage one sealed file as well.
    let mut files: Vec<_> = std::fs::read_dir(path.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    if let Some(f) = files.get(files.len() / 2) {
        let mut bytes = std::fs::read(f).unwrap();
        bytes[64 + 8] ^= 0xFF; // inside the slot table, which the checksum covers
        std::fs::write(f, bytes).unwrap();
    }
    let p = path.clone();
    run(move || async move {
        let engine = Engine::open(index_config(&p)).await.unwrap();
        check(&engine).await;
        engine.shutdown().await.unwrap();
    });
}
