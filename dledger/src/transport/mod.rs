//! The peer transport: one TCP connection per ordered peer pair (this node dials each peer and writes only its
//! own messages there; it reads only from connections peers dialled to it), frames in [`frame`].
//!
//! - **Outbound**, one task per peer: a bounded queue ([`PEER_QUEUE_MSGS_MAX`] messages; beyond it messages are
//!   dropped — Raft retransmits what is lost), a connection dialled with a timeout, re-dialled after a failure
//!   with a backoff doubling from [`RECONNECT_BACKOFF_MIN_MS`] to [`RECONNECT_BACKOFF_MAX_MS`]. A failed link is
//!   reported to the driver (`report_unreachable`), which makes raft-rs probe that peer instead of pipelining.
//! - **Inbound**: an accept loop and a reader task per connection (at most [`INBOUND_CONNS_MAX`]). A frame with a
//!   bad length, a bad CRC, an undecodable body, a receiver other than this node or a sender outside the group
//!   closes that connection, and the reason is logged with the remote address. Good messages go to the
//!   driver's inbox (bounded by [`INBOX_MSGS_MAX`], dropped beyond).
//! - **Isolation** ([`Transport::set_isolated`]): a fault seam for tests — while set, queued and new outbound
//!   messages are dropped, every connection is closed and inbound connections are refused, as if the node's
//!   network were cut.
//!
//! All tasks run on the node's executor; [`Transport::stop`] cancels them, which drops (closes) every socket.

pub mod frame;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::task::JoinHandle;
use raft::eraftpb::Message;
use tracing::{debug, info, warn};

use crate::config::Peer;
use crate::limits::{
    CONNECT_TIMEOUT_MS, INBOUND_CONNS_MAX, INBOX_MSGS_MAX, KEEPALIVE_MS, PEER_IDLE_TIMEOUT_MS,
    PEER_QUEUE_MSGS_MAX, RECONNECT_BACKOFF_MAX_MS, RECONNECT_BACKOFF_MIN_MS, WRITE_BATCH_BYTES_MAX,
};
use crate::notify::Notify;

/// Shared with the driver: inbound messages and failed links.
#[derive(Default)]
pub struct Inbox {
    pub messages: RefCell<VecDeque<Message>>,
    pub unreachable: RefCell<Vec<u64>>,
    /// Wakes the driver.
    pub wake: Rc<Notify>,
}

struct Outbox {
    peer: Peer,
    queue: RefCell<VecDeque<Message>>,
    ready: Notify,
    dropped: Cell<u64>,
}

struct State {
    self_id: u64,
    self_name: String,
    peer_ids: Vec<u64>,
    inbox: Rc<Inbox>,
    isolated: Cell<bool>,
    /// Bumped on isolation so that connections of an earlier generation close themselves.
    generation: Cell<u64>,
    generation_changed: Notify,
    inbound_conns: Cell<usize>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    /// Reader tasks by connection number; each removes itself when it ends.
    readers: RefCell<std::collections::HashMap<u64, JoinHandle<()>>>,
    next_reader: Cell<u64>,
}

pub struct Transport {
    state: Rc<State>,
    outboxes: Vec<Rc<Outbox>>,
}

impl Transport {
    /// Starts the accept loop on `listener` and one dialling task per other peer.
    pub fn start(
        self_id: u64,
        peers: &[Peer],
        listener: TcpListener,
        inbox: Rc<Inbox>,
    ) -> Transport {
        let self_name = peers
            .iter()
            .find(|p| p.id == self_id)
            .map_or_else(String::new, |p| p.name.clone());
        let state = Rc::new(State {
            self_id,
            self_name,
            peer_ids: peers.iter().map(|p| p.id).collect(),
            inbox,
            isolated: Cell::new(false),
            generation: Cell::new(0),
            generation_changed: Notify::default(),
            inbound_conns: Cell::new(0),
            tasks: RefCell::new(Vec::new()),
            readers: RefCell::new(std::collections::HashMap::new()),
            next_reader: Cell::new(0),
        });
        let accept = glommio::spawn_local(accept_loop(state.clone(), listener)).detach();
        state.tasks.borrow_mut().push(accept);
        let mut outboxes = Vec::new();
        for p in peers.iter().filter(|p| p.id != self_id) {
            let ob = Rc::new(Outbox {
                peer: p.clone(),
                queue: RefCell::new(VecDeque::new()),
                ready: Notify::default(),
                dropped: Cell::new(0),
            });
            let task = glommio::spawn_local(dial_loop(state.clone(), ob.clone())).detach();
            state.tasks.borrow_mut().push(task);
            outboxes.push(ob);
        }
        Transport { state, outboxes }
    }

    /// Queues `msg` for its receiver (dropped when the queue is full or the node is isolated).
    pub fn send(&self, msg: Message) {
        if self.state.isolated.get() {
            return;
        }
        let Some(ob) = self.outboxes.iter().find(|o| o.peer.id == msg.to) else {
            debug!(to = msg.to, "dledger: message for an unknown peer dropped");
            return;
        };
        let mut q = ob.queue.borrow_mut();
        if q.len() >= PEER_QUEUE_MSGS_MAX {
            let n = ob.dropped.get() + 1;
            ob.dropped.set(n);
            if n.is_power_of_two() {
                warn!(
                    peer = %ob.peer.name,
                    dropped = n,
                    "dledger: outbound queue full (PEER_QUEUE_MSGS_MAX = {PEER_QUEUE_MSGS_MAX}), message dropped; Raft will retransmit"
                );
            }
            return;
        }
        q.push_back(msg);
        drop(q);
        ob.ready.notify();
    }

    pub fn set_isolated(&self, on: bool) {
        if self.state.isolated.replace(on) == on {
            return;
        }
        info!(node = %self.state.self_name, isolated = on, "dledger: transport isolation changed");
        if on {
            for ob in &self.outboxes {
                ob.queue.borrow_mut().clear();
            }
        }
        self.state.generation.set(self.state.generation.get() + 1);
        self.state.generation_changed.notify();
        for ob in &self.outboxes {
            ob.ready.notify();
        }
    }

    /// Cancels every task, closing every socket. Idempotent.
    pub fn stop(&self) {
        for t in self.state.tasks.borrow_mut().drain(..) {
            t.cancel();
        }
        for (_, t) in self.state.readers.borrow_mut().drain() {
            t.cancel();
        }
    }
}

/// Runs `fut` for at most `ms` milliseconds.
async fn within<T>(ms: u64, fut: impl std::future::Future<Output = T>) -> Option<T> {
    let fut = std::pin::pin!(fut);
    let sleep = std::pin::pin!(glommio::timer::sleep(Duration::from_millis(ms)));
    match select(fut, sleep).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

async fn dial_loop(state: Rc<State>, ob: Rc<Outbox>) {
    let mut backoff_ms = RECONNECT_BACKOFF_MIN_MS;
    let mut batch = Vec::new();
    loop {
        while state.isolated.get() {
            state.generation_changed.notified().await;
        }
        let generation = state.generation.get();
        let addr = ob.peer.addr;
        let stream = match TcpStream::connect_timeout(
            addr,
            Duration::from_millis(CONNECT_TIMEOUT_MS),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                debug!(peer = %ob.peer.name, %addr, error = %e, "dledger: dial failed, retrying in {backoff_ms} ms");
                report_unreachable(&state, ob.peer.id);
                glommio::timer::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(RECONNECT_BACKOFF_MAX_MS);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        debug!(from = %state.self_name, peer = %ob.peer.name, %addr, "dledger: link up");
        let mut stream = stream;
        let reason = loop {
            if state.generation.get() != generation {
                break "isolation changed".to_string();
            }
            let ready = ob.ready.notified();
            let gen_changed = state.generation_changed.notified();
            batch.clear();
            if ob.queue.borrow().is_empty() {
                // Wait for work; meanwhile a read on this write-only link notices the peer closing it (a
                // restart) before a message is lost on a dead socket.
                let mut probe = [0u8; 1];
                let waited = {
                    let read = std::pin::pin!(stream.read(&mut probe));
                    match within(KEEPALIVE_MS, select(read, select(ready, gen_changed))).await {
                        Some(Either::Left((r, _))) => Some(Some(r)),
                        Some(Either::Right(_)) => Some(None),
                        None => None,
                    }
                };
                match waited {
                    Some(Some(Ok(0))) => break "closed by the peer".to_string(),
                    Some(Some(Ok(_))) => break "the peer wrote on a write-only link".to_string(),
                    Some(Some(Err(e))) => break format!("read failed: {e}"),
                    Some(None) => continue,
                    // Idle: a keepalive keeps the peer's reader from timing the link out.
                    None => {
                        frame::encode(&frame::keepalive(state.self_id, ob.peer.id), &mut batch);
                    }
                }
            }
            {
                let mut q = ob.queue.borrow_mut();
                while let Some(m) = q.pop_front() {
                    if frame::encode(&m, &mut batch).is_none() {
                        warn!(peer = %ob.peer.name, msg_type = ?m.get_msg_type(), "dledger: message too large for a frame, dropped");
                    }
                    if batch.len() >= WRITE_BATCH_BYTES_MAX {
                        break;
                    }
                }
            }
            if let Err(e) = stream.write_all(&batch).await {
                break format!("write failed: {e}");
            }
            backoff_ms = RECONNECT_BACKOFF_MIN_MS;
        };
        debug!(peer = %ob.peer.name, %reason, "dledger: link down");
        report_unreachable(&state, ob.peer.id);
        drop(stream);
        glommio::timer::sleep(Duration::from_millis(backoff_ms)).await;
        backoff_ms = (backoff_ms * 2).min(RECONNECT_BACKOFF_MAX_MS);
    }
}

fn report_unreachable(state: &State, id: u64) {
    let mut u = state.inbox.unreachable.borrow_mut();
    if !u.contains(&id) {
        u.push(id);
    }
    drop(u);
    state.inbox.wake.notify();
}

async fn accept_loop(state: Rc<State>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(node = %state.self_name, error = %e, "dledger: accept failed");
                glommio::timer::sleep(Duration::from_millis(RECONNECT_BACKOFF_MIN_MS)).await;
                continue;
            }
        };
        let remote = stream.peer_addr().ok();
        if state.isolated.get() {
            continue; // dropped: closed
        }
        if state.inbound_conns.get() >= INBOUND_CONNS_MAX {
            warn!(node = %state.self_name, ?remote, "dledger: refusing peer connection: INBOUND_CONNS_MAX ({INBOUND_CONNS_MAX}) reached");
            continue;
        }
        state.inbound_conns.set(state.inbound_conns.get() + 1);
        let conn = state.next_reader.get();
        state.next_reader.set(conn + 1);
        let st = state.clone();
        let task = glommio::spawn_local(async move {
            let reason = read_loop(&st, stream).await;
            st.inbound_conns.set(st.inbound_conns.get() - 1);
            st.readers.borrow_mut().remove(&conn);
            match reason {
                Closed::Eof => {
                    debug!(node = %st.self_name, ?remote, "dledger: peer closed its link")
                }
                Closed::Quiet(r) => {
                    debug!(node = %st.self_name, ?remote, "dledger: closing peer link: {r}")
                }
                Closed::Bad(r) => {
                    warn!(node = %st.self_name, ?remote, "dledger: closing peer link: {r}")
                }
            }
        })
        .detach();
        state.readers.borrow_mut().insert(conn, task);
    }
}

enum Closed {
    Eof,
    Quiet(String),
    Bad(String),
}

async fn read_loop(state: &State, mut stream: TcpStream) -> Closed {
    let generation = state.generation.get();
    loop {
        let mut header = [0u8; frame::HEADER_BYTES];
        let read = within(PEER_IDLE_TIMEOUT_MS, async {
            let gen_changed = state.generation_changed.notified();
            let read = std::pin::pin!(stream.read_exact(&mut header));
            match select(read, gen_changed).await {
                Either::Left((r, _)) => Some(r),
                Either::Right(_) => None,
            }
        })
        .await;
        let r = match read {
            None => {
                return Closed::Quiet(format!(
                    "no frame for PEER_IDLE_TIMEOUT_MS ({PEER_IDLE_TIMEOUT_MS} ms)"
                ))
            }
            Some(None) => return Closed::Quiet("isolation changed".into()),
            Some(Some(r)) => r,
        };
        if let Err(e) = r {
            return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Closed::Eof
            } else {
                Closed::Quiet(format!("read failed: {e}"))
            };
        }
        if state.generation.get() != generation {
            return Closed::Quiet("isolation changed".into());
        }
        let (len, crc) = match frame::decode_header(&header) {
            Ok(h) => h,
            Err(e) => return Closed::Bad(e.to_string()),
        };
        let mut body = vec![0u8; len];
        match within(PEER_IDLE_TIMEOUT_MS, stream.read_exact(&mut body)).await {
            None => {
                return Closed::Bad(format!(
                    "frame body of {len} bytes not received within {PEER_IDLE_TIMEOUT_MS} ms"
                ))
            }
            Some(Err(e)) => {
                return Closed::Bad(format!("frame body of {len} bytes cut short: {e}"))
            }
            Some(Ok(())) => {}
        }
        let msg = match frame::decode_body(&Bytes::from(body), crc) {
            Ok(m) => m,
            Err(e) => return Closed::Bad(e.to_string()),
        };
        if msg.to != state.self_id
            || msg.from == state.self_id
            || !state.peer_ids.contains(&msg.from)
        {
            return Closed::Bad(format!(
                "message from {} to {} on a link of node {} (group {:?})",
                msg.from, msg.to, state.self_id, state.peer_ids
            ));
        }
        if frame::is_keepalive(&msg) {
            continue;
        }
        let mut q = state.inbox.messages.borrow_mut();
        if q.len() < INBOX_MSGS_MAX {
            q.push_back(msg);
        }
        drop(q);
        state.inbox.wake.notify();
    }
}

/// Binds the peer port. glommio binds with SO_REUSEPORT: a restarted node rebinds at once even while its old
/// accepted connections linger, but a second glommio listener on the same port (a configuration mistake) is
/// not refused by the kernel either. (A plain probe bind would catch that mistake but also refuse the restart.)
pub fn bind(addr: SocketAddr) -> Result<TcpListener, crate::DledgerError> {
    TcpListener::bind(addr).map_err(|e| crate::DledgerError::Bind {
        addr,
        source: e.into(),
    })
}
