//! A master shard's HA port: slaves connect, report the offset their log ends at, and get the commit log
//! shipped from there as raw bytes (`offset | size | bytes`, [`apogee_net::ha`]).
//!
//! Per connection, two tasks: the reader takes the slave's reports (its first one says where to start,
//! every later one acknowledges, which completes SYNC_MASTER sends), the shipper pushes from the engine's
//! memory or files whenever the log grows, and an empty push as a heartbeat when it does not. A slave that
//! sends garbage, asks for an offset beyond this log, or stays silent past `haHousekeepingInterval` is
//! disconnected with the reason logged; the rest of the shard is not affected.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use apogee_net::ha;
use apogee_transport::tls::{self, ServerStream, TlsServer};
use apogee_transport::StopSignal;
use bytes::BytesMut;
use futures::future::{select, Either};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::broker::Broker;

/// Bytes of log read at once for shipping: a slave far behind is served by few large reads, while each
/// push stays within `haTransferBatchSize`.
pub const SHIP_READ_BYTES: usize = 1024 * 1024;

/// Slave connections one shard keeps at most (RocketMQ runs one slave per broker id; a few spare).
pub const SLAVE_CONNECTIONS_MAX: usize = 8;

/// Accepts slaves until `stop`.
/// With `tls`, slaves are served per `tls.server.mode` as on the broker's other ports.
pub async fn serve(
    listener: TcpListener,
    broker: Rc<Broker>,
    tls: Option<TlsServer>,
    stop: StopSignal,
) {
    loop {
        let accepted = match select(Box::pin(listener.accept()), stop.clone()).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => return,
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                warn!(shard = broker.shard, error = %e, "HA accept failed");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if broker.ha.connections() >= SLAVE_CONNECTIONS_MAX {
            warn!(
                shard = broker.shard,
                "HA port refuses a slave: {SLAVE_CONNECTIONS_MAX} connected already"
            );
            continue;
        }
        let (b, s, t) = (broker.clone(), stop.clone(), tls.clone());
        glommio::spawn_local(async move { connection(stream, b, t, s).await }).detach();
    }
}

async fn connection(
    stream: TcpStream,
    broker: Rc<Broker>,
    tls: Option<TlsServer>,
    stop: StopSignal,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    let reason = match tls::accept(stream, tls.as_ref()).await {
        Ok(stream) => ship(stream, &broker, &peer, stop).await,
        Err(e) => e.to_string(),
    };
    info!(shard = broker.shard, slave = %peer, reason = %reason, "slave disconnected");
}

/// Runs one slave connection; returns why it ended.
async fn ship(stream: ServerStream, broker: &Rc<Broker>, peer: &str, stop: StopSignal) -> String {
    let (mut reader, mut writer) = stream.split();
    let housekeeping = Duration::from_millis(broker.config.ha_housekeeping_interval_ms);
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 4096];
    // The first report says where to start.
    let first = loop {
        match ha::decode_report(&mut buf) {
            Ok(Some(o)) => break o,
            Ok(None) => {}
            Err(e) => return format!("bad report: {e}"),
        }
        let read = select(
            Box::pin(reader.read(&mut chunk)),
            Box::pin(glommio::timer::sleep(housekeeping)),
        );
        match select(read, stop.clone()).await {
            Either::Right(_) => return "stopping".into(),
            Either::Left((Either::Right(_), _)) => return "no offset report in time".into(),
            Either::Left((Either::Left((Ok(0), _)), _)) => return "closed before reporting".into(),
            Either::Left((Either::Left((Ok(n), _)), _)) => buf.extend_from_slice(&chunk[..n]),
            Either::Left((Either::Left((Err(e), _)), _)) => return format!("read failed: {e}"),
        }
    };
    let engine = &broker.engine;
    let (written, _, _) = engine.log_offsets();
    let min = engine.commitlog_min_offset();
    let mut next = first;
    if first > written {
        // This master restarted behind its slave (ASYNC_FLUSH: it had shipped what it had not flushed).
        // An empty push at this log's end tells the slave to cut its log back to it.
        warn!(
            shard = broker.shard,
            slave = %peer,
            slave_offset = first,
            master_offset = written,
            "the slave holds bytes this master lost; it is told to truncate to this log's end"
        );
        let mut out = BytesMut::new();
        ha::encode_push_header(written, 0, &mut out);
        if let Err(e) = tls::send_all(&mut writer, &out).await {
            return format!("write failed: {e}");
        }
        next = written;
    }
    if first < min {
        // A new slave, or one whose end retention has deleted here: it starts over where this log starts.
        // The empty push tells it at once, even when there is nothing new to ship.
        if first != 0 {
            warn!(
                shard = broker.shard,
                slave = %peer,
                slave_offset = first,
                master_min_offset = min,
                "the slave's log ends below what this master retains; it starts over at this log's first offset"
            );
        }
        let mut out = BytesMut::new();
        ha::encode_push_header(min, 0, &mut out);
        if let Err(e) = tls::send_all(&mut writer, &out).await {
            return format!("write failed: {e}");
        }
        next = min;
    }
    let id = broker.ha.connected(first.min(written), peer);
    info!(shard = broker.shard, slave = %peer, from = next, "slave connected");
    let reason = ship_from(broker, id, next, written, reader, writer, buf, peer, stop).await;
    broker.ha.disconnected(id);
    reason
}

/// The shipping part of a connection, once the slave's start is known.
#[allow(clippy::too_many_arguments)]
async fn ship_from(
    broker: &Rc<Broker>,
    id: u64,
    mut next: u64,
    written: u64,
    mut reader: futures::io::ReadHalf<ServerStream>,
    mut writer: futures::io::WriteHalf<ServerStream>,
    mut buf: BytesMut,
    peer: &str,
    stop: StopSignal,
) -> String {
    let engine = &broker.engine;
    let housekeeping = Duration::from_millis(broker.config.ha_housekeeping_interval_ms);
    let heartbeat = Duration::from_millis(broker.config.ha_send_heartbeat_interval_ms);
    let mut chunk = vec![0u8; 4096];

    // Reports from here on acknowledge; the reader runs beside the shipper.
    let last_report = Rc::new(Cell::new(Instant::now()));
    let ended = Rc::new(Cell::new(None::<&'static str>));
    let reader_task = {
        let (b, last, ended) = (broker.clone(), last_report.clone(), ended.clone());
        let peer = peer.to_owned();
        let (connected_at, from) = (Instant::now(), next);
        let mut caught_up = false;
        glommio::spawn_local(async move {
            loop {
                loop {
                    match ha::decode_report(&mut buf) {
                        Ok(Some(o)) => {
                            b.ha.acked(id, o);
                            last.set(Instant::now());
                            // The lag report: once per connection, when the slave first holds all of the
                            // log that existed when it connected (or more).
                            if !caught_up && o >= written {
                                caught_up = true;
                                let secs = connected_at.elapsed().as_secs_f64().max(1e-6);
                                let bytes = o.saturating_sub(from);
                                info!(
                                    shard = b.shard,
                                    slave = %peer,
                                    shipped_bytes = bytes,
                                    elapsed_ms = (secs * 1000.0) as u64,
                                    mb_per_s = format!("{:.1}", bytes as f64 / secs / 1e6),
                                    "slave caught up"
                                );
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            ended.set(Some("a malformed offset report"));
                            b.engine.appended().notify();
                            return;
                        }
                    }
                }
                match reader.read(&mut chunk).await {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => {
                        ended.set(Some("the slave closed the connection"));
                        b.engine.appended().notify();
                        return;
                    }
                }
            }
        })
    };
    let batch = broker.config.ha_transfer_batch_size;
    let mut out = BytesMut::new();
    let mut last_push = Instant::now();
    let reason = loop {
        if let Some(r) = ended.get() {
            break r.to_string();
        }
        if last_report.get().elapsed() > housekeeping {
            break format!("no report for {} ms", housekeeping.as_millis());
        }
        let grown = engine.appended().notified();
        // Read up to SHIP_READ_BYTES at once (one disk read when the slave is far behind), then cut it
        // into pushes of at most haTransferBatchSize and write them together.
        match engine
            .read_for_slave(next, SHIP_READ_BYTES.max(batch))
            .await
        {
            Ok(Some(bytes)) => {
                out.clear();
                for piece in bytes.chunks(batch) {
                    ha::encode_push_header(next, piece.len(), &mut out);
                    out.extend_from_slice(piece);
                    next += piece.len() as u64;
                }
                if let Err(e) = tls::send_all(&mut writer, &out).await {
                    break format!("write failed: {e}");
                }
                last_push = Instant::now();
                continue;
            }
            Ok(None) => {}
            Err(e) => break format!("cannot read the log at {next}: {e}"),
        }
        if last_push.elapsed() >= heartbeat {
            out.clear();
            ha::encode_push_header(next, 0, &mut out);
            if let Err(e) = tls::send_all(&mut writer, &out).await {
                break format!("write failed: {e}");
            }
            last_push = Instant::now();
        }
        let tick = glommio::timer::sleep(heartbeat);
        if let Either::Right(_) = select(select(grown, Box::pin(tick)), stop.clone()).await {
            break "stopping".into();
        }
    };
    reader_task.cancel().await;
    let _ = writer.close().await;
    reason
}
