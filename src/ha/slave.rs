//! A slave shard's link to its master shard: connect to the master's HA address, report where this log
//! ends, append every push verbatim, report again after each batch and every `haSendHeartbeatInterval`.
//! Any surprise (a push for another offset, a silent master, an I/O error) closes the link with the reason
//! logged, and the slave connects again after a pause; it always resumes from its own written offset, so
//! nothing is skipped or appended twice.

use std::rc::Rc;
use std::time::{Duration, Instant};

use apogee_engine::EngineError;
use apogee_net::ha;
use apogee_transport::tls;
use apogee_transport::StopSignal;
use bytes::BytesMut;
use futures::future::{select, Either};
use futures::io::AsyncReadExt;
use glommio::net::TcpStream;
use tracing::{info, warn};

use crate::broker::Broker;

/// Pause before connecting again after a failed or lost link.
pub const RECONNECT_PAUSE_MS: u64 = 1_000;
/// Longest a connect may take.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;

/// Follows the master until `stop`.
pub async fn run(broker: Rc<Broker>, stop: StopSignal) {
    let mut last_warning: Option<String> = None;
    loop {
        let addr = broker
            .config
            .shard_master_ha_addr(broker.shard)
            .or_else(|| broker.master.borrow().ha_addr.clone());
        let outcome = match addr {
            None => Err(
                "the master's HA address is not known yet (no haMasterAddress, and the name \
                         servers have not named a master)"
                    .to_string(),
            ),
            Some(addr) => follow(&broker, &addr, &stop)
                .await
                .map_err(|e| format!("{addr}: {e}")),
        };
        match outcome {
            Ok(()) => return, // stopping
            Err(reason) => {
                if last_warning.as_ref() != Some(&reason) {
                    warn!(shard = broker.shard, reason = %reason, "replication link down; retrying");
                    last_warning = Some(reason);
                }
            }
        }
        let pause = glommio::timer::sleep(Duration::from_millis(RECONNECT_PAUSE_MS));
        if let Either::Right(_) = select(Box::pin(pause), stop.clone()).await {
            return;
        }
    }
}

/// One link to the master. `Ok` only when stopping.
async fn follow(broker: &Rc<Broker>, addr: &str, stop: &StopSignal) -> Result<(), String> {
    let connect = select(
        Box::pin(async move {
            let stream = TcpStream::connect(crate::resolve::resolve(addr).await?).await?;
            let _ = stream.set_nodelay(true);
            tls::connect(stream, broker.tls_client.as_ref(), addr).await
        }),
        Box::pin(glommio::timer::sleep(Duration::from_millis(
            CONNECT_TIMEOUT_MS,
        ))),
    );
    let stream = match connect.await {
        Either::Left((Ok(s), _)) => s,
        Either::Left((Err(e), _)) => return Err(format!("cannot connect: {e}")),
        Either::Right(_) => return Err(format!("no connection within {CONNECT_TIMEOUT_MS} ms")),
    };
    let (mut reader, mut writer) = stream.split();
    let engine = &broker.engine;
    let report = |out: &mut BytesMut| {
        out.clear();
        ha::encode_report(engine.log_offsets().0, out);
    };
    let mut out = BytesMut::new();
    report(&mut out);
    tls::send_all(&mut writer, &out)
        .await
        .map_err(|e| format!("cannot report: {e}"))?;
    info!(shard = broker.shard, master = %addr, from = engine.log_offsets().0, "replicating from the master");
    let heartbeat = Duration::from_millis(broker.config.ha_send_heartbeat_interval_ms);
    let housekeeping = Duration::from_millis(broker.config.ha_housekeeping_interval_ms);
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_heard = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let mut appended = false;
        loop {
            let push = match ha::decode_push(&mut buf) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => return Err(format!("malformed push: {e}")),
            };
            let (written, _, _) = engine.log_offsets();
            if push.offset < written {
                // The master's log ends before ours: it restarted without bytes it had shipped.
                let dropped = engine.truncate_replicated(push.offset).await.map_err(|e| {
                    format!("cannot truncate to the master's end {}: {e}", push.offset)
                })?;
                warn!(
                    shard = broker.shard,
                    offset = push.offset,
                    dropped_bytes = dropped,
                    "truncated this slave's log to its master's end: the master lost these bytes"
                );
                appended = true; // report the new end
            }
            if push.offset > written {
                // The master's log starts past where ours ends: a new slave, or one that was away while
                // retention deleted what it would need next. Both start at the master's first offset.
                let size = engine.config().commitlog_segment_size_bytes;
                if push.offset % size != 0 {
                    return Err(format!(
                        "the master pushed bytes at {}, past this log's end {written} and not at a segment start",
                        push.offset
                    ));
                }
                if engine.is_empty() {
                    info!(
                        shard = broker.shard,
                        offset = push.offset,
                        "new slave starts at the master's first offset"
                    );
                    engine
                        .start_empty_log_at(push.offset)
                        .await
                        .map_err(|e| e.to_string())?;
                } else {
                    let dropped = engine
                        .restart_log_at(push.offset)
                        .await
                        .map_err(|e| format!("cannot start over at {}: {e}", push.offset))?;
                    warn!(
                        shard = broker.shard,
                        offset = push.offset,
                        dropped_bytes = dropped,
                        "the master no longer holds where this slave's log ended: started over at its first offset"
                    );
                }
                appended = true;
            }
            if push.data.is_empty() {
                continue; // the master's heartbeat
            }
            match engine.append_replicated(push.offset, &push.data).await {
                Ok(()) => appended = true,
                Err(e @ EngineError::DiskFull { .. }) => {
                    return Err(format!("cannot store what the master ships: {e}"))
                }
                Err(e) => return Err(format!("cannot append at {}: {e}", push.offset)),
            }
        }
        if appended || last_report.elapsed() >= heartbeat {
            report(&mut out);
            tls::send_all(&mut writer, &out)
                .await
                .map_err(|e| format!("cannot report: {e}"))?;
            last_report = Instant::now();
        }
        if last_heard.elapsed() > housekeeping {
            return Err(format!(
                "nothing from the master for {} ms",
                housekeeping.as_millis()
            ));
        }
        let read = select(
            Box::pin(reader.read(&mut chunk)),
            Box::pin(glommio::timer::sleep(heartbeat)),
        );
        match select(read, stop.clone()).await {
            Either::Right(_) => return Ok(()),
            Either::Left((Either::Right(_), _)) => {}
            Either::Left((Either::Left((Ok(0), _)), _)) => {
                return Err("the master closed the connection".into())
            }
            Either::Left((Either::Left((Ok(n), _)), _)) => {
                buf.extend_from_slice(&chunk[..n]);
                last_heard = Instant::now();
            }
            Either::Left((Either::Left((Err(e), _)), _)) => {
                return Err(format!("read failed: {e}"))
            }
        }
    }
}
