//! TLS settings the process cannot serve stop it before it listens, with one line naming the key or file:
//! enforcing without a certificate, a missing certificate file, an encrypted key (refused, not ignored),
//! a bad mode, and a name server `-o` key that is not a TLS key.

use std::process::Command;

fn apogee(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_refused(args: &[&str], names: &[&str]) {
    let (code, stderr) = apogee(args);
    assert_eq!(code, Some(1), "{args:?}: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("apogee: "), "{args:?}: {stderr}");
    assert!(
        !stderr.contains("apogee started"),
        "{args:?} started: {stderr}"
    );
    for n in names {
        assert!(last.contains(n), "`{n}` not named in: {last}");
    }
}

#[test]
fn tls_settings_that_cannot_be_served_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    fn broker<'a>(store: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["broker", "--store", store, "--namesrv-addr", "127.0.0.1:1"];
        a.extend_from_slice(extra);
        a
    }
    assert_refused(
        &broker(store, &["-o", "tls.server.mode=enforcing"]),
        &["tls.server.certPath"],
    );
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    assert_refused(
        &broker(
            store,
            &[
                "-o",
                "tls.server.mode=permissive",
                "-o",
                &format!("tls.server.certPath={missing}"),
                "-o",
                &format!("tls.server.keyPath={missing}"),
            ],
        ),
        &[missing],
    );
    assert_refused(
        &broker(store, &["-o", "tls.server.keyPassword=secret"]),
        &["tls.server.keyPassword", "not supported"],
    );
    // An encrypted PKCS#8 key is named as such, not reported as "no key found".
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    let enc_path = dir.path().join("enc.key");
    std::fs::write(
        &enc_path,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_refused(
        &broker(
            store,
            &[
                "-o",
                "tls.server.mode=enforcing",
                "-o",
                &format!("tls.server.certPath={}", cert_path.display()),
                "-o",
                &format!("tls.server.keyPath={}", enc_path.display()),
            ],
        ),
        &["encrypted", "enc.key"],
    );
    assert_refused(
        &broker(store, &["-o", "tls.server.mode=strict"]),
        &["tls.server.mode", "strict"],
    );
    assert_refused(
        &[
            "nameserver",
            "--listen",
            "127.0.0.1:1",
            "-o",
            "brokerName=x",
        ],
        &["brokerName", "tls.*"],
    );
    assert_refused(
        &[
            "nameserver",
            "--listen",
            "127.0.0.1:1",
            "-o",
            "tls.server.mode=enforcing",
        ],
        &["tls.server.certPath"],
    );
}
