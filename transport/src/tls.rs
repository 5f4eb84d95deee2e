//! TLS at the edge of every Apogee port (broker, name server, HA), with rustls and its `ring` provider: no
//! OpenSSL. The codec stays sans-IO: this module only turns an accepted or dialled glommio [`TcpStream`] into
//! a byte stream ([`ServerStream`], [`ClientStream`]) that the connection loops read frames from.
//!
//! Settings are RocketMQ's `TlsSystemConfig` keys ([`TlsSettings::set`]): `tls.server.mode` is
//! - `disabled`: plain connections only (no sniffing; a TLS hello is a malformed frame and is closed);
//! - `permissive`: TLS and plain connections on the same port, told apart by the first byte;
//! - `enforcing`: TLS only; a plain connection is closed before any of its bytes are read as a frame.
//!
//! Sniffing ([`accept`]) peeks at the first byte without consuming it: a TLS connection starts with a
//! handshake record, content type 0x16 ([`TLS_HANDSHAKE_RECORD_TYPE`]); a RocketMQ frame starts with its
//! 4-byte big-endian length, whose first byte is 0 for any frame we accept (frames are far below 16 MiB).
//! RocketMQ's `HandshakeHandler` decides the same way.
//!
//! Invariant: a connection holds an accept slot for at most [`HANDSHAKE_TIMEOUT_MS`] before it is served
//! (peek and handshake together), so a client that connects and never finishes cannot pin one.
//!
//! Client side (a broker registering with TLS name servers, a slave dialling its master's HA port, a slave
//! reading its master's metadata): `tls.enable=true` makes those connections TLS ([`TlsSettings::client`]),
//! trusting `tls.client.trustCertPath` (or `tls.server.trustCertPath` when only that is given) and
//! presenting `tls.client.certPath`/`tls.client.keyPath` when the server wants a client certificate.
//!
//! Refused with an error naming the key (not silently ignored): an encrypted private key
//! (`tls.server.keyPassword`, `tls.client.keyPassword`), `tls.test.mode.enable=true` (RocketMQ's built-in
//! self-signed test certificate), and `tls.server.authClient=false` / `tls.client.authServer=false` (RocketMQ
//! would then trust any peer certificate; Apogee always verifies against the trust path).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// A TLS connection's first byte: the record content type of a handshake.
pub const TLS_HANDSHAKE_RECORD_TYPE: u8 = 0x16;

/// Longest time from accept to a served connection (sniff plus handshake), and for a client's handshake.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// A served connection: plain, or TLS over TCP.
pub type ServerStream = Either<TcpStream, futures_rustls::server::TlsStream<TcpStream>>;
/// A dialled connection: plain, or TLS over TCP.
pub type ClientStream = Either<TcpStream, futures_rustls::client::TlsStream<TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("config key `{key}` has a bad value `{value}`: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("config key `{key}` is not supported: {reason}")]
    Unsupported { key: String, reason: String },
    #[error("{what}: {reason}")]
    Missing { what: String, reason: String },
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot read tls.config.file {path}: {source}")]
    ConfigFile { path: PathBuf, source: io::Error },
    #[error("TLS {what}: {source}")]
    Rustls {
        what: &'static str,
        source: rustls::Error,
    },
    #[error("TLS client verifier: {0}")]
    Verifier(String),
}

/// `tls.server.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    #[default]
    Disabled,
    Permissive,
    Enforcing,
}

/// `tls.server.need.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    None,
    /// A client may present a certificate; one that does is verified.
    Optional,
    /// A client without a valid certificate is refused (mutual TLS).
    Require,
}

/// RocketMQ's TLS keys, as written in broker.conf, `-o`, or a `tls.config.file`.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub server_mode: TlsMode,
    pub server_cert_path: Option<PathBuf>,
    pub server_key_path: Option<PathBuf>,
    pub server_trust_cert_path: Option<PathBuf>,
    pub server_need_client_auth: ClientAuth,
    /// `tls.enable`: this process's own outgoing connections use TLS.
    pub client_enable: bool,
    pub client_cert_path: Option<PathBuf>,
    pub client_key_path: Option<PathBuf>,
    pub client_trust_cert_path: Option<PathBuf>,
    /// `tls.config.file`: read when the settings are loaded ([`TlsSettings::server`], [`TlsSettings::client`]),
    /// its keys over the others as in RocketMQ, never while a config key is merely set (UPDATE_BROKER_CONFIG
    /// sets keys on a copy to classify them: a remote request must not make the broker read a file).
    pub config_file: Option<PathBuf>,
}

/// A `tls.config.file` larger than this is refused (it holds a handful of keys).
pub const CONFIG_FILE_MAX_BYTES: u64 = 64 * 1024;

fn path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

fn bad(key: &str, value: &str, reason: &str) -> TlsError {
    TlsError::BadValue {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn boolean(key: &str, v: &str) -> Result<bool, TlsError> {
    v.parse().map_err(|_| bad(key, v, "expected true or false"))
}

impl TlsSettings {
    /// Applies one key; `Ok(false)` when `key` is not a TLS key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, TlsError> {
        let v = value.trim();
        match key {
            "tls.server.mode" => {
                self.server_mode = match v {
                    "disabled" => TlsMode::Disabled,
                    "permissive" => TlsMode::Permissive,
                    "enforcing" => TlsMode::Enforcing,
                    _ => return Err(bad(key, v, "expected disabled, permissive or enforcing")),
                }
            }
            "tls.server.certPath" => self.server_cert_path = path(v),
            "tls.server.keyPath" => self.server_key_path = path(v),
            "tls.server.trustCertPath" => self.server_trust_cert_path = path(v),
            "tls.server.need.client.auth" => {
                self.server_need_client_auth = match v {
                    "none" => ClientAuth::None,
                    "optional" => ClientAuth::Optional,
                    "require" => ClientAuth::Require,
                    _ => return Err(bad(key, v, "expected none, optional or require")),
                }
            }
            "tls.enable" => self.client_enable = boolean(key, v)?,
            "tls.client.certPath" => self.client_cert_path = path(v),
            "tls.client.keyPath" => self.client_key_path = path(v),
            "tls.client.trustCertPath" => self.client_trust_cert_path = path(v),
            "tls.server.keyPassword" | "tls.client.keyPassword" => {
                if !v.is_empty() {
                    return Err(TlsError::Unsupported {
                        key: key.into(),
                        reason: "encrypted private keys are not supported; decrypt the key to a \
                                 PKCS#8 PEM file readable only by the broker \
                                 (`openssl pkcs8 -in enc.pem -out key.pem`)"
                            .into(),
                    });
                }
            }
            "tls.server.authClient" | "tls.client.authServer" => {
                if !boolean(key, v)? {
                    return Err(TlsError::Unsupported {
                        key: key.into(),
                        reason: "Apogee always verifies the peer's certificate against the trust \
                                 path; trusting any certificate is not offered"
                            .into(),
                    });
                }
            }
            "tls.test.mode.enable" => {
                if boolean(key, v)? {
                    return Err(TlsError::Unsupported {
                        key: key.into(),
                        reason: "there is no built-in test certificate; give tls.server.certPath \
                                 and tls.server.keyPath"
                            .into(),
                    });
                }
            }
            "tls.config.file" => self.config_file = path(v),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies a `tls.config.file` (RocketMQ's: `key=value` lines, `#` comments), every key a TLS key.
    pub fn apply_file(&mut self, file: &Path) -> Result<(), TlsError> {
        let read = |source| TlsError::ConfigFile {
            path: file.into(),
            source,
        };
        let mut text = String::new();
        Read::take(
            std::fs::File::open(file).map_err(read)?,
            CONFIG_FILE_MAX_BYTES + 1,
        )
        .read_to_string(&mut text)
        .map_err(read)?;
        if text.len() as u64 > CONFIG_FILE_MAX_BYTES {
            return Err(read(io::Error::other(format!(
                "larger than {CONFIG_FILE_MAX_BYTES} bytes"
            ))));
        }
        let where_ = |i: usize| format!("{}, line {}", file.display(), i + 1);
        for (i, line) in text.lines().map(str::trim).enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(bad(
                    "tls.config.file",
                    &where_(i),
                    "a line is not `key=value`",
                ));
            };
            let k = k.trim();
            if k == "tls.config.file" || !self.set(k, v)? {
                return Err(bad(
                    "tls.config.file",
                    &where_(i),
                    "only tls.* keys may be in it (and not tls.config.file)",
                ));
            }
        }
        Ok(())
    }

    /// These settings with the `tls.config.file`'s keys applied over them.
    fn resolved(&self) -> Result<Self, TlsError> {
        let mut s = self.clone();
        if let Some(file) = s.config_file.take() {
            s.apply_file(&file)?;
        }
        Ok(s)
    }

    /// The server side, loaded and checked; `None` when `tls.server.mode=disabled`.
    pub fn server(&self) -> Result<Option<TlsServer>, TlsError> {
        if self.config_file.is_some() {
            return self.resolved()?.server();
        }
        if self.server_mode == TlsMode::Disabled {
            return Ok(None);
        }
        let need = |p: &Option<PathBuf>, key: &str| {
            p.clone().ok_or_else(|| TlsError::Missing {
                what: format!("tls.server.mode={:?}", self.server_mode).to_lowercase(),
                reason: format!("needs {key}"),
            })
        };
        let certs = load_certs(&need(&self.server_cert_path, "tls.server.certPath")?)?;
        let key = load_key(&need(&self.server_key_path, "tls.server.keyPath")?)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls {
                what: "protocol versions",
                source,
            })?;
        let builder = match self.server_need_client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let trust = need(
                    &self.server_trust_cert_path,
                    "tls.server.trustCertPath (to verify client certificates)",
                )?;
                let roots = Arc::new(load_roots(&trust)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| TlsError::Verifier(e.to_string()))?,
                )
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|source| TlsError::Rustls {
                what: "server certificate and key",
                source,
            })?;
        Ok(Some(TlsServer {
            mode: self.server_mode,
            config: Arc::new(config),
        }))
    }

    /// The client side of this process's own connections; `None` unless `tls.enable=true`.
    pub fn client(&self) -> Result<Option<TlsClient>, TlsError> {
        if self.config_file.is_some() {
            return self.resolved()?.client();
        }
        if !self.client_enable {
            return Ok(None);
        }
        let trust = self
            .client_trust_cert_path
            .as_ref()
            .or(self.server_trust_cert_path.as_ref())
            .ok_or_else(|| TlsError::Missing {
                what: "tls.enable=true".into(),
                reason: "needs tls.client.trustCertPath (or tls.server.trustCertPath): the CA \
                         that signed the servers' certificates"
                    .into(),
            })?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls {
                what: "protocol versions",
                source,
            })?
            .with_root_certificates(load_roots(trust)?);
        let config = match (&self.client_cert_path, &self.client_key_path) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(load_certs(c)?, load_key(k)?)
                .map_err(|source| TlsError::Rustls {
                    what: "client certificate and key",
                    source,
                })?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(TlsError::Missing {
                    what: "tls.client.certPath and tls.client.keyPath".into(),
                    reason: "give both or neither".into(),
                })
            }
        };
        Ok(Some(TlsClient {
            config: Arc::new(config),
        }))
    }
}

/// The ring crypto provider (aws-lc would need cmake and nasm to build).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(what: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        what,
        path: path.into(),
        reason: e.to_string(),
    }
}

/// Every certificate of a PEM file (a chain, leaf first); at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("certificates", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificates", path, e))?;
    if certs.is_empty() {
        return Err(pem_error(
            "certificates",
            path,
            "no CERTIFICATE section in the file",
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1); an encrypted key is refused by name.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = std::fs::read(path).map_err(|e| pem_error("a private key", path, e))?;
    if text.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED") {
        return Err(pem_error(
            "a private key",
            path,
            "the key is encrypted, which is not supported (tls.server.keyPassword): decrypt it \
             with `openssl pkcs8 -in enc.pem -out key.pem`",
        ));
    }
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| pem_error("a private key", path, e))
}

/// The trust anchors of a PEM file of CA certificates.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error("CA certificates", path, e))?;
    }
    Ok(roots)
}

/// A port's TLS side: its mode and the loaded certificate. Cheap to clone; `Send`, so one load serves
/// every shard.
#[derive(Debug, Clone)]
pub struct TlsServer {
    pub mode: TlsMode,
    config: Arc<rustls::ServerConfig>,
}

/// Why an accepted connection is not served.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("a plain (non-TLS) connection on a port with tls.server.mode=enforcing; closed")]
    PlainRefused,
    #[error("closed before sending anything")]
    Closed,
    #[error("no TLS handshake within {HANDSHAKE_TIMEOUT_MS} ms")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
}

/// Sniffs and, for TLS, completes the handshake, all within [`HANDSHAKE_TIMEOUT_MS`]; `tls = None` serves
/// the stream as it is.
pub async fn accept(
    stream: TcpStream,
    tls: Option<&TlsServer>,
) -> Result<ServerStream, AcceptError> {
    let Some(tls) = tls else {
        return Ok(Either::Left(stream));
    };
    let work = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) => return Err(AcceptError::Closed),
            Ok(_) => {}
            Err(e) => return Err(AcceptError::Handshake(io::Error::other(e.to_string()))),
        }
        if first[0] != TLS_HANDSHAKE_RECORD_TYPE {
            return match tls.mode {
                TlsMode::Enforcing => Err(AcceptError::PlainRefused),
                _ => Ok(Either::Left(stream)),
            };
        }
        futures_rustls::TlsAcceptor::from(tls.config.clone())
            .accept(stream)
            .await
            .map(Either::Right)
            .map_err(AcceptError::Handshake)
    };
    let timer = glommio::timer::sleep(Duration::from_millis(HANDSHAKE_TIMEOUT_MS));
    match select(Box::pin(work), Box::pin(timer)).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(AcceptError::Timeout),
    }
}

/// The client side of this process's own TLS connections. Cheap to clone; `Send`.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
}

/// The name a server's certificate must carry when dialled at `addr` (`host:port`): its IP or DNS name.
pub fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{host}` is not a host name for TLS: {e}"),
        )
    })
}

/// Wraps a dialled connection to `addr` in TLS when `tls` is given (within [`HANDSHAKE_TIMEOUT_MS`]).
pub async fn connect(
    stream: TcpStream,
    tls: Option<&TlsClient>,
    addr: &str,
) -> io::Result<ClientStream> {
    let Some(tls) = tls else {
        return Ok(Either::Left(stream));
    };
    let name = server_name(addr)?;
    let handshake = futures_rustls::TlsConnector::from(tls.config.clone()).connect(name, stream);
    let timer = glommio::timer::sleep(Duration::from_millis(HANDSHAKE_TIMEOUT_MS));
    match select(handshake, Box::pin(timer)).await {
        Either::Left((r, _)) => r
            .map(Either::Right)
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {addr}: {e}"))),
        Either::Right(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no TLS handshake with {addr} within {HANDSHAKE_TIMEOUT_MS} ms"),
        )),
    }
}

/// Writes all of `bytes`, then flushes. Over TLS a write that finds the socket full leaves encrypted bytes
/// in the session, which only a flush (or a later write) sends: without it a last frame could wait forever.
pub async fn send_all<W: futures::io::AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> io::Result<()> {
    use futures::io::AsyncWriteExt;
    w.write_all(bytes).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_unsupported_ones_are_refused_by_name() {
        let mut s = TlsSettings::default();
        assert!(s.set("tls.server.mode", "permissive").unwrap());
        assert_eq!(s.server_mode, TlsMode::Permissive);
        assert!(s.set("tls.server.need.client.auth", "require").unwrap());
        assert_eq!(s.server_need_client_auth, ClientAuth::Require);
        assert!(!s.set("brokerName", "x").unwrap());
        assert!(s.set("tls.server.mode", "strict").is_err());
        let e = s.set("tls.server.keyPassword", "secret").unwrap_err();
        assert!(e.to_string().contains("tls.server.keyPassword"), "{e}");
        assert!(s.set("tls.server.keyPassword", "").unwrap());
        assert!(s.set("tls.test.mode.enable", "true").is_err());
        assert!(s.set("tls.client.authServer", "false").is_err());
        assert!(s.set("tls.client.authServer", "true").unwrap());
    }

    #[test]
    fn enforcing_without_a_certificate_is_refused_at_start() {
        let mut s = TlsSettings::default();
        s.set("tls.server.mode", "enforcing").unwrap();
        let e = s.server().unwrap_err();
        assert!(e.to_string().contains("tls.server.certPath"), "{e}");
    }

    #[test]
    fn a_config_file_is_read_only_when_loaded_and_its_keys_win() {
        let dir = std::env::temp_dir().join(format!("apogee-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tls.properties");
        std::fs::write(&file, "# c\ntls.server.mode=enforcing\n").unwrap();
        let mut s = TlsSettings::default();
        assert!(s.set("tls.config.file", file.to_str().unwrap()).unwrap());
        assert_eq!(s.server_mode, TlsMode::Disabled, "read before loading");
        // The file's enforcing (without a certificate) is what loading sees.
        let e = s.server().unwrap_err();
        assert!(e.to_string().contains("tls.server.certPath"), "{e}");
        std::fs::write(&file, "tls.server.mode=enforcing\nbrokerName=secret-line\n").unwrap();
        let e = s.server().unwrap_err().to_string();
        assert!(e.contains("line 2") && !e.contains("secret-line"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn server_names_come_from_the_dialled_host() {
        assert!(matches!(
            server_name("127.0.0.1:10911").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("broker-a.example:10911").unwrap(),
            ServerName::DnsName(_)
        ));
    }
}
