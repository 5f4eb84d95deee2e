//! TLS for the client's connections (tokio-rustls, ring provider; no OpenSSL).
//!
//! A [`TlsConfig`] is loaded once, when it is built ([`TlsOptions::build`]): a missing or bad CA or client
//! certificate is an error there, not at the first connection. Give it to a producer, consumer or admin with
//! their `with_tls`; every connection that client opens (name servers and brokers) is then TLS. The server's
//! certificate is always verified against the CA, for the name the server is dialled by (the host of
//! `host:port`, an IP or a DNS name) unless [`TlsOptions::server_name`] names one for every server.
//!
//! With a client certificate ([`TlsOptions::client_cert_files`]) the client can reach servers with
//! `tls.server.need.client.auth=require` (mutual TLS).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;

use crate::error::ClientError;

/// PEM data: a file, or the bytes themselves.
#[derive(Debug, Clone)]
pub enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Pem {
    fn read(&self) -> Result<Vec<u8>, ClientError> {
        match self {
            Self::Bytes(b) => Ok(b.clone()),
            Self::File(p) => std::fs::read(p).map_err(|source| ClientError::Io {
                path: p.display().to_string(),
                source,
            }),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Bytes(_) => "PEM bytes".into(),
            Self::File(p) => p.display().to_string(),
        }
    }
}

/// What a [`TlsConfig`] is made of.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The CA certificate(s) that signed the servers' certificates.
    pub ca: Pem,
    /// A client certificate (chain) and its private key, for servers that require one.
    pub client_cert: Option<(Pem, Pem)>,
    /// The name every server's certificate must carry; default: the host each is dialled by.
    pub server_name: Option<String>,
}

impl TlsOptions {
    pub fn ca_file(path: impl AsRef<Path>) -> Self {
        Self::ca(Pem::File(path.as_ref().into()))
    }

    pub fn ca(ca: Pem) -> Self {
        Self {
            ca,
            client_cert: None,
            server_name: None,
        }
    }

    pub fn client_cert_files(self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.client_cert(
            Pem::File(cert.as_ref().into()),
            Pem::File(key.as_ref().into()),
        )
    }

    pub fn client_cert(mut self, cert: Pem, key: Pem) -> Self {
        self.client_cert = Some((cert, key));
        self
    }

    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Loads and checks everything.
    pub fn build(&self) -> Result<TlsConfig, ClientError> {
        let bad = |what: &str, pem: &Pem, reason: String| ClientError::Tls {
            addr: pem.name(),
            reason: format!("{what}: {reason}"),
        };
        let certs = |pem: &Pem| -> Result<Vec<CertificateDer<'static>>, ClientError> {
            let data = pem.read()?;
            let certs = CertificateDer::pem_slice_iter(&data)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("certificates", pem, e.to_string()))?;
            if certs.is_empty() {
                return Err(bad(
                    "certificates",
                    pem,
                    "no CERTIFICATE section".to_string(),
                ));
            }
            Ok(certs)
        };
        let mut roots = RootCertStore::empty();
        for c in certs(&self.ca)? {
            roots
                .add(c)
                .map_err(|e| bad("CA certificate", &self.ca, e.to_string()))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocol versions", &self.ca, e.to_string()))?
        .with_root_certificates(roots);
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let key_data = key.read()?;
                let key_der = PrivateKeyDer::from_pem_slice(&key_data)
                    .map_err(|e| bad("private key", key, e.to_string()))?;
                builder
                    .with_client_auth_cert(certs(cert)?, key_der)
                    .map_err(|e| bad("client certificate and key", cert, e.to_string()))?
            }
        };
        let server_name = match &self.server_name {
            None => None,
            Some(n) => Some(
                ServerName::try_from(n.clone()).map_err(|e| ClientError::Tls {
                    addr: n.clone(),
                    reason: format!("not a server name: {e}"),
                })?,
            ),
        };
        Ok(TlsConfig {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// A loaded TLS client configuration; cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) connector: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// The name `addr`'s certificate must carry.
    pub(crate) fn name_for(&self, addr: &str) -> Result<ServerName<'static>, ClientError> {
        if let Some(n) = &self.server_name {
            return Ok(n.clone());
        }
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).map_err(|e| ClientError::Tls {
            addr: addr.into(),
            reason: format!("`{host}` is not a server name: {e}"),
        })
    }
}
