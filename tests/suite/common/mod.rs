//! Starting real `apogee` processes on loopback for end-to-end tests: free ports, a temporary store, a
//! wait for the start line, and kill or clean stop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod dledger;
pub mod tls;

pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The lowest port tests take: above the RocketMQ defaults (9876, 10909..10912) a developer may be running.
const TEST_PORTS_FIRST: u16 = 12_000;
/// Tests take ports below the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), so no
/// client socket of this machine is handed a port a broker is about to listen on; this is the bound
/// where that file cannot be read (Linux's default start of the range).
const EPHEMERAL_FIRST_DEFAULT: u16 = 32_768;

/// Where this process starts taking ports, as an offset from [`TEST_PORTS_FIRST`]: taken from the process
/// id, so two test processes on one machine (other checkouts' suites) start far apart.
static PORTS_START: OnceLock<u32> = OnceLock::new();
/// Ports handed out so far, counted over the whole test process: all tests share one binary, and one
/// counter gives every test ports of its own, so two tests running at once never pick the same range.
static PORTS_TAKEN: AtomicU32 = AtomicU32::new(0);

fn port_free(p: u16) -> bool {
    TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("0.0.0.0", p)).is_ok()
}

fn ephemeral_first() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .filter(|first| *first > TEST_PORTS_FIRST + 1_000)
        .unwrap_or(EPHEMERAL_FIRST_DEFAULT)
}

/// A base port with `span` free ports from `base - 2`, below the ephemeral range and never handed out
/// before in this process.
pub fn free_ports(span: u16) -> u16 {
    let first = u32::from(TEST_PORTS_FIRST);
    let width = u32::from(ephemeral_first()) - first;
    let start = *PORTS_START.get_or_init(|| std::process::id().wrapping_mul(7919) % width);
    for _ in 0..200 {
        let offset = (start + PORTS_TAKEN.fetch_add(u32::from(span), Ordering::Relaxed)) % width;
        if offset + u32::from(span) > width {
            continue; // the range would reach the ephemeral ports: wrap around instead
        }
        // Below the ephemeral range's start, so it fits a u16.
        let low = (first + offset) as u16;
        if (low..low + span).all(port_free) {
            return low + 2;
        }
    }
    panic!("no free port range of {span} found below the ephemeral range");
}

/// The name libtest knows the test function `test` of the module at `module_path` (pass `module_path!()`)
/// by, for running this test binary again as a child with `--exact`: the module path without the crate.
pub fn exact_test_name(module_path: &str, test: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{test}"),
        None => test.to_owned(),
    }
}

pub struct Process {
    pub child: Child,
    pub log: mpsc::Receiver<String>,
    pub lines: Vec<String>,
}

impl Process {
    /// Starts `apogee` with `args` and waits for a log line containing `ready_marker`.
    pub fn spawn(args: &[String], ready_marker: &str) -> Self {
        Self::spawn_with_env(args, &[], ready_marker)
    }

    /// [`Process::spawn`] with environment variables for this child only (test hooks such as
    /// `APOGEE_TEST_BLOCK_SHARD_MS`): every test shares this process, so `std::env::set_var` would reach
    /// the brokers other tests start meanwhile.
    pub fn spawn_with_env(args: &[String], env: &[(&str, &str)], ready_marker: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_apogee"))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn apogee");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Self {
            child,
            log: rx,
            lines: Vec::new(),
        };
        p.wait_for(ready_marker, START_TIMEOUT);
        p
    }

    /// Waits for a log line containing `marker`.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.log.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let hit = line.contains(marker);
                    self.lines.push(line);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "apogee exited ({status}) before `{marker}`:\n{}",
                            self.lines.join("\n")
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "no `{marker}` within {timeout:?}:\n{}",
            self.lines.join("\n")
        );
    }

    /// SIGKILL, then wait.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (clean stop), then wait; returns the collected log.
    pub fn stop(&mut self) -> Vec<String> {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        // Every line up to the end of the pipe: the reader thread may still be forwarding the last ones.
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(10)) {
            self.lines.push(line);
        }
        self.lines.clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A standalone Apogee (name server + broker) with its own ports and store.
pub struct Standalone {
    pub process: Process,
    pub namesrv: String,
    pub listen_port: u16,
    pub shards: usize,
    pub store: PathBuf,
    pub extra: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Standalone {
    pub fn start(shards: usize, extra: &[&str]) -> Self {
        Self::start_with_env(shards, extra, &[])
    }

    /// [`Standalone::start`] with environment variables for this first process only (test hooks):
    /// [`Standalone::restart`] starts the next one without them.
    pub fn start_with_env(shards: usize, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().to_owned();
        let mut s = Self::start_in_with_env(store, shards, extra, None, None, env);
        s._dir = Some(dir);
        s
    }

    pub fn start_in(
        store: PathBuf,
        shards: usize,
        extra: &[&str],
        ns_port: Option<u16>,
        listen_port: Option<u16>,
    ) -> Self {
        Self::start_in_with_env(store, shards, extra, ns_port, listen_port, &[])
    }

    fn start_in_with_env(
        store: PathBuf,
        shards: usize,
        extra: &[&str],
        ns_port: Option<u16>,
        listen_port: Option<u16>,
        env: &[(&str, &str)],
    ) -> Self {
        let ns_port = ns_port.unwrap_or_else(|| free_ports(3) - 1);
        let listen_port = listen_port.unwrap_or_else(|| free_ports(4 * shards as u16));
        let namesrv = format!("127.0.0.1:{ns_port}");
        let mut args: Vec<String> = vec![
            "standalone".into(),
            "--store".into(),
            store.display().to_string(),
            "--namesrv-addr".into(),
            namesrv.clone(),
            "--listen-port".into(),
            listen_port.to_string(),
            "--shards".into(),
            shards.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = Process::spawn_with_env(&args, env, "apogee started");
        Self {
            process,
            namesrv,
            listen_port,
            shards,
            store,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            _dir: None,
        }
    }

    pub fn shard_addr(&self, shard: usize) -> String {
        format!("127.0.0.1:{}", self.listen_port + 4 * shard as u16)
    }

    /// Restarts on the same ports and store, after a clean stop or a SIGKILL.
    pub fn restart(&mut self, clean: bool) {
        if clean {
            let log = self.process.stop();
            assert!(
                log.iter().any(|l| l.contains("stopped cleanly")),
                "no clean stop:\n{}",
                log.join("\n")
            );
        } else {
            self.process.kill();
        }
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let ns_port = self
            .namesrv
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok());
        let next = Self::start_in(
            self.store.clone(),
            self.shards,
            &extra,
            ns_port,
            Some(self.listen_port),
        );
        self.process = next.process;
    }
}

/// A name server process of its own.
pub fn nameserver(expiry_ms: u64) -> (Process, String) {
    let port = free_ports(3) - 1;
    let addr = format!("127.0.0.1:{port}");
    let p = Process::spawn(
        &[
            "nameserver".into(),
            "--listen".into(),
            addr.clone(),
            "--broker-expiry-ms".into(),
            expiry_ms.to_string(),
        ],
        "name server started",
    );
    (p, addr)
}

/// A broker process registering with `namesrv` (several separated by `;`).
pub fn broker(
    namesrv: &str,
    shards: usize,
    store: &std::path::Path,
    extra: &[&str],
) -> (Process, u16) {
    let port = free_ports(4 * shards as u16);
    (broker_on(namesrv, shards, store, port, extra), port)
}

/// Asserts that every commit log segment of shard 0 that both stores hold is the same, byte for byte (the
/// shorter file's length is compared); returns how many segments were compared.
pub fn assert_commit_logs_identical(master: &std::path::Path, slave: &std::path::Path) -> usize {
    let dir = |root: &std::path::Path| root.join("shard-0").join("commitlog");
    let mut compared = 0;
    for entry in std::fs::read_dir(dir(master)).expect("master commit log") {
        let entry = entry.expect("dir entry");
        let theirs = dir(slave).join(entry.file_name());
        if !theirs.exists() {
            continue;
        }
        let a = std::fs::read(entry.path()).expect("master segment");
        let b = std::fs::read(&theirs).expect("slave segment");
        let n = a.len().min(b.len());
        assert!(a[..n] == b[..n], "segment {:?} differs", entry.file_name());
        compared += 1;
    }
    compared
}

/// GET_MAX_OFFSET of queue 0 of `topic` on the broker at `addr` (not through routes: a slave answers too).
pub async fn max_offset_at(addr: &str, topic: &str) -> Option<i64> {
    max_offset_over(addr, topic, None).await
}

/// [`max_offset_at`] over TLS when `tls` is given.
pub async fn max_offset_over(
    addr: &str,
    topic: &str,
    tls: Option<apogee_client::TlsConfig>,
) -> Option<i64> {
    let (remoting, _) = apogee_client::remoting::Remoting::with_tls(tls);
    let req = apogee_net::RemotingCommand::request(
        apogee_net::codes::RequestCode::GetMaxOffset as i32,
        0,
    )
    .with_ext_fields(
        apogee_net::headers::QueueRequest {
            topic: topic.into(),
            queue_id: 0,
        }
        .to_ext(),
    );
    let r = remoting
        .invoke(addr, req, Duration::from_secs(3))
        .await
        .ok()?;
    r.ext("offset").and_then(|o| o.parse().ok())
}

/// A broker process on a given port (for restarts on the same ports and store).
pub fn broker_on(
    namesrv: &str,
    shards: usize,
    store: &std::path::Path,
    port: u16,
    extra: &[&str],
) -> Process {
    let mut args: Vec<String> = vec![
        "broker".into(),
        "--store".into(),
        store.display().to_string(),
        "--namesrv-addr".into(),
        namesrv.into(),
        "--listen-port".into(),
        port.to_string(),
        "--shards".into(),
        shards.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Process::spawn(&args, "apogee started")
}

/// Polls `f` until it returns Some, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Creates a topic on every broker of the default cluster and waits until the name server routes it.
pub async fn create_topic(
    namesrv: &str,
    topic: &str,
    queues: i32,
) -> Vec<apogee_client::MessageQueue> {
    let admin = apogee_client::Admin::new(namesrv);
    let brokers = admin
        .create_topic("DefaultCluster", topic, queues)
        .await
        .expect("create topic");
    let want = brokers * queues as usize;
    eventually(Duration::from_secs(20), || async {
        admin.queues(topic).await.ok().filter(|q| q.len() == want)
    })
    .await
    .unwrap_or_else(|| panic!("topic {topic} never appeared in routes with {want} queues"))
}

/// Polls `consumer` until `n` messages arrived or `timeout` passed; returns their bodies as text, in order.
pub async fn drain(
    consumer: &apogee_client::PullConsumer,
    n: usize,
    timeout: Duration,
) -> Vec<String> {
    drain_messages(consumer, n, timeout)
        .await
        .into_iter()
        .map(|m| String::from_utf8(m.body.to_vec()).expect("test bodies are text"))
        .collect()
}

/// Polls `consumer` until `n` messages arrived or `timeout` passed.
pub async fn drain_messages(
    consumer: &apogee_client::PullConsumer,
    n: usize,
    timeout: Duration,
) -> Vec<apogee_client::MessageExt> {
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < n && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(300)).await);
    }
    out
}

/// A pull consumer of `group` that starts from the first offset when the group has none.
pub fn pull_consumer(namesrv: &str, group: &str) -> apogee_client::PullConsumer {
    let mut config = apogee_client::PullConsumerConfig::new(namesrv, group);
    config.consume_from = apogee_client::consumer::ConsumeFrom::FirstOffset;
    apogee_client::PullConsumer::new(config)
}

/// A SEND_MESSAGE_V2 request to queue 0 of `topic`, built from the typed header, for tests that talk to the
/// broker below the client.
pub fn raw_send_v2(topic: &str, body: &[u8]) -> apogee_net::RemotingCommand {
    let header = apogee_net::headers::SendMessageRequest {
        producer_group: "pg".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        ..Default::default()
    };
    apogee_net::RemotingCommand::request(apogee_net::codes::RequestCode::SendMessageV2 as i32, 0)
        .with_body(body.to_vec())
        .with_ext_fields(header.to_ext_v2())
}

/// The Python of a venv with the Apache RocketMQ C++ client (PyPI `rocketmq` 0.4.4, which bundles
/// librocketmq in its manylinux wheel), installed into `target/third-party-venv` on first use (needs
/// `python3` with `venv`, and PyPI).
pub fn third_party_python() -> PathBuf {
    const PACKAGE: &str = "rocketmq==0.4.4";
    // The four third-party tests may start at once in this process: one installs, the others wait for it
    // rather than run a second venv and pip into the same folder. A poisoned lock (an install that
    // panicked) leaves no ready mark, so the next test tries again.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target").join("third-party-venv");
    let python = venv.join("bin").join("python");
    let ready = venv.join(".installed-rocketmq-0.4.4");
    if !ready.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "this test needs `python3 -m venv` (Debian: apt-get install python3-venv)"
        );
        let pip = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", PACKAGE])
            .status()
            .expect("run pip");
        assert!(pip.success(), "pip could not install {PACKAGE} from PyPI");
        std::fs::write(&ready, PACKAGE).expect("mark the venv ready");
    }
    python
}

/// A small ext4 file system on a loop device, for full-disk tests: made and mounted in a temporary folder,
/// unmounted and removed on drop. `None`, with the reason printed, where mounting is impossible (not root,
/// no loop devices, no mkfs.ext4): those tests are then skipped.
pub struct SmallFs {
    pub path: PathBuf,
    dir: tempfile::TempDir,
}

impl SmallFs {
    pub fn mount(size_mib: u64) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("fs.img");
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).expect("mount point");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mib * 1024 * 1024))
            .expect("image file");
        let run = |cmd: &str, args: &[&std::ffi::OsStr]| -> Result<(), String> {
            match Command::new(cmd).args(args).output() {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!(
                    "{cmd} failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Err(format!("cannot run {cmd}: {e}")),
            }
        };
        // -m 0: no blocks reserved for root, so `df` and ENOSPC agree for this test's root user.
        let made = run(
            "mkfs.ext4",
            &[
                "-q".as_ref(),
                "-F".as_ref(),
                "-m".as_ref(),
                "0".as_ref(),
                image.as_os_str(),
            ],
        )
        .and_then(|_| {
            run(
                "mount",
                &[
                    "-o".as_ref(),
                    "loop".as_ref(),
                    image.as_os_str(),
                    path.as_os_str(),
                ],
            )
        });
        match made {
            Ok(()) => Some(Self { path, dir }),
            Err(reason) => {
                eprintln!("SKIPPED: this test needs a loop-mounted ext4 file system (root, loop devices): {reason}");
                None
            }
        }
    }

    /// Bytes still free for writing.
    pub fn avail_bytes(&self) -> u64 {
        apogee_engine::disk::SpaceSample::read(&self.path)
            .expect("statvfs")
            .avail_bytes
    }

    /// Used ratio as `df` shows it.
    pub fn used_ratio(&self) -> f64 {
        apogee_engine::disk::SpaceSample::read(&self.path)
            .expect("statvfs")
            .used_ratio()
    }

    /// Writes a file of zeros that takes every free block (the file system is then 100 % full); returns
    /// its path. Deleting it frees the space again.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.path.join(name);
        let mut f = std::fs::File::create(&path).expect("filler");
        for chunk in [1024 * 1024, 4096, 1024] {
            let zeros = vec![0u8; chunk];
            while f.write_all(&zeros).and_then(|_| f.sync_data()).is_ok() {}
        }
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        for _ in 0..50 {
            match Command::new("umount").arg(&self.path).status() {
                Ok(s) if s.success() => return,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = &self.dir;
    }
}

/// A PULL_MESSAGE request for tests that look at the broker's answer codes below the client.
pub fn raw_pull(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
) -> apogee_net::RemotingCommand {
    let header = apogee_net::headers::PullMessageRequest {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: 0,
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: None,
        sub_version: 0,
        expression_type: None,
        max_msg_bytes: None,
    };
    apogee_net::RemotingCommand::request(apogee_net::codes::RequestCode::PullMessage as i32, 0)
        .with_ext_fields(header.to_ext())
}

/// A plain HTTP/1.1 GET (for /metrics and the Prometheus API): the body when the answer is 200.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// `promtool` and `prometheus` from Debian's `prometheus` package: found on PATH, else installed with
/// apt-get when running as root. `None`, with the reason printed, where neither works: those tests skip.
pub fn prometheus_tools() -> Option<(PathBuf, PathBuf)> {
    fn on_path(name: &str) -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
    }
    let found = || on_path("promtool").zip(on_path("prometheus"));
    // Two tests of this process may want the tools at once; two apt-get runs would fight over dpkg's lock.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = found() {
        return Some(t);
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || on_path("apt-get").is_none() {
        println!("SKIPPED: promtool/prometheus are not installed, and installing Debian's `prometheus` package needs root and apt-get");
        return None;
    }
    println!("installing Debian's `prometheus` package for promtool and prometheus");
    let installed = Command::new("sh")
        .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus"])
        .stdout(Stdio::null())
        .status();
    match (installed, found()) {
        (_, Some(t)) => Some(t),
        (status, None) => {
            println!("SKIPPED: apt-get could not install prometheus ({status:?})");
            None
        }
    }
}

/// A blocking connection that speaks raw frames, for tests that look below the client (limits, bad input).
pub struct RawConn {
    pub stream: std::net::TcpStream,
    buf: bytes::BytesMut,
}

impl RawConn {
    pub fn connect(addr: &str) -> std::io::Result<Self> {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            stream,
            buf: bytes::BytesMut::new(),
        })
    }

    /// Writes one frame.
    pub fn send(&mut self, cmd: &apogee_net::RemotingCommand) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = bytes::BytesMut::new();
        apogee_net::frame::encode(cmd, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.stream.write_all(&out)
    }

    /// The next frame from the broker; `None` when it closed the connection (or the read timed out).
    pub fn recv(&mut self) -> Option<apogee_net::RemotingCommand> {
        use std::io::Read;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(cmd) = apogee_net::frame::decode(&mut self.buf).ok()? {
                return Some(cmd);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends `cmd` and waits for its answer.
    pub fn call(
        &mut self,
        cmd: &apogee_net::RemotingCommand,
    ) -> Option<apogee_net::RemotingCommand> {
        self.send(cmd).ok()?;
        self.recv()
    }
}
