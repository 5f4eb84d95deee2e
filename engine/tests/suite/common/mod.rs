//! Helpers shared by the engine's integration tests: a glommio executor per test, and message makers.
#![allow(dead_code)]

use std::future::Future;

use apogee_engine::{EngineConfig, FlushMode, Message};
use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};

/// Runs `f` on a fresh glommio executor thread and returns its output.
pub fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("engine-test")
        .spawn(move || async move { f().await })
        .expect("glommio executor starts (root, or ulimit -l of at least 16 MiB)")
        .join()
        .expect("test executor panicked")
}

pub fn config(dir: &std::path::Path, mode: FlushMode) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_mode = mode;
    c.commitlog_segment_size_bytes = 1024 * 1024;
    c.message_size_max_bytes = 64 * 1024;
    c.write_buffer_max_bytes = 512 * 1024;
    c.flush_interval_ms = 20;
    c
}

pub fn message(topic: &str, queue_id: i32, body: Vec<u8>, props: &str) -> Message {
    Message {
        topic: topic.into(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: "127.0.0.1:40000".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(body),
        properties: props.into(),
    }
}

/// A body that names its sequence number and has a size that varies with it.
pub fn body_for(seq: u64) -> Vec<u8> {
    let unit = format!("m{seq}:");
    let len = 50 + (seq * 7919 % 3000) as usize;
    unit.bytes().cycle().take(len).collect()
}
