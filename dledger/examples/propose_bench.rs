//! Proposal throughput and commit latency of a 3-node group in one process (each node on its own glommio
//! executor thread, real loopback sockets, WAL files in a temp dir).
//!
//! ```text
//! cargo run --release -p apogee-dledger --example propose_bench -- --count 20000 --inflight 64 [--size 256] [--sync]
//! ```
//! Prints proposals/s and the commit latency (propose -> committed on a majority) p50/p99/max. `--sync`
//! fdatasyncs the WAL before an entry counts as persisted (the broker's SYNC_FLUSH).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_dledger::{Node, NodeConfig, Peer, Role};
use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;

struct Args {
    count: usize,
    inflight: usize,
    size: usize,
    sync: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        count: 20_000,
        inflight: 64,
        size: 256,
        sync: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match k.as_str() {
            "--count" => a.count = num("--count")?,
            "--inflight" => a.inflight = num("--inflight")?.max(1),
            "--size" => a.size = num("--size")?,
            "--sync" => a.sync = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    l.local_addr().expect("probe address")
}

struct Outcome {
    elapsed: Duration,
    hist: Histogram<u64>,
    errors: usize,
}

async fn load(node: Rc<Node>, args: &Args) -> Outcome {
    let next = Rc::new(Cell::new(0usize));
    let hist = Rc::new(std::cell::RefCell::new(
        Histogram::<u64>::new(3).expect("histogram"),
    ));
    let errors = Rc::new(Cell::new(0usize));
    let payload = Bytes::from(vec![b'x'; args.size]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.inflight {
        let (node, next, hist, errors, payload, count) = (
            node.clone(),
            next.clone(),
            hist.clone(),
            errors.clone(),
            payload.clone(),
            args.count,
        );
        tasks.push(glommio::spawn_local(async move {
            loop {
                let i = next.get();
                if i >= count {
                    break;
                }
                next.set(i + 1);
                let t0 = Instant::now();
                match node.propose(payload.clone()).await {
                    Ok(_) => {
                        let _ = hist.borrow_mut().record(t0.elapsed().as_micros() as u64);
                    }
                    Err(_) => errors.set(errors.get() + 1),
                }
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    let elapsed = started.elapsed();
    let hist = hist.borrow().clone();
    Outcome {
        elapsed,
        hist,
        errors: errors.get(),
    }
}

fn main() {
    let args = match parse() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!(
                "{e}\nusage: propose_bench [--count N] [--inflight N] [--size BYTES] [--sync]"
            );
            std::process::exit(2);
        }
    };
    let dir = tempfile::TempDir::new().expect("temp dir");
    let peers: Vec<Peer> = (0..3u64)
        .map(|i| Peer {
            id: i + 1,
            name: format!("n{i}"),
            addr: free_addr(),
        })
        .collect();
    let claimed = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let outcome: Arc<Mutex<Option<Outcome>>> = Arc::new(Mutex::new(None));
    let mut threads = Vec::new();
    for i in 0..3u64 {
        let mut cfg = NodeConfig::new(i + 1, peers.clone(), dir.path().join(format!("n{i}")));
        cfg.sync_wal = args.sync;
        let (args, claimed, done, outcome) =
            (args.clone(), claimed.clone(), done.clone(), outcome.clone());
        threads.push(std::thread::spawn(move || {
            LocalExecutorBuilder::new(Placement::Unbound)
                .spawn(move || async move {
                    let node = Node::start(cfg, 0).await.expect("node starts");
                    let n2 = node.clone();
                    glommio::spawn_local(async move {
                        while let Some(b) = n2.next_committed().await {
                            if let Some(c) = b.last() {
                                n2.applied(c.index);
                            }
                        }
                    })
                    .detach();
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                        if node.status().role == Role::Leader
                            && !claimed.swap(true, Ordering::AcqRel)
                        {
                            let o = load(node.clone(), &args).await;
                            *outcome.lock().expect("outcome") = Some(o);
                            done.store(true, Ordering::Release);
                        }
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                    node.shutdown().await;
                })
                .expect("executor")
                .join()
                .expect("executor ends");
        }));
    }
    for t in threads {
        t.join().expect("node thread");
    }
    let Some(o) = outcome.lock().expect("outcome").take() else {
        eprintln!("no leader was elected within 300 s");
        std::process::exit(1);
    };
    let ok = o.hist.len();
    let us = |q: f64| o.hist.value_at_quantile(q);
    println!(
        "count={} inflight={} size={}B sync_wal={}: {:.0} proposals/s ({} ok, {} failed in {:.2?}); commit latency p50={}us p99={}us max={}us",
        args.count,
        args.inflight,
        args.size,
        args.sync,
        ok as f64 / o.elapsed.as_secs_f64(),
        ok,
        o.errors,
        o.elapsed,
        us(0.5),
        us(0.99),
        o.hist.max()
    );
}
