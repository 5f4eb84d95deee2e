//! The glommio connection loop shared by the name server and the broker: frames in, a [`Service`] per
//! request, frames out.
//!
//! Each request runs as its own task, so a parked long-poll pull never blocks the other requests a client
//! multiplexes over the same connection; responses go back in completion order, matched by `opaque`.
//! Bounds: requests in flight per connection ([`Limits::in_flight_max`], past it the answer is SYSTEM_BUSY)
//! and frames queued for writing ([`Limits::write_queue_max`]). A malformed frame closes only its connection,
//! with the reason logged. TLS (sniffing, handshake) happens in [`crate::tls::accept`] before a connection
//! is served; the loop itself reads and writes any byte stream.

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
use glommio::net::TcpListener;
use tracing::{debug, warn};

use crate::tls::{self, TlsServer};

/// A future that resolves once, when the process is stopping. Cloned freely.
pub type StopSignal = Shared<futures::channel::oneshot::Receiver<()>>;

/// A new stop signal and the sender that fires it (by send or by drop).
pub fn stop_signal() -> (futures::channel::oneshot::Sender<()>, StopSignal) {
    let (tx, rx) = futures::channel::oneshot::channel();
    (tx, rx.shared())
}

/// Bounds of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub in_flight_max: usize,
    pub write_queue_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            in_flight_max: 4096,
            write_queue_max: 4096,
        }
    }
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
    pub fn send(&self, cmd: RemotingCommand) -> bool {
        !self.closed.get() && self.tx.try_send(cmd).is_ok()
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
    let conn = Rc::new(Conn {
        id,
        peer,
        tx,
        closed: Cell::new(false),
        calls: RefCell::new(HashMap::new()),
        next_opaque: Cell::new(1),
    });
    let writer_task = glommio::spawn_local(async move {
        let mut out = BytesMut::with_capacity(64 * 1024);
        while let Some(cmd) = rx.recv().await {
            out.clear();
            if let Err(e) = frame::encode(&cmd, &mut out) {
                warn!(%peer, error = %e, "response could not be encoded; dropped");
                continue;
            }
            if tls::send_all(&mut writer, &out).await.is_err() {
                break;
            }
        }
        let _ = writer.close().await;
    })
    .detach();
    let in_flight = Rc::new(Cell::new(0usize));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    'read: loop {
        loop {
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
                    in_flight.set(in_flight.get() + 1);
                    let (service, conn2, counter) =
                        (service.clone(), conn.clone(), in_flight.clone());
                    glommio::spawn_local(async move {
                        let oneway = request.is_oneway();
                        let response = service.call(conn2.clone(), request).await;
                        if let (Some(r), false) = (response, oneway) {
                            let _ = conn2.tx.send(r).await;
                        }
                        counter.set(counter.get() - 1);
                    })
                    .detach();
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "malformed frame; closing the connection");
                    break 'read;
                }
            }
        }
        let n = match select(Box::pin(reader.read(&mut chunk)), stop.clone()).await {
            Either::Left((Ok(0), _)) | Either::Left((Err(_), _)) => break,
            Either::Left((Ok(n), _)) => n,
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
