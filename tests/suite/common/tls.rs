//! TLS test helpers: a CA, a server certificate and a client certificate made at run time with rcgen (no
//! committed keys), the `-o tls.*` flags that use them, and raw probes of a port (a plain frame, an
//! `openssl s_client` handshake).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// PEM files in a test's temporary folder.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, all signed by it.
    pub fn generate(dir: &Path) -> Self {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "apogee test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let server =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
        let mut client = rcgen::CertificateParams::new(vec!["apogee-test-client".into()]).unwrap();
        client
            .distinguished_name
            .push(rcgen::DnType::CommonName, "apogee-test-client");
        let client_key = rcgen::KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
        let write = |name: &str, pem: String| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        Self {
            ca: write("ca.pem", ca_cert.pem()),
            server_cert: write("server.pem", server_cert.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
        }
    }

    /// `-o` flags: serve with `tls.server.mode=mode` and this server certificate, and dial TLS (trusting
    /// the CA) to name servers and masters.
    pub fn server_flags(&self, mode: &str) -> Vec<String> {
        let mut out = Vec::new();
        for kv in [
            format!("tls.server.mode={mode}"),
            format!("tls.server.certPath={}", self.server_cert.display()),
            format!("tls.server.keyPath={}", self.server_key.display()),
            format!("tls.server.trustCertPath={}", self.ca.display()),
            "tls.enable=true".to_string(),
        ] {
            out.push("-o".to_string());
            out.push(kv);
        }
        out
    }

    /// A `tls.config.file` (RocketMQ's `key=value` lines) with the settings of [`Pki::server_flags`].
    pub fn config_file(&self, dir: &Path, mode: &str) -> PathBuf {
        let text: Vec<String> = self
            .server_flags(mode)
            .into_iter()
            .filter(|f| f != "-o")
            .collect();
        let path = dir.join(format!("tls-{mode}.properties"));
        std::fs::write(&path, format!("# made by the test\n{}\n", text.join("\n"))).unwrap();
        path
    }

    /// The native client's TLS settings: trust the CA, no client certificate.
    pub fn client(&self) -> apogee_client::TlsConfig {
        apogee_client::TlsOptions::ca_file(&self.ca)
            .build()
            .unwrap()
    }

    /// The native client's TLS settings with the client certificate (mutual TLS).
    pub fn client_with_cert(&self) -> apogee_client::TlsConfig {
        apogee_client::TlsOptions::ca_file(&self.ca)
            .client_cert_files(&self.client_cert, &self.client_key)
            .build()
            .unwrap()
    }
}

/// What a port did with one plain RocketMQ request frame.
#[derive(Debug, PartialEq, Eq)]
pub enum PlainProbe {
    /// It answered with a frame of this many bytes.
    Answered(usize),
    /// It closed the connection without answering.
    Closed,
}

/// Sends one plain GET_BROKER_CLUSTER_INFO frame (answered by name servers and brokers alike) and waits
/// up to 10 s for an answer or the close.
pub fn plain_frame(addr: &str) -> PlainProbe {
    let mut out = bytes::BytesMut::new();
    let req = apogee_net::RemotingCommand::request(
        apogee_net::codes::RequestCode::GetBrokerClusterInfo as i32,
        7,
    );
    apogee_net::frame::encode(&req, &mut out).unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The write may already fail if the server closed first.
    if s.write_all(&out).is_err() {
        return PlainProbe::Closed;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() >= 4 {
                    let len = u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
                    if got.len() >= 4 + len {
                        return PlainProbe::Answered(got.len());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading {addr}: {e}"),
        }
    }
    assert!(
        got.is_empty(),
        "{addr} sent {} bytes that are not a frame",
        got.len()
    );
    PlainProbe::Closed
}

/// `openssl s_client -connect addr -CAfile ca`: `Some(true)` when the handshake completed and the
/// certificate verified, `Some(false)` when not, `None` (with the reason printed) when there is no openssl.
pub fn openssl_handshake(addr: &str, ca: &Path) -> Option<bool> {
    let child = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-CAfile"])
        .arg(ca)
        .args(["-verify_return_error", "-brief"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipping the openssl s_client check: cannot run openssl: {e}");
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl s_client to {addr} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    eprintln!("openssl s_client {addr}: {status}\n{text}");
    Some(status.success() && text.contains("Verification: OK"))
}

/// A name server process of its own, with `-o` flags (the TLS keys).
pub fn nameserver_with(flags: &[String]) -> (super::Process, String) {
    let port = super::free_ports(3) - 1;
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["nameserver".to_string(), "--listen".into(), addr.clone()];
    args.extend(flags.iter().cloned());
    (super::Process::spawn(&args, "name server started"), addr)
}
