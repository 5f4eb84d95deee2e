//! The glommio connection loop shared by the name server and the broker: frames in, a [`Service`] per
//! request, frames out.
//!
//! Each request runs as its own task, so a parked long-poll pull never blocks the other requests a client
//! multiplexes over the same connection; responses go back in completion order, matched by `opaque`.
//! Bounds (defaults and reasons in [`crate::limits`]):
//! - connections per shard ([`Limits::connections_max`], counted over every listener of the thread): past
//!   it a new connection is closed at once, the reason logged at most once a second;
//! - requests in flight per connection ([`Limits::in_flight_max`]) and bytes in flight per connection
//!   ([`Limits::bytes_in_flight_max`]: frame lengths of requests being served plus responses queued for
//!   writing): past either, a new request is answered SYSTEM_BUSY (`[TOO_MANY_REQUESTS]`, RocketMQ's answer,
//!   on which its clients back off) and reading goes on, so answers keep flowing both ways;
//! - frames and bytes queued for writing ([`Limits::write_queue_max`], [`Limits::write_queue_max_bytes`]):
//!   a request's task waits for a free frame slot; a connection whose queued bytes would pass the byte bound
//!   (a peer that does not read its responses) is closed, with the reason logged.
//!
//! Every frame already buffered is decoded per wakeup of the read loop (a 64 KiB read holds many small
//! requests), and the writer gathers the answers queued together into one write of at most
//! [`WRITE_BATCH_MAX_BYTES`](crate::limits::WRITE_BATCH_MAX_BYTES).
//!
//! A malformed frame closes only its connection, with the reason logged. TLS (sniffing, handshake) happens
//! in [`crate::tls::accept`] before a connection is served; the loop itself reads and writes any byte stream.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use apogee_net::codes::ResponseCode;
use apogee_net::{frame, RemotingCommand};
use bytes::BytesMut;
use futures::future::{select, Either, Shared};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::FutureExt;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::limits::{
    BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT, CONNECTIONS_PER_SHARD_MAX_DEFAULT,
    FRAME_HEADER_ESTIMATE_BYTES, IN_FLIGHT_REQUESTS_MAX_DEFAULT, REFUSAL_LOG_INTERVAL_MS,
    WRITE_BATCH_MAX_BYTES, WRITE_QUEUE_FRAMES_MAX_DEFAULT, WRITE_QUEUE_MAX_BYTES_DEFAULT,
};
use crate::running::{labelled, Label};
use crate::tls::{self, TlsServer};

/// A future that resolves once, when the process is stopping. Cloned freely.
pub type StopSignal = Shared<futures::channel::oneshot::Receiver<()>>;

/// A new stop signal and the sender that fires it (by send or by drop).
pub fn stop_signal() -> (futures::channel::oneshot::Sender<()>, StopSignal) {
    let (tx, rx) = futures::channel::oneshot::channel();
    (tx, rx.shared())
}

/// Bounds of a server's connections (see the module docs for what happens past each).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once by one shard (thread), over all its listeners.
    pub connections_max: usize,
    /// Requests being served at once on one connection.
    pub in_flight_max: usize,
    /// Frames queued for writing on one connection.
    pub write_queue_max: usize,
    /// Bytes of requests being served plus responses queued, on one connection, past which new requests
    /// are answered SYSTEM_BUSY.
    pub bytes_in_flight_max: usize,
    /// Bytes queued for writing on one connection past which it is closed.
    pub write_queue_max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_max: CONNECTIONS_PER_SHARD_MAX_DEFAULT,
            in_flight_max: IN_FLIGHT_REQUESTS_MAX_DEFAULT,
            write_queue_max: WRITE_QUEUE_FRAMES_MAX_DEFAULT,
            bytes_in_flight_max: BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT,
            write_queue_max_bytes: WRITE_QUEUE_MAX_BYTES_DEFAULT,
        }
    }
}

/// What a frame queued for writing is counted as: its body, remark and extension fields, plus a fixed
/// header estimate. Counted the same way when queued and when written, so the count returns to zero.
fn queued_cost(cmd: &RemotingCommand) -> usize {
    let ext: usize = cmd
        .ext_fields
        .iter()
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    FRAME_HEADER_ESTIMATE_BYTES + cmd.body.len() + cmd.remark.as_ref().map_or(0, |r| r.len()) + ext
}

/// Requests of our own (broker → client) one connection awaits answers to at most.
pub const CALLS_IN_FLIGHT_MAX: usize = 1024;

/// Why a request of our own to a client got no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("the connection to {peer} is closed")]
    Closed { peer: SocketAddr },
    #[error("{peer} did not answer within {timeout_ms} ms")]
    Timeout { peer: SocketAddr, timeout_ms: u64 },
    #[error("{peer} already has {CALLS_IN_FLIGHT_MAX} requests of ours waiting for an answer")]
    TooMany { peer: SocketAddr },
}

/// One client connection, as services see it: who it is, and a way to send it requests of our own
/// (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE, PUSH_REPLY_MESSAGE_TO_CLIENT).
pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    tx: LocalSender<RemotingCommand>,
    closed: Cell<bool>,
    /// Bytes queued for writing ([`queued_cost`]); the writer task subtracts what it wrote.
    queued_bytes: Rc<Cell<usize>>,
    /// Bound of `queued_bytes`: past it the connection is closed.
    queued_bytes_max: usize,
    /// Fired to make the read loop and the writer stop at once (the write queue overflowed).
    kill: RefCell<Vec<futures::channel::oneshot::Sender<()>>>,
    /// Our requests awaiting the client's answer, by opaque; cleared (failing them) when the connection closes.
    calls: RefCell<HashMap<i32, futures::channel::oneshot::Sender<RemotingCommand>>>,
    next_opaque: Cell<i32>,
}

impl Conn {
    /// Sends a request of our own and waits for the client's answer (RocketMQ's `invokeSync` on a channel).
    ///
    /// # Cancel safety
    /// Dropping the future forgets the call; a late answer is then dropped by the read loop.
    pub async fn call(
        &self,
        mut cmd: RemotingCommand,
        timeout: std::time::Duration,
    ) -> Result<RemotingCommand, CallError> {
        let peer = self.peer;
        if self.closed.get() {
            return Err(CallError::Closed { peer });
        }
        if self.calls.borrow().len() >= CALLS_IN_FLIGHT_MAX {
            return Err(CallError::TooMany { peer });
        }
        let opaque = self.next_opaque.get();
        self.next_opaque.set(opaque.wrapping_add(1) & i32::MAX);
        cmd.opaque = opaque;
        let (tx, rx) = futures::channel::oneshot::channel();
        self.calls.borrow_mut().insert(opaque, tx);
        if !self.send(cmd) {
            self.calls.borrow_mut().remove(&opaque);
            return Err(CallError::Closed { peer });
        }
        let timer = glommio::timer::sleep(timeout);
        match select(rx, Box::pin(timer)).await {
            Either::Left((Ok(answer), _)) => Ok(answer),
            Either::Left((Err(_), _)) => Err(CallError::Closed { peer }),
            Either::Right(_) => {
                self.calls.borrow_mut().remove(&opaque);
                Err(CallError::Timeout {
                    peer,
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Queues a frame for this connection without waiting; false if it is closed or its queue is full.
    /// A frame that would take the queued bytes past their bound closes the connection (see the module docs).
    pub fn send(&self, cmd: RemotingCommand) -> bool {
        let Some(cost) = self.admit_queued(&cmd) else {
            return false;
        };
        if self.tx.try_send(cmd).is_ok() {
            true
        } else {
            self.queued_bytes
                .set(self.queued_bytes.get().saturating_sub(cost));
            false
        }
    }

    /// Queues a response, waiting for a free frame slot; false if the connection is closed (or closes).
    async fn send_waiting(&self, cmd: RemotingCommand) -> bool {
        let Some(cost) = self.admit_queued(&cmd) else {
            return false;
        };
        if self.tx.send(cmd).await.is_ok() {
            true
        } else {
            self.queued_bytes
                .set(self.queued_bytes.get().saturating_sub(cost));
            false
        }
    }

    /// Counts `cmd` as queued, or closes the connection if that would pass the byte bound.
    fn admit_queued(&self, cmd: &RemotingCommand) -> Option<usize> {
        if self.closed.get() {
            return None;
        }
        let cost = queued_cost(cmd);
        let queued = self.queued_bytes.get();
        if queued > 0 && queued + cost > self.queued_bytes_max {
            warn!(
                peer = %self.peer,
                queued_bytes = queued,
                frame_bytes = cost,
                limit_bytes = self.queued_bytes_max,
                "the peer does not read its responses: the write queue would pass its byte limit; closing the connection"
            );
            self.closed.set(true);
            for kill in self.kill.borrow_mut().drain(..) {
                let _ = kill.send(());
            }
            return None;
        }
        self.queued_bytes.set(queued + cost);
        Some(cost)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

/// What serves requests. `call` returns the response, or `None` for a oneway request.
pub trait Service: 'static {
    fn call(
        self: Rc<Self>,
        conn: Rc<Conn>,
        request: RemotingCommand,
    ) -> Pin<Box<dyn Future<Output = Option<RemotingCommand>>>>;
    /// A connection closed (its client tables may drop it).
    fn closed(&self, _conn: &Rc<Conn>) {}
}

thread_local! {
    static NEXT_CONN_ID: Cell<u64> = const { Cell::new(1) };
    /// Connections this thread (shard) serves now, over all its listeners.
    static LIVE_CONNECTIONS: Cell<usize> = const { Cell::new(0) };
    /// Connections refused since the last log line about it, and when that line was written.
    static REFUSED: Cell<(u64, Option<std::time::Instant>)> = const { Cell::new((0, None)) };
}

/// Connections this thread (shard) serves now.
pub fn live_connections() -> usize {
    LIVE_CONNECTIONS.with(|c| c.get())
}

/// Counts a served connection for as long as it lives (dropped with its task, however that ends).
struct LiveConnection;

impl LiveConnection {
    fn new() -> Self {
        LIVE_CONNECTIONS.with(|c| c.set(c.get() + 1));
        LiveConnection
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        LIVE_CONNECTIONS.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// Closes a connection over the per-shard limit; logs it, at most once per [`REFUSAL_LOG_INTERVAL_MS`].
fn refuse_connection(stream: TcpStream, limit: usize) {
    let peer = stream.peer_addr().ok();
    drop(stream);
    let (refused, last) = REFUSED.with(|r| r.get());
    let now = std::time::Instant::now();
    let due = last.is_none_or(|t| {
        now.duration_since(t) >= std::time::Duration::from_millis(REFUSAL_LOG_INTERVAL_MS)
    });
    if due {
        warn!(
            peer = ?peer,
            limit,
            refused_since_last_line = refused + 1,
            "connection refused: this shard already serves its limit of connections (connectionsPerShardMax); closed at once"
        );
        REFUSED.with(|r| r.set((0, Some(now))));
    } else {
        REFUSED.with(|r| r.set((refused + 1, last)));
    }
}

/// Accepts connections until `stop` fires; each connection is served by its own tasks.
pub async fn serve<S: Service>(
    listener: TcpListener,
    service: Rc<S>,
    limits: Limits,
    stop: StopSignal,
) {
    serve_with_tls(listener, service, limits, None, stop).await
}

/// [`serve`], with TLS per `tls` (`tls.server.mode`; `None` is plain only): see [`crate::tls`].
pub async fn serve_with_tls<S: Service>(
    listener: TcpListener,
    service: Rc<S>,
    limits: Limits,
    tls: Option<TlsServer>,
    stop: StopSignal,
) {
    loop {
        let accepted = match select(Box::pin(listener.accept()), stop.clone()).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => return,
        };
        match accepted {
            Ok(stream) => {
                if live_connections() >= limits.connections_max {
                    refuse_connection(stream, limits.connections_max);
                    continue;
                }
                let live = LiveConnection::new();
                let service = service.clone();
                let stop = stop.clone();
                let tls = tls.clone();
                glommio::spawn_local(async move {
                    let peer = stream
                        .peer_addr()
                        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                    let _ = stream.set_nodelay(true);
                    match tls::accept(stream, tls.as_ref()).await {
                        Ok(stream) => serve_conn(stream, peer, service, limits, stop).await,
                        Err(e) => debug!(%peer, reason = %e, "connection not served"),
                    }
                    drop(live);
                })
                .detach();
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves one connection over any byte stream (plain TCP or TLS over it).
async fn serve_conn<S: Service, T: AsyncRead + AsyncWrite + Unpin + 'static>(
    stream: T,
    peer: SocketAddr,
    service: Rc<S>,
    limits: Limits,
    stop: StopSignal,
) {
    let (mut reader, mut writer) = stream.split();
    let (tx, rx) = local_channel::new_bounded::<RemotingCommand>(limits.write_queue_max);
    let id = NEXT_CONN_ID.with(|c| {
        let id = c.get();
        c.set(id + 1);
        id
    });
    let queued_bytes = Rc::new(Cell::new(0usize));
    // Resolves only when fired: a sender dropped with its connection is not a kill.
    let kill = || {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let fired = Box::pin(async move {
            if rx.await.is_err() {
                futures::future::pending::<()>().await;
            }
        });
        (tx, fired)
    };
    let ((kill_reader, mut killed), (kill_writer, mut writer_killed)) = (kill(), kill());
    let conn = Rc::new(Conn {
        id,
        peer,
        tx,
        closed: Cell::new(false),
        queued_bytes: queued_bytes.clone(),
        queued_bytes_max: limits.write_queue_max_bytes,
        kill: RefCell::new(vec![kill_reader, kill_writer]),
        calls: RefCell::new(HashMap::new()),
        next_opaque: Cell::new(1),
    });
    let writer_task = glommio::spawn_local(async move {
        let mut out = BytesMut::with_capacity(64 * 1024);
        loop {
            // A killed connection's queue is dropped unwritten: its peer is not reading it.
            let cmd = match select(Box::pin(rx.recv()), &mut writer_killed).await {
                Either::Left((Some(cmd), _)) => cmd,
                Either::Left((None, _)) | Either::Right(_) => break,
            };
            // Every answer already queued goes into the same write, up to WRITE_BATCH_MAX_BYTES: with
            // many requests in flight on a connection, one send system call instead of one per answer.
            out.clear();
            let mut cost = 0;
            let mut next = Some(cmd);
            while let Some(cmd) = next.take() {
                cost += queued_cost(&cmd);
                if let Err(e) = frame::encode(&cmd, &mut out) {
                    warn!(%peer, error = %e, "response could not be encoded; dropped");
                }
                drop(cmd);
                if out.len() < WRITE_BATCH_MAX_BYTES {
                    // Taken only if already queued: `now_or_never` polls once and drops the wait.
                    next = rx.recv().now_or_never().flatten();
                }
            }
            if out.is_empty() {
                queued_bytes.set(queued_bytes.get().saturating_sub(cost));
                continue;
            }
            let written = match select(
                Box::pin(tls::send_all(&mut writer, &out)),
                &mut writer_killed,
            )
            .await
            {
                Either::Left((r, _)) => r.is_ok(),
                Either::Right(_) => false,
            };
            queued_bytes.set(queued_bytes.get().saturating_sub(cost));
            if !written {
                break;
            }
        }
        let _ = writer.close().await;
    })
    .detach();
    let in_flight = Rc::new(Cell::new(0usize));
    // Frame lengths of the requests being served.
    let request_bytes = Rc::new(Cell::new(0usize));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    'read: loop {
        loop {
            let frame_bytes = frame::peek_length(&buf).ok().flatten().map_or(0, |l| 4 + l);
            match frame::decode(&mut buf) {
                Ok(Some(request)) => {
                    if request.is_response() {
                        let waiter = conn.calls.borrow_mut().remove(&request.opaque);
                        match waiter {
                            Some(w) => {
                                let _ = w.send(request);
                            }
                            None => {
                                debug!(%peer, opaque = request.opaque, "answer from a client to a request nobody awaits (oneway or timed out)")
                            }
                        }
                        continue;
                    }
                    if in_flight.get() >= limits.in_flight_max {
                        let busy = request.error_to(
                            ResponseCode::SystemBusy,
                            format!("[TOO_MANY_REQUESTS] more than {} requests in flight on this connection", limits.in_flight_max),
                        );
                        conn.send(busy);
                        continue;
                    }
                    let bytes = request_bytes.get() + conn.queued_bytes.get();
                    if bytes > 0 && bytes + frame_bytes > limits.bytes_in_flight_max {
                        let busy = request.error_to(
                            ResponseCode::SystemBusy,
                            format!("[TOO_MANY_REQUESTS] {bytes} bytes of requests and responses are in flight on this connection, and this {frame_bytes}-byte request would pass the limit of {} (connectionBytesInFlightMax); retry after the responses are read", limits.bytes_in_flight_max),
                        );
                        conn.send(busy);
                        continue;
                    }
                    in_flight.set(in_flight.get() + 1);
                    request_bytes.set(request_bytes.get() + frame_bytes);
                    let (service, conn2, counter, req_bytes) = (
                        service.clone(),
                        conn.clone(),
                        in_flight.clone(),
                        request_bytes.clone(),
                    );
                    let label = Label::Request(request.code);
                    glommio::spawn_local(labelled(label, async move {
                        let oneway = request.is_oneway();
                        let response = service.call(conn2.clone(), request).await;
                        // The request's bytes are freed before its response is counted as queued.
                        req_bytes.set(req_bytes.get().saturating_sub(frame_bytes));
                        if let (Some(r), false) = (response, oneway) {
                            conn2.send_waiting(r).await;
                        }
                        counter.set(counter.get() - 1);
                    }))
                    .detach();
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "malformed frame; closing the connection");
                    break 'read;
                }
            }
        }
        let read = select(Box::pin(reader.read(&mut chunk)), stop.clone());
        let n = match select(read, &mut killed).await {
            Either::Left((Either::Left((Ok(0), _)), _))
            | Either::Left((Either::Left((Err(_), _)), _)) => break,
            Either::Left((Either::Left((Ok(n), _)), _)) => n,
            Either::Left((Either::Right(_), _)) => break,
            // The write queue overflowed (logged where it did).
            Either::Right(_) => break,
        };
        buf.extend_from_slice(&chunk[..n]);
    }
    conn.closed.set(true);
    // Dropping the senders fails every call awaiting this client's answer at once.
    conn.calls.borrow_mut().clear();
    service.closed(&conn);
    drop(conn);
    // The writer ends when every sender (the connection and in-flight requests) is gone.
    let _ = writer_task.await;
}
