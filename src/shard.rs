//! Starting and stopping the process: one glommio executor per shard, pinned, each a complete broker; the
//! embedded name server (standalone) on an executor of its own; clean shutdown on request.
//!
//! Shutdown order per shard: stop accepting, wake parked long polls (they answer PULL_NOT_FOUND), wait for
//! in-flight requests (bounded), unregister from name servers, flush and checkpoint the store.
//!
//! A panic on any thread stops the process ([`exit_on_panic`]): a shard that died alone would leave its
//! broker in the name servers' routes (for `brokerExpiry`, 120 s) with nothing serving it, and its store
//! unflushed; dying at once with the panic logged and [`PANIC_EXIT_CODE`] lets a supervisor restart the
//! process, whose recovery handles the store as after a crash. Test-only: the environment variable
//! [`TEST_PANIC_SHARD_ENV`] names a shard that panics once it serves (tests/suite/a_panicking_shard_stops_the_process.rs).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use apogee_engine::notify::Notify;
use apogee_engine::Engine;
use apogee_nameserver::{run_nameserver, NameServerConfig};
use apogee_transport::tls::{TlsClient, TlsServer};
use apogee_transport::{self as transport, StopSignal};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{error, info, warn};

use crate::broker::schedule::{self, Schedule};
use crate::broker::subscription_groups::GroupTable;
use crate::broker::timer::{self, Timers};
use crate::broker::topics::TopicTable;
use crate::broker::{registration, Broker};
use crate::config::BrokerConfig;

/// The exit code of a process stopped by a panic (EX_SOFTWARE: an internal error).
pub const PANIC_EXIT_CODE: i32 = 70;
/// Test-only fault injection: the shard whose number this environment variable holds panics once it serves.
pub const TEST_PANIC_SHARD_ENV: &str = "APOGEE_TEST_PANIC_SHARD";

/// Makes a panic on any thread end the process: the panic is printed as usual (with a backtrace when
/// RUST_BACKTRACE asks), logged with its thread, and the process exits with [`PANIC_EXIT_CODE`]. For the
/// `apogee` binary; embedders (apogee-perf --embedded) keep their own policy.
pub fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        error!(thread = %thread, panic = %info, "a thread panicked; stopping the process");
        std::process::exit(PANIC_EXIT_CODE);
    }));
}

/// How long a stopping shard waits for in-flight requests.
pub const DRAIN_MAX_MS: u64 = 5_000;
/// How often client channels are checked for expiry.
const HOUSEKEEPING_INTERVAL_MS: u64 = 10_000;

/// A running Apogee: its threads and the switch that stops them.
pub struct Running {
    stops: Vec<futures::channel::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    /// The embedded name server, stopped last so that shards can unregister from it.
    nameserver: Option<(futures::channel::oneshot::Sender<()>, JoinHandle<()>)>,
    /// The Prometheus endpoint, when `metricsPort` is set.
    metrics: Option<crate::metrics::MetricsServer>,
}

impl Running {
    /// Stops every shard, then the embedded name server, cleanly, and waits for them.
    pub fn stop(self) {
        if let Some(m) = self.metrics {
            m.stop();
        }
        for s in self.stops {
            let _ = s.send(());
        }
        for t in self.threads {
            let _ = t.join();
        }
        if let Some((stop, thread)) = self.nameserver {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPUs this process may run on (its affinity mask, as `taskset` or a cgroup cpuset leaves it), in
/// order; CPUs 0.. when the mask cannot be read. Shard i is pinned to the i-th: pinning to a CPU outside
/// the mask would fail, or share a CPU another shard already has.
pub fn usable_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most its size, and
    // CPU_ISSET only reads it, for indices below CPU_SETSIZE.
    let cpus: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            Vec::new()
        } else {
            (0..libc::CPU_SETSIZE as usize)
                .filter(|c| libc::CPU_ISSET(*c, &set))
                .collect()
        }
    };
    if cpus.is_empty() {
        (0..cpu_count()).collect()
    } else {
        cpus
    }
}

/// Starts a name server alone (`apogee nameserver`); returns once it accepts connections.
pub fn start_nameserver(ns: NameServerConfig) -> Result<Running, String> {
    Ok(Running {
        stops: Vec::new(),
        threads: Vec::new(),
        nameserver: Some(spawn_nameserver(ns)?),
        metrics: None,
    })
}

type NameServerHandle = (futures::channel::oneshot::Sender<()>, JoinHandle<()>);

/// The name server on an executor of its own; returns once it listens, or why it cannot.
fn spawn_nameserver(ns: NameServerConfig) -> Result<NameServerHandle, String> {
    let (stop_tx, stop) = transport::stop_signal();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let listen = ns.listen;
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("nameserver")
        .spawn(move || async move {
            // Bind first so that readiness means "accepting".
            match TcpListener::bind(listen) {
                Ok(l) => drop(l),
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("name server cannot listen on {listen}: {e}")));
                    return;
                }
            }
            let _ = ready_tx.send(Ok(()));
            if let Err(e) = run_nameserver(ns, stop).await {
                error!(error = %e, "name server stopped");
            }
        })
        .map_err(|e| format!("cannot start the name server executor (glommio needs locked memory: run as root or raise `ulimit -l`): {e}"))?;
    let thread = std::thread::spawn(move || {
        let _ = handle.join();
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((stop_tx, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(format!("the name server for {listen} died during start"))
        }
    }
}

/// Starts the broker's shards, and a name server first when `nameserver` is given (standalone). Returns once
/// every shard serves or one failed to start.
pub fn start(
    config: BrokerConfig,
    nameserver: Option<NameServerConfig>,
) -> Result<Running, String> {
    config.validate().map_err(|e| e.to_string())?;
    crate::ha::check_master_shards(&config)?;
    // Certificates are loaded once, here, so that a bad path fails the start rather than a connection.
    let tls = (
        config.tls.server().map_err(|e| e.to_string())?,
        config.tls.client().map_err(|e| e.to_string())?,
    );
    let cpus = usable_cpus();
    if config.shards > cpus.len() {
        return Err(format!(
            "--shards {} is more than the {} CPUs this process may use ({cpus:?}): one shard per CPU",
            config.shards,
            cpus.len()
        ));
    }
    let mut running = Running {
        stops: Vec::new(),
        threads: Vec::new(),
        nameserver: None,
        metrics: None,
    };
    // One snapshot slot per shard, when the endpoint is on (see `crate::metrics`).
    let slots: Vec<crate::metrics::Slot> = (0..config.shards).map(|_| Default::default()).collect();
    // One account table for the process, read by every shard (and the embedded name server).
    let acl = if config.acl_enable {
        let path = config.acl_path().map_err(|e| e.to_string())?;
        Some(apogee_acl::SharedAcl::start(&path).map_err(|e| format!("aclEnable=true: {e}"))?)
    } else {
        None
    };
    if let Some(mut ns) = nameserver {
        if ns.acl.is_none() {
            ns.acl = acl.clone();
        }
        running.nameserver = Some(spawn_nameserver(ns)?);
    }
    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
    for (shard, cpu) in cpus.iter().copied().enumerate().take(config.shards) {
        let (stop_tx, stop) = transport::stop_signal();
        let config = config.clone();
        let tls = tls.clone();
        let ready = ready_tx.clone();
        let slot = slots
            .get(shard)
            .filter(|_| config.metrics_port != 0)
            .cloned();
        let mut builder =
            LocalExecutorBuilder::new(Placement::Fixed(cpu)).name(&format!("shard-{shard}"));
        if config.spin_before_park_us > 0 {
            builder = builder.spin_before_park(Duration::from_micros(config.spin_before_park_us));
        }
        let handle = builder
            .spawn({
                let acl = acl.clone();
                move || async move { run_shard(shard, config, tls, stop, ready, slot, acl).await }
            })
            .map_err(|e| format!("cannot start the executor of shard {shard} (glommio needs locked memory: run as root or raise `ulimit -l`): {e}"))?;
        running.stops.push(stop_tx);
        running.threads.push(std::thread::spawn(move || {
            let _ = handle.join();
        }));
    }
    drop(ready_tx);
    for _ in 0..config.shards {
        match ready_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                running.stop();
                return Err(e);
            }
            Err(_) => {
                running.stop();
                return Err("a shard thread died during start".into());
            }
        }
    }
    if config.metrics_port != 0 {
        match crate::metrics::MetricsServer::start(config.metrics_port, slots) {
            Ok(m) => running.metrics = Some(m),
            Err(e) => {
                running.stop();
                return Err(e);
            }
        }
    }
    let ports: Vec<String> = (0..config.shards)
        .map(|s| config.shard_port(s).to_string())
        .collect();
    info!(
        shards = config.shards,
        ports = %ports.join(","),
        vip_ports = "port-2 (served)",
        store = %config.store_path_root_dir.display(),
        flush = ?config.flush_disk_type,
        nameservers = %config.namesrv_addr.join(";"),
        "apogee started"
    );
    Ok(running)
}

async fn run_shard(
    shard: usize,
    config: BrokerConfig,
    (tls_server, tls_client): (Option<TlsServer>, Option<TlsClient>),
    stop: StopSignal,
    ready: mpsc::Sender<Result<usize, String>>,
    metrics: Option<crate::metrics::Slot>,
    acl: Option<std::sync::Arc<apogee_acl::SharedAcl>>,
) {
    let config = Rc::new(config);
    let engine = match Engine::open(config.engine_config(shard)).await {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {shard}: cannot open the store: {e}")));
            return;
        }
    };
    // Dledger mode: the commit log is cut back to the applied checkpoint and the Raft node started (it
    // binds the peer port and delivers what follows) before anything reads the store.
    let dledger = if config.enable_dledger_commit_log {
        match crate::dledger::Dledger::start(&config, shard, &engine).await {
            Ok(d) => Some(d),
            Err(e) => {
                let _ = ready.send(Err(format!("shard {shard}: {e}")));
                return;
            }
        }
    } else {
        None
    };
    let cfg_dir = config.engine_config(shard).store_dir.join("config");
    let tables = TopicTable::load(
        cfg_dir.join("topics"),
        config.auto_create_topic_enable,
        config.default_topic_queue_nums,
    )
    .and_then(|t| GroupTable::load(cfg_dir.join("subscriptionGroups")).map(|g| (t, g)))
    .and_then(|(t, g)| {
        Schedule::load(
            cfg_dir.join("delayOffset"),
            config.message_delay_level_ms.clone(),
        )
        .map(|s| (t, g, s))
    })
    .and_then(|(t, g, s)| {
        Timers::load(
            cfg_dir.join("timerProgress"),
            config.timer_entries_in_memory_max,
        )
        .map(|timers| (t, g, s, timers))
    })
    .and_then(|(t, g, s, timers)| {
        crate::broker::transaction::Transactions::load(cfg_dir.join("transactionProgress"))
            .map(|x| (t, g, s, timers, x))
    });
    let (mut topics, groups, delay_schedule, timers, transactions) = match tables {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {shard}: {e}")));
            return;
        }
    };
    // Replies of request-reply messaging go through `<cluster>_REPLY_TOPIC`, which RocketMQ's
    // TopicConfigManager creates at every start with one read and one write queue.
    let reply_topic = apogee_net::properties::reply_topic(&config.broker_cluster_name);
    topics.topics.entry(reply_topic.clone()).or_insert_with(|| {
        apogee_net::body::topic_config::TopicConfig::new(
            &reply_topic,
            1,
            apogee_net::body::route::perm::READ_WRITE,
        )
    });
    // RocketMQ's TopicConfigManager creates the trace topic at start when `traceTopicEnable`, with one
    // queue: trace records are found by key, not read in order.
    if config.trace_topic_enable {
        let name = &config.msg_trace_topic_name;
        topics.topics.entry(name.clone()).or_insert_with(|| {
            apogee_net::body::topic_config::TopicConfig::new(
                name,
                1,
                apogee_net::body::route::perm::READ_WRITE,
            )
        });
    }
    let port = config.shard_port(shard);
    let listeners = (
        TcpListener::bind(("0.0.0.0", port)),
        TcpListener::bind(("0.0.0.0", port - 2)),
    );
    let (main, vip) = match listeners {
        (Ok(m), Ok(v)) => (m, v),
        (Err(e), _) => {
            let _ = ready.send(Err(format!(
                "shard {shard}: cannot listen on port {port}: {e}"
            )));
            return;
        }
        (_, Err(e)) => {
            let _ = ready.send(Err(format!(
                "shard {shard}: cannot listen on VIP port {}: {e}",
                port - 2
            )));
            return;
        }
    };
    let broker = Rc::new(Broker {
        shard,
        name: config.shard_broker_name(shard),
        addr: config.shard_addr(shard),
        config: config.clone(),
        engine: engine.clone(),
        topics: RefCell::new(topics),
        groups: RefCell::new(groups),
        schedule: delay_schedule,
        timers,
        transactions,
        clients: RefCell::new(Default::default()),
        long_poll: Default::default(),
        filters: RefCell::new(crate::broker::filter::FilterTable::default()),
        locks: RefCell::new(crate::broker::lock::LockTable::new(
            config.rebalance_lock_max_live_time_ms,
        )),
        register_now: Notify::default(),
        in_flight: Cell::new(0),
        stopping: Cell::new(false),
        ha: Default::default(),
        master: RefCell::new(Default::default()),
        stats: RefCell::new(crate::broker::stats::Stats::new(crate::broker::now_ms())),
        live: RefCell::new(crate::broker::broker_config::LiveConfig::from_config(
            &config,
        )),
        started_ms: crate::broker::now_ms(),
        tls_client,
        acl: acl.map(|a| crate::broker::acl::BrokerAcl::new(apogee_acl::ShardAcl::new(a))),
        dledger: dledger.clone(),
    });
    let weak = Rc::downgrade(&broker);
    engine.set_dispatch_listener(Rc::new(move |topic, queue, max| {
        if let Some(b) = weak.upgrade() {
            b.long_poll.notify(topic, queue, max);
            if topic == apogee_engine::delay::SCHEDULE_TOPIC {
                b.schedule.dispatched(queue);
            } else if topic == apogee_engine::delay::TIMER_TOPIC {
                b.timers.dispatched();
            }
        }
    }));
    // The topic and group tables are written by one task each, off the shard's thread, coalescing the
    // changes made while a write is in flight (apogee_engine::metadata::writer).
    let table_writers = [
        (broker.topics.borrow().writer(), "topics"),
        (broker.groups.borrow().writer(), "subscription groups"),
    ]
    .map(|(writer, table)| {
        let weak = Rc::downgrade(&broker);
        let task = glommio::spawn_local(writer.clone().run(move || {
            let b = weak.upgrade()?;
            Some(match table {
                "topics" => b.topics.borrow().to_json(),
                _ => b.groups.borrow().to_json(),
            })
        }));
        (writer, table, task)
    });
    let limits = config.transport_limits();
    let servers = [main, vip].map(|l| {
        let (b, s, t) = (broker.clone(), stop.clone(), tls_server.clone());
        glommio::spawn_local(async move { transport::serve_with_tls(l, b, limits, t, s).await })
    });
    // Replication: a master serves its HA port, a slave follows its master and copies its metadata.
    let mut ha_tasks = Vec::new();
    if let Some(d) = &dledger {
        // Dledger mode: Raft replicates; the apply task feeds the commit log, the role watcher decides
        // when this node takes sends, and while it does not it copies metadata like a slave.
        ha_tasks.push(glommio::spawn_local(crate::dledger::apply::run(
            broker.clone(),
            d.clone(),
        )));
        let (b, s) = (broker.clone(), stop.clone());
        ha_tasks.push(glommio::spawn_local(
            crate::dledger::apply::run_checkpoints(b, d.clone(), s),
        ));
        let (b, s) = (broker.clone(), stop.clone());
        ha_tasks.push(glommio::spawn_local(crate::stall::task(
            "dledger role",
            crate::dledger::role::run(b, d.clone(), s),
        )));
        let (b, s) = (broker.clone(), stop.clone());
        ha_tasks.push(glommio::spawn_local(crate::ha::sync::run(b, s)));
    } else if broker.is_slave() {
        let (b, s) = (broker.clone(), stop.clone());
        ha_tasks.push(glommio::spawn_local(crate::ha::slave::run(b, s)));
        let (b, s) = (broker.clone(), stop.clone());
        ha_tasks.push(glommio::spawn_local(crate::ha::sync::run(b, s)));
    } else {
        let ha_port = config.shard_ha_port(shard);
        match TcpListener::bind(("0.0.0.0", ha_port)) {
            Ok(l) => {
                let (b, s, t) = (broker.clone(), stop.clone(), tls_server.clone());
                ha_tasks.push(glommio::spawn_local(crate::ha::master::serve(l, b, t, s)));
            }
            Err(e) => {
                let _ = ready.send(Err(format!(
                    "shard {shard}: cannot listen on HA port {ha_port}: {e}"
                )));
                return;
            }
        }
    }
    // First, so that everything after start is measured.
    let stall_probe = glommio::spawn_local(crate::stall::run(shard, stop.clone()));
    registration::register_all(&broker).await;
    let registrar = glommio::spawn_local(crate::stall::task(
        "registration",
        registration::run(broker.clone(), stop.clone()),
    ));
    // Only a master delivers delayed messages: a slave's log only grows from its master (it gets the re-put
    // messages from there), as RocketMQ stops its ScheduleMessageService on slaves.
    let scheduler = (!broker.is_slave() || dledger.is_some()).then(|| {
        glommio::spawn_local(crate::stall::task(
            "schedule",
            schedule::run(broker.clone(), stop.clone()),
        ))
    });
    // Timer messages likewise (RocketMQ dequeues timers on masters only); Dledger mode refuses them.
    let timer_task = (!broker.is_slave() && dledger.is_none()).then(|| {
        glommio::spawn_local(crate::stall::task(
            "timer",
            timer::run(broker.clone(), stop.clone()),
        ))
    });
    // Only a master checks transactions back, as RocketMQ's TransactionalMessageCheckService.
    let tx_checker = (!broker.is_slave() && dledger.is_none()).then(|| {
        glommio::spawn_local(crate::stall::task(
            "transaction check",
            crate::broker::transaction::check::run(broker.clone(), stop.clone()),
        ))
    });
    let housekeeping = {
        let (b, s) = (broker.clone(), stop.clone());
        glommio::spawn_local(crate::stall::task("housekeeping", async move {
            loop {
                let tick = glommio::timer::sleep(Duration::from_millis(HOUSEKEEPING_INTERVAL_MS));
                if let futures::future::Either::Right(_) =
                    futures::future::select(Box::pin(tick), s.clone()).await
                {
                    return;
                }
                let now = crate::broker::now_ms();
                let expiry = b.live.borrow().channel_expiry_ms;
                let changed = b.clients.borrow_mut().remove_where(|e| {
                    e.conn.is_closed() || now.saturating_sub(e.last_heartbeat_ms) > expiry
                });
                for g in changed {
                    b.notify_group_changed(&g);
                }
                b.long_poll.sweep();
            }
        }))
    };
    // Stats windows are sampled here, on the shard's own core, so counting needs no synchronisation.
    let sampler = {
        let (b, s) = (broker.clone(), stop.clone());
        glommio::spawn_local(crate::stall::task("stats sampler", async move {
            loop {
                let tick = glommio::timer::sleep(Duration::from_millis(
                    crate::broker::stats::SAMPLE_TICK_MS,
                ));
                if let futures::future::Either::Right(_) =
                    futures::future::select(Box::pin(tick), s.clone()).await
                {
                    return;
                }
                b.stats.borrow_mut().sample(crate::broker::now_ms());
                if let Some(slot) = &metrics {
                    let disk = crate::broker::reports::disk_used_ratio(&b).await;
                    let snapshot = crate::metrics::ShardSnapshot::take(&b, disk);
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = snapshot;
                }
            }
        }))
    };
    info!(shard, broker = %broker.name, addr = %broker.addr, "shard serving");
    let _ = ready.send(Ok(shard));
    if std::env::var(TEST_PANIC_SHARD_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        == Some(shard)
    {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        panic!("{TEST_PANIC_SHARD_ENV}={shard}: injected shard panic (test-only)");
    }
    stop.await.ok();
    broker.stopping.set(true);
    broker.long_poll.wake_all();
    for s in servers {
        s.await;
    }
    let mut waited = 0;
    while broker.in_flight.get() > 0 && waited < DRAIN_MAX_MS {
        glommio::timer::sleep(Duration::from_millis(10)).await;
        waited += 10;
    }
    if broker.in_flight.get() > 0 {
        warn!(
            shard,
            in_flight = broker.in_flight.get(),
            "stopping with requests still in flight"
        );
    }
    registrar.await;
    housekeeping.await;
    stall_probe.await;
    sampler.await;
    // Before the store closes: the scheduler flushes the commit log and persists its progress.
    if let Some(scheduler) = scheduler {
        scheduler.await;
    }
    if let Some(t) = timer_task {
        t.await;
    }
    if let Some(checker) = tx_checker {
        checker.await;
    }
    // Dledger: unregister under the id the role gave (a stopped node reports no role), then the node
    // stops delivering (the apply task ends) and the applied checkpoint is written after a last flush,
    // so a clean restart replays nothing.
    if let Some(d) = &dledger {
        registration::unregister_all(&broker).await;
        d.node.shutdown().await;
    }
    for t in ha_tasks {
        t.await;
    }
    if let Some(d) = &dledger {
        if let Err(e) = crate::dledger::apply::checkpoint_now(&broker, d).await {
            warn!(shard, error = %e, "Dledger checkpoint not written at stop; the next start replays more");
        }
    }
    if dledger.is_none() {
        registration::unregister_all(&broker).await;
    }
    for (writer, table, task) in table_writers {
        writer.close();
        task.await;
        info!(
            shard,
            table,
            writes = writer.writes(),
            "metadata table writer stopped"
        );
    }
    if let Err(e) = engine.shutdown().await {
        error!(shard, error = %e, "store did not close cleanly");
    }
    info!(shard, "shard stopped");
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it starts afterwards), so that
/// [`wait_for_signal`] receives them.
pub fn block_stop_signals() {
    // SAFETY: plain libc signal-mask calls on a zeroed, then filled, sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGINT or SIGTERM (blocked beforehand by [`block_stop_signals`]).
pub fn wait_for_signal() -> i32 {
    // SAFETY: as above; sigwait writes the received signal number into `sig`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}
