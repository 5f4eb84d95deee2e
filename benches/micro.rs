//! Micro-benchmarks of the data path's CPU costs, each printed as nanoseconds per operation:
//!
//! | name | what one operation is |
//! | --- | --- |
//! | `send_decode_json` | a SEND_MESSAGE_V2 frame with a 1 KiB body and a JSON header (Java clients): frame decode + header parse |
//! | `send_decode_binary` | the same with RocketMQ's binary header (Apogee's client) |
//! | `send_response_encode` | a SEND_OK response with msgId / queueId / queueOffset, encoded into a frame |
//! | `record_encode_1k` | one commit log record with a 1 KiB body, encoded into a reused buffer |
//! | `record_decode_1k` | the same record decoded |
//! | `properties_parse` | a typical property string (KEYS, TAGS, UNIQ_KEY, WAIT) split into pairs |
//! | `msgid_encode` | an offset message id (store host + physical offset) |
//! | `acl_verify_send_1k` | the ACL check's signature part on a signed SEND_MESSAGE_V2 (header fields sorted, HmacSHA1 over them and the 1 KiB body, constant-time compare): what `aclEnable=true` adds per send |
//! | `engine_append_1k` | one 1 KiB ASYNC_FLUSH append on one core, flushes included (amortised); 20,000 appends, which fit in the write buffer, so the disk's bandwidth does not set the pace |
//! | `queue_read_32_flushed` | a consume queue read of 32 recent messages that are already flushed, so read back from the segment file (O_DIRECT: no page cache) |
//!
//! `cargo bench --bench micro` measures (about a second per line); `cargo test` runs it as a smoke run
//! with a few iterations, so that it keeps compiling and working. Run it on a quiet machine: the figures
//! are CPU time on a shared core.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use apogee_engine::{Engine, EngineConfig, FlushMode, Message};
use apogee_net::command::RemotingCommand;
use apogee_net::header::SerializeType;
use apogee_net::headers::SendMessageRequest;
use apogee_net::record::NewRecord;
use apogee_net::{frame, msgid, properties};
use bytes::{Bytes, BytesMut};

const BODY_BYTES: usize = 1024;
const PROPS: &str = "KEYS\u{1}order-42\u{2}TAGS\u{1}created\u{2}UNIQ_KEY\u{1}7F0000010001B4AAC2C40F1C6A3E0000\u{2}WAIT\u{1}true\u{2}";

/// Runs `op` repeatedly for about `budget` (at least `min_iters` times) and prints ns per call.
fn measure(name: &str, budget: Duration, min_iters: u64, mut op: impl FnMut()) {
    for _ in 0..min_iters.min(1_000) {
        op();
    }
    let start = Instant::now();
    let mut iters = 0u64;
    while iters < min_iters || start.elapsed() < budget {
        for _ in 0..64 {
            op();
        }
        iters += 64;
    }
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    println!("{name:<22} {ns:>10.1} ns/op   ({iters} ops)");
}

fn send_frame(serialize: SerializeType) -> Bytes {
    let cmd = RemotingCommand::request(310, 7)
        .with_serialize_type(serialize)
        .with_ext("a", "please_rename_unique_group_name")
        .with_ext("b", "orders")
        .with_ext("c", "TBW102")
        .with_ext("d", 4)
        .with_ext("e", 3)
        .with_ext("f", 0)
        .with_ext("g", 1_700_000_000_000i64)
        .with_ext("h", 0)
        .with_ext("i", PROPS)
        .with_ext("j", 0)
        .with_ext("k", false)
        .with_ext("m", false)
        .with_body(vec![0x61u8; BODY_BYTES]);
    let mut out = BytesMut::new();
    frame::encode(&cmd, &mut out).expect("the bench's frame encodes");
    out.freeze()
}

fn host(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn record() -> NewRecord<'static> {
    static BODY: [u8; BODY_BYTES] = [0x61; BODY_BYTES];
    NewRecord {
        topic: "orders",
        queue_id: 3,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: host(40000),
        store_timestamp: 1_700_000_000_001,
        store_host: host(10911),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: &BODY,
        properties: PROPS,
    }
}

fn codec(budget: Duration, min_iters: u64) {
    for (name, serialize) in [
        ("send_decode_json", SerializeType::Json),
        ("send_decode_binary", SerializeType::Rocketmq),
    ] {
        let bytes = send_frame(serialize);
        let mut buf = BytesMut::with_capacity(bytes.len());
        measure(name, budget, min_iters, || {
            buf.extend_from_slice(&bytes);
            let cmd = frame::decode(&mut buf)
                .expect("decodes")
                .expect("a whole frame");
            black_box(SendMessageRequest::from_ext(&cmd.ext_fields, true).expect("a send header"));
        });
    }
    let request = RemotingCommand::request(310, 7);
    let mut out = BytesMut::with_capacity(512);
    measure("send_response_encode", budget, min_iters, || {
        let response = request
            .response_to(apogee_net::codes::ResponseCode::Success, None)
            .with_ext("msgId", msgid::encode(host(10911), 123_456_789))
            .with_ext("queueId", 3)
            .with_ext("queueOffset", 42);
        out.clear();
        frame::encode(&response, &mut out).expect("encodes");
        black_box(&out);
    });
    let rec = record();
    let mut out = Vec::with_capacity(rec.encoded_len());
    measure("record_encode_1k", budget, min_iters, || {
        out.clear();
        rec.encode(
            42,
            123_456_789,
            apogee_net::record::body_crc(rec.body),
            &mut out,
        );
        black_box(&out);
    });
    let encoded = out.clone();
    measure("record_decode_1k", budget, min_iters, || {
        black_box(apogee_net::record::decode(&encoded).expect("decodes"));
    });
    measure("properties_parse", budget, min_iters, || {
        black_box(properties::parse(black_box(PROPS)));
    });
    measure("msgid_encode", budget, min_iters, || {
        black_box(msgid::encode(host(10911), black_box(123_456_789)));
    });
    let mut signed = frame::decode(&mut BytesMut::from(
        &send_frame(SerializeType::Rocketmq)[..],
    ))
    .expect("decodes")
    .expect("a whole frame");
    apogee_net::signature::sign(&mut signed, "RocketMQ", "12345678", None).expect("signs");
    let keyed = apogee_net::signature::keyed("12345678");
    measure("acl_verify_send_1k", budget, min_iters, || {
        let verdict = apogee_net::signature::verify(&keyed, black_box(&signed)).expect("checks");
        assert_eq!(verdict, apogee_net::signature::Verdict::Valid);
    });
}

fn engine(budget: Duration, min_iters: u64) {
    let dir = tempfile::Builder::new()
        .prefix("apogee-micro-")
        .tempdir_in(std::env::var("APOGEE_BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("bench dir");
    let path = dir.path().to_owned();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || async move {
            let mut config = EngineConfig::new(&path);
            config.flush_mode = FlushMode::Async;
            let engine = Engine::open(config).await.expect("engine opens");
            let message = Message {
                topic: "orders".into(),
                queue_id: 0,
                flag: 0,
                sys_flag: 0,
                born_timestamp: 1_700_000_000_000,
                born_host: host(40000),
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                body: Bytes::from(vec![0x61u8; BODY_BYTES]),
                properties: PROPS.into(),
            };
            let batch = [message];
            // Async closures cannot go through `measure`: the same loop, inline. A fixed count that fits
            // in the write buffer (64 MiB): past it, appends wait for the disk and this measures the disk.
            let appends = if budget.is_zero() { min_iters } else { 20_000 };
            let start = Instant::now();
            let mut iters = 0u64;
            while iters < appends {
                engine.append(&batch).await.expect("append");
                iters += 1;
            }
            let ns = start.elapsed().as_nanos() as f64 / iters as f64;
            println!(
                "{:<22} {ns:>10.1} ns/op   ({iters} ops)",
                "engine_append_1k"
            );
            engine.flush().await.expect("flush");
            let queue_end = engine.max_offset("orders", 0);
            let start = Instant::now();
            let mut reads = 0u64;
            while reads < min_iters.min(2_000) || start.elapsed() < budget {
                let from = queue_end.saturating_sub(32 + reads % 1024);
                let r = engine
                    .read_queue("orders", 0, from, 32, 1 << 20, &|_| true)
                    .await
                    .expect("read");
                black_box(r);
                reads += 1;
            }
            let ns = start.elapsed().as_nanos() as f64 / reads as f64;
            println!(
                "{:<22} {ns:>10.1} ns/op   ({reads} ops)",
                "queue_read_32_flushed"
            );
            engine.shutdown().await.expect("shutdown");
        })
        .expect("glommio executor starts (root, or ulimit -l of at least 16 MiB)")
        .join()
        .expect("bench executor");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` does not: then a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (budget, min_iters) = if full {
        (Duration::from_secs(1), 10_000)
    } else {
        (Duration::ZERO, 64)
    };
    codec(budget, min_iters);
    engine(budget, min_iters);
}
