//! A 3-node group in one test process: each node on its own glommio executor thread, real sockets on
//! 127.0.0.1, real WAL files in a TempDir. The test thread drives nodes through a command channel and reads
//! what each applied from a shared list. Every wait is bounded.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use apogee_dledger::{Committed, Node, NodeConfig, Peer, ProposeError, Role, Status};
use bytes::Bytes;
use futures::channel::mpsc as amps;
use futures::StreamExt;
use glommio::{LocalExecutorBuilder, Placement};

/// Timing for tests: 50 ms ticks, elections after 0.5..1 s.
pub const TICK_MS: u64 = 50;
pub const WAIT: Duration = Duration::from_secs(20);

/// Logs to the test's output when RUST_LOG is set.
pub fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A free port below the ephemeral range: 20000 + a pid-based block of 30, probed with a plain bind.
pub fn free_port() -> u16 {
    let base = 20_000 + (std::process::id() % 400) as u16 * 30;
    for _ in 0..200 {
        let p = base + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % 600;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port near {base}");
}

pub fn peers(n: usize) -> Vec<Peer> {
    (0..n)
        .map(|i| Peer {
            id: i as u64 + 1,
            name: format!("n{i}"),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        })
        .collect()
}

pub fn config(self_id: u64, peers: &[Peer], wal_dir: PathBuf) -> NodeConfig {
    let mut c = NodeConfig::new(self_id, peers.to_vec(), wal_dir);
    c.tick_ms = TICK_MS;
    c
}

enum Cmd {
    Propose(
        Vec<Bytes>,
        usize,
        mpsc::Sender<Vec<Result<u64, ProposeError>>>,
    ),
    Status(mpsc::Sender<Status>),
    Isolate(bool),
    SegmentFiles(mpsc::Sender<usize>),
    Shutdown(mpsc::Sender<()>),
}

/// One running node, seen from the test thread.
pub struct TestNode {
    pub _id: u64,
    cmds: amps::UnboundedSender<Cmd>,
    thread: Option<JoinHandle<()>>,
    /// Everything this node delivered, across restarts (the "state machine").
    pub applied: Arc<Mutex<Vec<Committed>>>,
}

impl TestNode {
    /// Starts a node; `applied` carries the state machine across restarts (its last index is the checkpoint).
    pub fn start(config: NodeConfig, applied: Arc<Mutex<Vec<Committed>>>) -> TestNode {
        init_log();
        let id = config.self_id;
        let (tx, mut rx) = amps::unbounded::<Cmd>();
        let (started_tx, started_rx) = mpsc::channel();
        let sm = applied.clone();
        let thread = std::thread::spawn(move || {
            let ex = LocalExecutorBuilder::new(Placement::Unbound).name(&format!("dledger-n{id}"));
            let handle = ex
                .spawn(move || async move {
                    let checkpoint = sm.lock().unwrap().last().map_or(0, |c| c.index);
                    let node = match Node::start(config, checkpoint).await {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = started_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok(()));
                    let n2 = node.clone();
                    let applier = glommio::spawn_local(async move {
                        while let Some(batch) = n2.next_committed().await {
                            let last = batch.last().map(|c| c.index);
                            sm.lock().unwrap().extend(batch);
                            if let Some(i) = last {
                                n2.applied(i);
                            }
                        }
                    });
                    while let Some(cmd) = rx.next().await {
                        match cmd {
                            Cmd::Propose(data, inflight, reply) => {
                                let node = node.clone();
                                glommio::spawn_local(async move {
                                    let r: Vec<_> = futures::stream::iter(data)
                                        .map(|d| node.propose(d))
                                        .buffered(inflight)
                                        .collect()
                                        .await;
                                    let _ = reply.send(r);
                                })
                                .detach();
                            }
                            Cmd::Status(reply) => {
                                let _ = reply.send(node.status());
                            }
                            Cmd::Isolate(on) => node.set_isolated(on),
                            Cmd::SegmentFiles(reply) => {
                                let _ = reply.send(node.wal_segment_files());
                            }
                            Cmd::Shutdown(reply) => {
                                node.shutdown().await;
                                node.shutdown().await; // idempotent
                                applier.await;
                                let _ = reply.send(());
                                return;
                            }
                        }
                    }
                })
                .expect("spawn executor");
            let _ = handle.join();
        });
        match started_rx.recv_timeout(WAIT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("node {id} did not start: {e}"),
            Err(e) => panic!("node {id} did not start in time: {e}"),
        }
        TestNode {
            _id: id,
            cmds: tx,
            thread: Some(thread),
            applied,
        }
    }

    pub fn status(&self) -> Option<Status> {
        let (tx, rx) = mpsc::channel();
        self.cmds.unbounded_send(Cmd::Status(tx)).ok()?;
        rx.recv_timeout(WAIT).ok()
    }

    /// Proposes `data` (with `inflight` outstanding at once) and waits for every outcome.
    pub fn propose(&self, data: Vec<Bytes>, inflight: usize) -> Vec<Result<u64, ProposeError>> {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .unbounded_send(Cmd::Propose(data, inflight, tx))
            .expect("node running");
        rx.recv_timeout(Duration::from_secs(60))
            .expect("proposals resolved in time")
    }

    /// Starts proposals without waiting; the receiver yields their outcomes.
    pub fn propose_async(
        &self,
        data: Vec<Bytes>,
        inflight: usize,
    ) -> mpsc::Receiver<Vec<Result<u64, ProposeError>>> {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .unbounded_send(Cmd::Propose(data, inflight, tx))
            .expect("node running");
        rx
    }

    pub fn isolate(&self, on: bool) {
        let _ = self.cmds.unbounded_send(Cmd::Isolate(on));
    }

    pub fn segment_files(&self) -> usize {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .unbounded_send(Cmd::SegmentFiles(tx))
            .expect("node running");
        rx.recv_timeout(WAIT).expect("segment count")
    }

    pub fn applied_len(&self) -> usize {
        self.applied.lock().unwrap().len()
    }

    pub fn stop(&mut self) {
        let (tx, rx) = mpsc::channel();
        if self.cmds.unbounded_send(Cmd::Shutdown(tx)).is_ok() {
            rx.recv_timeout(WAIT).expect("node shut down in time");
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("node thread");
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

/// A group of `n` nodes with their WAL folders in one TempDir.
pub struct Group {
    pub dir: tempfile::TempDir,
    pub peers: Vec<Peer>,
    pub nodes: Vec<Option<TestNode>>,
    pub tweak: fn(&mut NodeConfig),
}

impl Group {
    pub fn start(n: usize, tweak: fn(&mut NodeConfig)) -> Group {
        let dir = tempfile::TempDir::new().unwrap();
        let peers = peers(n);
        let mut g = Group {
            dir,
            peers,
            nodes: Vec::new(),
            tweak,
        };
        for i in 0..n {
            let node = g.start_node(i, Arc::new(Mutex::new(Vec::new())));
            g.nodes.push(Some(node));
        }
        g
    }

    pub fn wal_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}"))
    }

    fn start_node(&self, i: usize, applied: Arc<Mutex<Vec<Committed>>>) -> TestNode {
        let mut c = config(i as u64 + 1, &self.peers, self.wal_dir(i));
        (self.tweak)(&mut c);
        TestNode::start(c, applied)
    }

    pub fn node(&self, i: usize) -> &TestNode {
        self.nodes[i].as_ref().expect("node running")
    }

    /// Stops node `i`; returns its state machine for a restart.
    pub fn stop(&mut self, i: usize) -> Arc<Mutex<Vec<Committed>>> {
        let mut n = self.nodes[i].take().expect("node running");
        n.stop();
        n.applied.clone()
    }

    pub fn restart(&mut self, i: usize, applied: Arc<Mutex<Vec<Committed>>>) {
        let n = self.start_node(i, applied);
        self.nodes[i] = Some(n);
    }

    /// Waits until one running node leads and every running node names it; returns its position.
    pub fn wait_leader(&self) -> usize {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let st: Vec<(usize, Status)> = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| Some((i, n.as_ref()?.status()?)))
                .collect();
            let leaders: Vec<_> = st.iter().filter(|(_, s)| s.role == Role::Leader).collect();
            if let [(i, ls)] = leaders.as_slice() {
                if st
                    .iter()
                    .all(|(_, s)| s.leader_id == Some(*i as u64 + 1) && s.term == ls.term)
                {
                    return *i;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no single agreed leader within {WAIT:?}");
    }

    /// Waits until every running node applied `n` entries.
    pub fn wait_applied(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.nodes.iter().flatten().all(|x| x.applied_len() >= n) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let have: Vec<_> = self
            .nodes
            .iter()
            .flatten()
            .map(|x| x.applied_len())
            .collect();
        panic!("not every node applied {n} entries within {WAIT:?}: {have:?}");
    }
}

pub fn payloads(tag: &str, n: usize, pad: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{tag}-{i:06}-{}", "x".repeat(pad))))
        .collect()
}

pub fn data_of(node: &TestNode) -> Vec<(u64, Bytes)> {
    node.applied
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.index, c.data.clone()))
        .collect()
}
