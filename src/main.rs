//! `apogee`: `broker`, `nameserver` or `standalone` (a name server and a broker in one process), and
//! `admin` (mqadmin's verbs against any RocketMQ-compatible cluster).
//!
//! Anything a user can get wrong (a flag, a config file, a port in use, a store it cannot open) ends the
//! process with one line on stderr naming what failed and where, and a non-zero exit. A panic on any of
//! its threads (a bug) stops the process too, logged, with exit code 70 (`shard::exit_on_panic`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use apogee::cli::{self, LogFormat};
use apogee::config::BrokerConfig;
use apogee::shard;
use apogee_nameserver::NameServerConfig;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "apogee",
    version,
    about = "A RocketMQ-compatible message broker, thread-per-core on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (coloured only on a terminal; NO_COLOR turns colour off) or JSON objects.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (one RocketMQ broker per shard) that registers with the name servers.
    Broker(BrokerArgs),
    /// Run a name server.
    Nameserver {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:9876")]
        listen: SocketAddr,
        /// Drop a broker silent for this long.
        #[arg(long, default_value_t = apogee_nameserver::BROKER_EXPIRY_MS_DEFAULT)]
        broker_expiry_ms: u64,
        /// A TLS key, as RocketMQ's name server takes it from -D (repeatable):
        /// -o tls.server.mode=enforcing -o tls.server.certPath=cert.pem, or -o tls.config.file=tls.properties.
        #[arg(short = 'o', value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Check requests that change state (KV config, topic deletion, broker write permission) against
        /// this plain_acl.yml: they need a signed admin account. Reloaded when it changes.
        #[arg(long, value_name = "PLAIN_ACL_YML")]
        acl_file: Option<PathBuf>,
    },
    /// Run a name server and a broker in one process, with a store under the current folder.
    Standalone(BrokerArgs),
    /// Administer a cluster: mqadmin's verbs and flags (updateTopic, consumerProgress, statsAll, ...).
    Admin(apogee::admin::AdminArgs),
}

#[derive(Args)]
struct BrokerArgs {
    /// A RocketMQ broker.conf (key=value lines).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Override any broker.conf key: -o flushDiskType=SYNC_FLUSH (repeatable).
    #[arg(short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// storePathRootDir.
    #[arg(long)]
    store: Option<PathBuf>,
    /// namesrvAddr (host:port;host:port). Standalone: its first entry's port is where the embedded name
    /// server listens (127.0.0.1:9876 by default).
    #[arg(long)]
    namesrv_addr: Option<String>,
    /// listenPort of shard 0; shard i listens at listenPort + 4i.
    #[arg(long)]
    listen_port: Option<u16>,
    /// Number of shards (default: the cores this process may use; at most one per usable CPU).
    #[arg(long)]
    shards: Option<usize>,
    /// Name server only: drop brokers silent for this long (standalone).
    #[arg(long, default_value_t = apogee_nameserver::BROKER_EXPIRY_MS_DEFAULT)]
    broker_expiry_ms: u64,
}

fn broker_config(args: &BrokerArgs, standalone: bool) -> Result<BrokerConfig, String> {
    let mut c = BrokerConfig::default();
    if standalone {
        c.store_path_root_dir = PathBuf::from("apogee-data");
    }
    if let Some(path) = &args.config {
        c.apply_file(path).map_err(|e| e.to_string())?;
    }
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("-o {o}: expected KEY=VALUE"))?;
        if !c.set(k.trim(), v).map_err(|e| e.to_string())? {
            return Err(format!("-o {o}: unknown key `{k}`"));
        }
    }
    let mut set = |k: &str, v: String| c.set(k, &v).map(|_| ()).map_err(|e| e.to_string());
    if let Some(s) = &args.store {
        set("storePathRootDir", s.display().to_string())?;
    }
    if let Some(n) = &args.namesrv_addr {
        set("namesrvAddr", n.clone())?;
    }
    if let Some(p) = args.listen_port {
        set("listenPort", p.to_string())?;
    }
    if let Some(n) = args.shards {
        set("shards", n.to_string())?;
    }
    Ok(c)
}

/// The name server's `-o` keys: TLS keys only (its other settings are named flags).
fn nameserver_tls(
    overrides: &[String],
) -> Result<Option<apogee_transport::tls::TlsServer>, String> {
    let mut tls = apogee_transport::tls::TlsSettings::default();
    for o in overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("-o {o}: expected KEY=VALUE"))?;
        if !tls.set(k.trim(), v).map_err(|e| e.to_string())? {
            return Err(format!(
                "-o {o}: the name server takes only tls.* keys with -o (`{k}` is not one)"
            ));
        }
    }
    tls.server().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = match cli::parse::<Cli>("apogee") {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Command::Admin(args) = cli.command {
        // A one-shot client: only warnings and worse, so that its output stays the report.
        cli::init_logging(cli.log_format, "warn");
        return apogee::admin::run(args);
    }
    cli::init_logging(cli.log_format, "info");
    shard::exit_on_panic();
    shard::block_stop_signals();
    let running = match cli.command {
        Command::Admin(_) => unreachable!("admin commands return above"),
        Command::Broker(args) => broker_config(&args, false).and_then(|c| shard::start(c, None)),
        Command::Standalone(args) => broker_config(&args, true).and_then(|c| {
            let ns_port = c
                .namesrv_addr
                .first()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .unwrap_or(apogee_nameserver::NAMESERVER_PORT_DEFAULT);
            // The embedded name server's port is TLS as the broker's are.
            let ns = NameServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], ns_port)),
                broker_expiry_ms: args.broker_expiry_ms,
                tls: c.tls.server().map_err(|e| e.to_string())?,
                acl: None,
            };
            shard::start(c, Some(ns))
        }),
        Command::Nameserver {
            listen,
            broker_expiry_ms,
            overrides,
            acl_file,
        } => nameserver_tls(&overrides).and_then(|tls| {
            let acl = acl_file
                .map(|path| apogee_acl::SharedAcl::start(&path).map_err(|e| e.to_string()))
                .transpose()?;
            shard::start_nameserver(NameServerConfig {
                listen,
                broker_expiry_ms,
                tls,
                acl,
            })
        }),
    };
    match running {
        Err(e) => {
            eprintln!("apogee: {e}");
            ExitCode::FAILURE
        }
        Ok(r) => {
            let sig = shard::wait_for_signal();
            tracing::info!(
                signal = sig,
                "stopping: draining requests, flushing, unregistering"
            );
            r.stop();
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
    }
}
