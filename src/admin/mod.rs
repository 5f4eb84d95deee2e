//! `apogee admin`: mqadmin's verbs for the common jobs, over the RocketMQ remoting protocol only, so the
//! same commands work against an Apogee or a RocketMQ cluster.
//!
//! - Verbs and flag letters are mqadmin's (`updateTopic -t T -c C -r 8 -w 8`, `-n` name servers, `-g`
//!   group, `-b` broker address, ...), so an operator's habits carry over.
//! - Output: aligned tables, or one JSON document with `--json` for scripts.
//! - Errors: one line on stderr, `apogee admin <verb>: <what failed, with the address>`, and an exit code
//!   scripts can test: [`EXIT_FAILED`] (unreachable, refused), [`EXIT_NOT_FOUND`] (no such topic, group,
//!   message), [`crate::cli::USAGE_EXIT`] for bad arguments.
//!
//! One file per verb family: [`topic`], [`group`], [`broker`], [`message`], [`trace`]. A new family is a file with
//! its own `Verb` enum (a clap `Subcommand`) and `run`, and one flattened variant in [`Verb`] here.

pub mod broker;
pub mod group;
pub mod message;
pub mod output;
pub mod topic;
pub mod trace;

use std::process::ExitCode;

use apogee_client::{Admin, ClientError, Credentials};
use clap::{Args, Subcommand};
use thiserror::Error;

pub use output::Report;

/// Exit code of a request that failed: unreachable address, refused request, bad answer.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when what was asked for does not exist (topic, group online, message).
pub const EXIT_NOT_FOUND: u8 = 3;

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Name servers, `host:port;host:port` (else NAMESRV_ADDR, else 127.0.0.1:9876).
    #[arg(short = 'n', long = "namesrvAddr", global = true)]
    pub namesrv: Option<String>,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Talk TLS to the name servers and brokers (RocketMQ's `-Dtls.enable=true`); needs --tls-ca.
    #[arg(long, global = true)]
    pub tls: bool,
    /// TLS: the CA certificate (PEM) that signed the servers' certificates.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// TLS: a client certificate (PEM), for servers with tls.server.need.client.auth=require.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS: the client certificate's private key (PEM, unencrypted).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// ACL: sign every request with this access key (else APOGEE_ACCESS_KEY), for brokers with
    /// aclEnable=true. Needs --secret-key.
    #[arg(long, global = true, value_name = "AK")]
    pub access_key: Option<String>,
    /// ACL: the access key's secret (else APOGEE_SECRET_KEY; the environment keeps it out of `ps`).
    #[arg(long, global = true, value_name = "SK")]
    pub secret_key: Option<String>,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    #[command(flatten)]
    Topic(topic::Verb),
    #[command(flatten)]
    Group(group::Verb),
    #[command(flatten)]
    Broker(broker::Verb),
    #[command(flatten)]
    Message(message::Verb),
    #[command(flatten)]
    Trace(trace::Verb),
}

impl Verb {
    /// mqadmin's name of the verb, for error lines.
    fn name(&self) -> String {
        let debug = match self {
            Verb::Topic(v) => format!("{v:?}"),
            Verb::Group(v) => format!("{v:?}"),
            Verb::Broker(v) => format!("{v:?}"),
            Verb::Message(v) => format!("{v:?}"),
            Verb::Trace(v) => format!("{v:?}"),
        };
        let head: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
        let mut chars = head.chars();
        match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect(),
            None => head,
        }
    }
}

/// Why a verb failed.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Usage(String),
}

impl AdminError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::NotFound(_) => EXIT_NOT_FOUND,
            AdminError::Usage(_) => crate::cli::USAGE_EXIT,
            // TOPIC_NOT_EXIST, QUERY_NOT_FOUND, SUBSCRIPTION_GROUP_NOT_EXIST, CONSUMER_NOT_ONLINE.
            AdminError::Client(ClientError::NoRoute(_)) => EXIT_NOT_FOUND,
            AdminError::Client(e) if matches!(e.code(), Some(17 | 22 | 26 | 206)) => EXIT_NOT_FOUND,
            AdminError::Client(_) => EXIT_FAILED,
        }
    }
}

/// What every verb gets: the admin client, the name servers it talks to, and the ACL credentials its
/// other clients (a producer for sendMessage) sign with.
pub struct Ctx {
    pub admin: Admin,
    pub namesrv: String,
    /// TLS for every client a verb opens, when `--tls`.
    pub tls: Option<apogee_client::TlsConfig>,
    pub credentials: Option<Credentials>,
}

/// The client TLS settings of `--tls`, `--tls-ca`, `--tls-cert`, `--tls-key`.
fn tls_config(args: &AdminArgs) -> Result<Option<apogee_client::TlsConfig>, String> {
    let given = args.tls_ca.is_some() || args.tls_cert.is_some();
    match (args.tls, &args.tls_ca) {
        (false, _) if given => Err("--tls-ca/--tls-cert/--tls-key need --tls".into()),
        (false, _) => Ok(None),
        (true, None) => {
            Err("--tls needs --tls-ca FILE: the CA that signed the servers' certificates".into())
        }
        (true, Some(ca)) => {
            let mut o = apogee_client::TlsOptions::ca_file(ca);
            if let (Some(c), Some(k)) = (&args.tls_cert, &args.tls_key) {
                o = o.client_cert_files(c, k);
            }
            o.build().map(Some).map_err(|e| e.to_string())
        }
    }
}

/// Environment variable holding the access key when `--access-key` is not given.
pub const ACCESS_KEY_ENV: &str = "APOGEE_ACCESS_KEY";
/// Environment variable holding the secret key when `--secret-key` is not given.
pub const SECRET_KEY_ENV: &str = "APOGEE_SECRET_KEY";

/// The credentials from the flags, else the environment; both halves or neither.
fn credentials(args: &AdminArgs) -> Result<Option<Credentials>, String> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let ak = args.access_key.clone().or_else(|| from_env(ACCESS_KEY_ENV));
    let sk = args.secret_key.clone().or_else(|| from_env(SECRET_KEY_ENV));
    match (ak, sk) {
        (Some(ak), Some(sk)) => Ok(Some(Credentials::new(ak, sk))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!(
            "an access key was given but no secret key (--secret-key or {SECRET_KEY_ENV})"
        )),
        (None, Some(_)) => Err(format!(
            "a secret key was given but no access key (--access-key or {ACCESS_KEY_ENV})"
        )),
    }
}

/// Runs one verb to completion on a runtime of its own; prints its report or its one-line error.
pub fn run(args: AdminArgs) -> ExitCode {
    let namesrv = args
        .namesrv
        .clone()
        .or_else(|| std::env::var("NAMESRV_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:9876".into());
    let verb_name = args.verb.name();
    let credentials = match credentials(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("apogee admin {verb_name}: {e}");
            return ExitCode::from(crate::cli::USAGE_EXIT);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("apogee admin {verb_name}: cannot start a runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let tls = match tls_config(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("apogee admin {verb_name}: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let ctx = Ctx {
        admin: Admin::with_options(&namesrv, tls.clone(), credentials.clone()),
        namesrv,
        tls,
        credentials,
    };
    let result = runtime.block_on(async {
        match args.verb {
            Verb::Topic(v) => topic::run(v, &ctx).await,
            Verb::Group(v) => group::run(v, &ctx).await,
            Verb::Broker(v) => broker::run(v, &ctx).await,
            Verb::Message(v) => message::run(v, &ctx).await,
            Verb::Trace(v) => trace::run(v, &ctx).await,
        }
    });
    match result {
        Ok(report) => {
            report.print(args.json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let line = e.to_string().replace('\n', " ");
            eprintln!("apogee admin {verb_name}: {line}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
