//! Connections to brokers and name servers: one per address, requests multiplexed by `opaque`.
//!
//! Each connection has a writer task (fed by a bounded channel) and a reader task that completes waiting
//! requests by opaque and hands requests from the server (NOTIFY_CONSUMER_IDS_CHANGED) to a listener.
//! A closed connection fails its waiting requests at once and is replaced on next use. With a
//! [`TlsConfig`] every connection is TLS ([`crate::tls`]).
//! With [`Credentials`], every request is signed just before it is queued (RocketMQ's `AclClientRPCHook`);
//! answers to the server's own requests are not, as in RocketMQ.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_net::codes::ResponseCode;
use apogee_net::{frame, RemotingCommand};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::credentials::Credentials;
use crate::error::ClientError;
use crate::tls::TlsConfig;

/// Frames queued per connection for writing at most.
pub const WRITE_QUEUE_MAX: usize = 4096;
/// How long a connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>>;
type Reader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Writer = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// A request a server sent us, with the address it came from.
pub type Incoming = (String, RemotingCommand);

struct Connection {
    tx: mpsc::Sender<RemotingCommand>,
    pending: Pending,
    closed: Arc<AtomicBool>,
}

/// The connection pool. Cloning shares it.
#[derive(Clone)]
pub struct Remoting {
    conns: Arc<tokio::sync::Mutex<HashMap<String, Arc<Connection>>>>,
    opaque: Arc<AtomicI32>,
    incoming: mpsc::Sender<Incoming>,
    /// Every connection is TLS when set.
    tls: Option<TlsConfig>,
    credentials: Option<Arc<Credentials>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Remoting {
    /// A pool whose server-initiated requests go to the returned receiver (bounded; extra ones are dropped).
    pub fn new() -> (Self, mpsc::Receiver<Incoming>) {
        Self::with_tls(None)
    }

    /// A pool whose connections are TLS when `tls` is given.
    pub fn with_tls(tls: Option<TlsConfig>) -> (Self, mpsc::Receiver<Incoming>) {
        let (tx, rx) = mpsc::channel(1024);
        (
            Self {
                conns: Default::default(),
                opaque: Arc::new(AtomicI32::new(1)),
                incoming: tx,
                tls,
                credentials: None,
            },
            rx,
        )
    }

    /// Signs every request of this pool (and of its clones made afterwards) with `credentials`.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials.map(Arc::new);
        self
    }

    fn sign(&self, addr: &str, request: &mut RemotingCommand) -> Result<(), ClientError> {
        match &self.credentials {
            Some(c) => c.sign(request).map_err(|e| ClientError::Sign {
                addr: addr.into(),
                source: e,
            }),
            None => Ok(()),
        }
    }

    pub fn next_opaque(&self) -> i32 {
        self.opaque.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }

    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, ClientError> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(addr) {
            if !c.closed.load(Ordering::Acquire) {
                return Ok(c.clone());
            }
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.into(),
                timeout_ms: CONNECT_TIMEOUT.as_millis() as u64,
            })?
            .map_err(|e| ClientError::Connect {
                addr: addr.into(),
                source: e,
            })?;
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = self.wrap(addr, stream).await?;
        let (tx, mut rx) = mpsc::channel::<RemotingCommand>(WRITE_QUEUE_MAX);
        let pending: Pending = Default::default();
        let closed = Arc::new(AtomicBool::new(false));
        let closed_w = closed.clone();
        tokio::spawn(async move {
            let mut out = BytesMut::with_capacity(64 * 1024);
            while let Some(cmd) = rx.recv().await {
                out.clear();
                if frame::encode(&cmd, &mut out).is_err() {
                    continue;
                }
                // Batch whatever else is already queued into the same write.
                while out.len() < 1024 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => {
                            let _ = frame::encode(&more, &mut out);
                        }
                        Err(_) => break,
                    }
                }
                // A TLS write that finds the socket full keeps encrypted bytes in the session until a
                // flush: flush, or the last frame of a burst could wait for the next one.
                if writer.write_all(&out).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
            closed_w.store(true, Ordering::Release);
        });
        let (pending_r, closed_r, incoming, addr_r) = (
            pending.clone(),
            closed.clone(),
            self.incoming.clone(),
            addr.to_owned(),
        );
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            'read: loop {
                loop {
                    match frame::decode(&mut buf) {
                        Ok(Some(cmd)) if cmd.is_response() => {
                            let waiter = lock(&pending_r).remove(&cmd.opaque);
                            if let Some(w) = waiter {
                                let _ = w.send(cmd);
                            }
                        }
                        Ok(Some(cmd)) => {
                            let _ = incoming.try_send((addr_r.clone(), cmd));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(addr = %addr_r, error = %e, "malformed frame from server; closing");
                            break 'read;
                        }
                    }
                }
                match reader.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            closed_r.store(true, Ordering::Release);
            // Dropping the senders fails every waiting request with "connection closed".
            lock(&pending_r).clear();
        });
        let conn = Arc::new(Connection {
            tx,
            pending,
            closed,
        });
        conns.insert(addr.to_owned(), conn.clone());
        Ok(conn)
    }

    /// The connection's two halves: plain, or TLS (handshake within [`CONNECT_TIMEOUT`]).
    async fn wrap(&self, addr: &str, stream: TcpStream) -> Result<(Reader, Writer), ClientError> {
        let Some(tls) = &self.tls else {
            let (r, w) = stream.into_split();
            return Ok((Box::new(r), Box::new(w)));
        };
        let name = tls.name_for(addr)?;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls.connector.connect(name, stream))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.into(),
                timeout_ms: CONNECT_TIMEOUT.as_millis() as u64,
            })?
            .map_err(|e| ClientError::Tls {
                addr: addr.into(),
                reason: format!("handshake failed: {e}"),
            })?;
        let (r, w) = tokio::io::split(stream);
        Ok((Box::new(r), Box::new(w)))
    }

    /// Sends a request and waits for its response.
    pub async fn invoke(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, ClientError> {
        request.opaque = self.next_opaque();
        self.sign(addr, &mut request)?;
        let conn = self.connection(addr).await?;
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending).insert(request.opaque, tx);
        let opaque = request.opaque;
        if conn.tx.send(request).await.is_err() {
            lock(&conn.pending).remove(&opaque);
            return Err(ClientError::ConnectionClosed { addr: addr.into() });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(ClientError::ConnectionClosed { addr: addr.into() }),
            Err(_) => {
                lock(&conn.pending).remove(&opaque);
                Err(ClientError::Timeout {
                    addr: addr.into(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Sends a request and returns the response if its code is SUCCESS, else the broker's error.
    pub async fn invoke_ok(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, ClientError> {
        let r = self.invoke(addr, request, timeout).await?;
        if r.code == ResponseCode::Success as i32 {
            Ok(r)
        } else {
            Err(ClientError::Broker {
                addr: addr.into(),
                code: r.code,
                remark: r.remark.unwrap_or_default(),
            })
        }
    }

    /// Sends a request that expects no response.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        mut request: RemotingCommand,
    ) -> Result<(), ClientError> {
        request.opaque = self.next_opaque();
        request = request.oneway();
        self.sign(addr, &mut request)?;
        let conn = self.connection(addr).await?;
        conn.tx
            .send(request)
            .await
            .map_err(|_| ClientError::ConnectionClosed { addr: addr.into() })
    }

    /// Answers a request a server sent us (a broker-initiated request, such as PUSH_REPLY_MESSAGE_TO_CLIENT),
    /// on the connection it came in on; the answer keeps the request's opaque.
    pub async fn respond(&self, addr: &str, response: RemotingCommand) -> Result<(), ClientError> {
        let conn = self.conns.lock().await.get(addr).cloned();
        match conn {
            Some(c) if !c.closed.load(Ordering::Acquire) => {
                c.tx.send(response)
                    .await
                    .map_err(|_| ClientError::ConnectionClosed { addr: addr.into() })
            }
            _ => Err(ClientError::ConnectionClosed { addr: addr.into() }),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.conns.lock().await.clear();
    }
}
