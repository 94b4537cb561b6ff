//! Temporal over TLS: HAProxy in front of the dev server terminates TLS
//! (client certificates verified against the test's CA, gRPC over h2 to the
//! dev server), and `worker`, `serve` and the `deployment` CLI reach
//! Temporal only through it, with `TEMPORAL_TLS_CA`, `TEMPORAL_TLS_CERT`,
//! `TEMPORAL_TLS_KEY`, `TEMPORAL_TLS_SERVER_NAME` and `TEMPORAL_API_KEY`.
//! Every certificate is made here (rcgen), nothing comes from the machine.
//!
//! A booking is CONFIRMED through the mTLS frontend; a client without its
//! certificate, one trusting another CA, and one without the API key are
//! refused; bad TLS settings stop a process at start naming the setting.

#[path = "support/booking.rs"]
mod booking;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use flightctl::config::Settings;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use support::procs::{self, Proc};
use support::{FL101, TestApp, eventually, tools};

use booking::*;

/// The name on the server's certificate (and nothing else: no IP address),
/// so a client that connects to 127.0.0.1 verifies it only through
/// `TEMPORAL_TLS_SERVER_NAME`.
const SERVER_NAME: &str = "temporal.flightctl.test";
/// The API key the second frontend requires as `Authorization: Bearer`
/// (test-only).
const API_KEY: &str = "test-api-key-6f1c2a9e";
/// How long one CLI command may take.
const CLI_WITHIN: Duration = Duration::from_secs(60);

/// The test's PEM files: a CA, the server's certificate signed by it (cert
/// and key in one file, as HAProxy takes it), a client certificate signed
/// by it, and a second CA with a client certificate of its own.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn generate() -> Pki {
        let dir = procs::temp_dir("temporal-tls");
        let (ca_pem, issuer) = ca("flightctl test CA");
        let (other_pem, other) = ca("another CA");
        let server = leaf(&issuer, SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth);
        let client = leaf(&issuer, "flightctl", ExtendedKeyUsagePurpose::ClientAuth);
        write(&dir.join("ca.pem"), &ca_pem);
        write(&dir.join("other-ca.pem"), &other_pem);
        write(
            &dir.join("server.pem"),
            &format!("{}{}", server.0, server.1),
        );
        write(&dir.join("client.pem"), &client.0);
        write(&dir.join("client.key"), &client.1);
        let stranger = leaf(&other, "flightctl", ExtendedKeyUsagePurpose::ClientAuth);
        write(&dir.join("stranger.pem"), &stranger.0);
        write(&dir.join("stranger.key"), &stranger.1);
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A self-signed CA: its certificate (PEM) and the issuer that signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("a CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `name` signed by `issuer`: (certificate PEM, key PEM).
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("a certificate");
    (cert.pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("a PEM file");
}

/// HAProxy in front of the dev server's gRPC port: `mtls` requires a client
/// certificate of the test's CA; `api_key` requires only the bearer key.
struct Lb {
    _proc: Proc,
    mtls: u16,
    api_key: u16,
    log: PathBuf,
}

impl Lb {
    fn start(pki: &Pki, temporal_port: u16) -> Lb {
        let bin = procs::find_bin("haproxy", "HAPROXY_BIN", &["/usr/sbin/haproxy"]);
        let (mtls, api_key) = (procs::free_port(), procs::free_port());
        let config = format!(
            r#"global
    log stderr format short local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    # Workers long-poll for about a minute.
    timeout client 5m
    timeout server 5m

frontend mtls
    bind 127.0.0.1:{mtls} ssl crt {server} ca-file {ca} verify required alpn h2
    default_backend temporal

frontend api_key
    bind 127.0.0.1:{api_key} ssl crt {server} alpn h2
    http-request deny deny_status 401 unless {{ req.hdr(authorization) -m str "Bearer {API_KEY}" }}
    default_backend temporal

backend temporal
    server dev 127.0.0.1:{temporal_port} proto h2
"#,
            server = pki.path("server.pem"),
            ca = pki.path("ca.pem"),
        );
        let file = pki.dir.join("haproxy.cfg");
        write(&file, &config);
        let log = pki.dir.join("haproxy.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-db")
            .arg("-f")
            .arg(&file)
            .env_clear()
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"));
        let proc = Proc::spawn("haproxy", cmd, libc::SIGTERM);
        procs::wait_for_port("haproxy", mtls, Duration::from_secs(10));
        procs::wait_for_port("haproxy", api_key, Duration::from_secs(10));
        Lb {
            _proc: proc,
            mtls,
            api_key,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The environment of a client of the mTLS frontend, with its certificate.
    fn mtls_env(&self, pki: &Pki) -> Vec<(&'static str, String)> {
        vec![
            ("TEMPORAL_HOST", format!("127.0.0.1:{}", self.mtls)),
            ("TEMPORAL_TLS_SERVER_NAME", SERVER_NAME.into()),
            ("TEMPORAL_TLS_CA", pki.path("ca.pem")),
            ("TEMPORAL_TLS_CERT", pki.path("client.pem")),
            ("TEMPORAL_TLS_KEY", pki.path("client.key")),
        ]
    }
}

/// A process's environment beyond its settings'.
type Env = Vec<(&'static str, String)>;

/// `env` with the entries named in `remove` left out and `set` added.
fn changed(
    env: &[(&'static str, String)],
    remove: &[&str],
    set: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut out: Vec<_> = (env.iter())
        .filter(|(k, _)| !remove.contains(k) && !set.iter().any(|(s, _)| s == k))
        .cloned()
        .collect();
    out.extend(set.iter().cloned());
    out
}

/// `flightctl ARGS` configured like `settings`, plus `env`.
fn cli(settings: &Settings, env: &[(&'static str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightctl"));
    cmd.args(args)
        .current_dir(support::repo_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(support::worker_env(settings))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    tools::run_bounded(&format!("flightctl {args:?}"), cmd, CLI_WITHIN)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn as_str<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Settings for a test of its own database, queue and deployment; the dev
/// server is the shared one (reached by these tests only through HAProxy).
async fn settings() -> Settings {
    let mut s = booking::settings(Duration::from_secs(60)).await;
    s.temporal.host = "127.0.0.1:1".into();
    s
}

#[tokio::test]
async fn a_booking_is_confirmed_through_mutual_tls() {
    let pki = Pki::generate();
    let lb = Lb::start(&pki, support::servers::temporal().port);
    let settings = settings().await;
    let env = lb.mtls_env(&pki);
    let pool = support::prepare_database(&settings).await;

    let log_dir = procs::temp_dir("temporal-tls-logs");
    let worker_log = log_dir.join("worker.log");
    let _worker = support::worker_process_with(&settings, &env, &worker_log);
    let build = settings.worker.build_id.clone();
    let out = cli(
        &settings,
        &env,
        &[
            "deployment",
            "set-current",
            "--build-id",
            &build,
            "--wait",
            "60s",
        ],
    );
    assert!(
        out.status.success(),
        "set-current through mTLS: {}\nworker log:\n{}\nhaproxy log:\n{}",
        text(&out),
        std::fs::read_to_string(&worker_log).unwrap_or_default(),
        lb.log()
    );

    let (_serve, port, serve_log) = support::serve_process(&settings, &as_str(&env));
    let app = TestApp::served_at(settings, format!("http://127.0.0.1:{port}"), pool).await;
    eventually(
        "serve ready through mTLS",
        Duration::from_secs(60),
        || async {
            let (code, body) = app.get("/health").await;
            (code == 200).then_some(body)
        },
    )
    .await;

    let order = create_ok(&app, FL101, &["1A"]).await;
    let (code, body) = pay(&app, &order, "00000").await;
    assert!((200..300).contains(&code), "{code} {body}");
    let status = wait_for(&app, &order, "CONFIRMED", LONG).await;
    assert_eq!(status["seats"], serde_json::json!(["1A"]), "{status}");

    // Nothing but HAProxy's address was given: the requests went through it.
    let haproxy = lb.log();
    assert!(
        (haproxy.lines()).any(|l| l.contains(" mtls~ temporal/dev ")),
        "HAProxy logged no request of its mTLS frontend:\n{haproxy}"
    );
    let serve_log = std::fs::read_to_string(serve_log).unwrap_or_default();
    assert!(
        !serve_log.contains("-----BEGIN"),
        "key material in serve's log:\n{serve_log}"
    );
}

#[tokio::test]
async fn a_client_without_its_certificate_or_trusting_another_ca_is_refused() {
    let pki = Pki::generate();
    let lb = Lb::start(&pki, support::servers::temporal().port);
    let settings = settings().await;
    let env = lb.mtls_env(&pki);

    // The certificate and key given: the CLI gets its answer.
    let out = cli(&settings, &env, &["deployment", "show"]);
    assert!(out.status.success(), "with its certificate: {}", text(&out));

    // No client certificate: HAProxy ends the handshake.
    let bare = changed(&env, &["TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"], &[]);
    let out = cli(&settings, &bare, &["deployment", "show"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    // TLS 1.3: the server refuses after the client's side of the handshake,
    // so the client sees its alert or only the connection closing.
    assert!(
        stderr.contains(&format!("temporal at 127.0.0.1:{} over tls", lb.mtls))
            && stderr.contains("temporal_tls_cert"),
        "the refusal names the server and what to check: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // serve without its certificate: up, and its health says Temporal is not.
    let (_serve, port, _log) = support::serve_process(&settings, &as_str(&bare));
    let (code, body) = support::TestApp::served_at(
        settings.clone(),
        format!("http://127.0.0.1:{port}"),
        support::prepare_database(&settings).await,
    )
    .await
    .get("/health")
    .await;
    assert_eq!(code, 503, "{body}");
    assert_ne!(body["checks"]["temporal"], "ok", "{body}");

    // Trusting another CA: the client refuses the server's certificate.
    let other = changed(&env, &[], &[("TEMPORAL_TLS_CA", pki.path("other-ca.pem"))]);
    let out = cli(&settings, &other, &["deployment", "show"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("certificate") && stderr.contains("UnknownIssuer"),
        "the refusal says the server's certificate is not trusted: {stderr}"
    );

    // A client certificate another CA signed: HAProxy refuses it.
    let stranger = changed(
        &env,
        &[],
        &[
            ("TEMPORAL_TLS_CERT", pki.path("stranger.pem")),
            ("TEMPORAL_TLS_KEY", pki.path("stranger.key")),
        ],
    );
    let out = cli(&settings, &stranger, &["deployment", "show"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Its alert (UnknownCA) or only the connection closing, as above.
    assert!(
        stderr.contains("TEMPORAL_TLS_CERT"),
        "names what to check: {stderr}"
    );

    // The server's name not given: the certificate names another host.
    let unnamed = changed(&env, &["TEMPORAL_TLS_SERVER_NAME"], &[]);
    let out = cli(&settings, &unnamed, &["deployment", "show"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
}

#[tokio::test]
async fn an_api_key_is_sent_as_the_bearer_and_never_shown() {
    let pki = Pki::generate();
    let lb = Lb::start(&pki, support::servers::temporal().port);
    let settings = settings().await;
    let env = vec![
        ("TEMPORAL_HOST", format!("127.0.0.1:{}", lb.api_key)),
        ("TEMPORAL_TLS_SERVER_NAME", SERVER_NAME.to_string()),
        ("TEMPORAL_TLS_CA", pki.path("ca.pem")),
        ("TEMPORAL_API_KEY", API_KEY.to_string()),
        ("RUST_LOG", "debug".to_string()),
    ];
    let out = cli(&settings, &env, &["deployment", "show"]);
    assert!(out.status.success(), "with the API key: {}", text(&out));
    assert!(!text(&out).contains(API_KEY), "{}", text(&out));

    let wrong = changed(&env, &[], &[("TEMPORAL_API_KEY", "not-the-key".into())]);
    let out = cli(&settings, &wrong, &["deployment", "show"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("not-the-key"), "{}", text(&out));

    let none = changed(&env, &["TEMPORAL_API_KEY"], &[]);
    let out = cli(&settings, &none, &["deployment", "show"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[tokio::test]
async fn bad_tls_settings_stop_every_command_at_start_naming_the_setting() {
    let pki = Pki::generate();
    // Nothing is reached: each command stops before it connects anywhere.
    let settings = support::base_settings();
    let env = vec![
        ("TEMPORAL_HOST", "127.0.0.1:1".to_string()),
        ("TEMPORAL_TLS_CA", pki.path("ca.pem")),
        ("TEMPORAL_TLS_CERT", pki.path("client.pem")),
        ("TEMPORAL_TLS_KEY", pki.path("client.key")),
    ];
    let not_pem = pki.dir.join("not.pem");
    write(&not_pem, "this is not a certificate\n");
    let not_pem = not_pem.display().to_string();
    let missing = pki.dir.join("missing.pem").display().to_string();
    let missing_named = ["TEMPORAL_TLS_CA", missing.as_str()];
    let cases: Vec<(Env, &[&str])> = vec![
        (
            changed(&env, &["TEMPORAL_TLS_KEY"], &[]),
            &["TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"],
        ),
        (
            changed(&env, &["TEMPORAL_TLS_CERT"], &[]),
            &["TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"],
        ),
        (
            changed(&env, &[], &[("TEMPORAL_TLS_CA", missing.clone())]),
            &missing_named,
        ),
        (
            changed(&env, &[], &[("TEMPORAL_TLS_CA", not_pem.clone())]),
            &["TEMPORAL_TLS_CA", "PEM"],
        ),
        (
            changed(&env, &[], &[("TEMPORAL_TLS_CERT", not_pem.clone())]),
            &["TEMPORAL_TLS_CERT", "PEM"],
        ),
        (
            // A certificate where the key belongs.
            changed(&env, &[], &[("TEMPORAL_TLS_KEY", pki.path("client.pem"))]),
            &["TEMPORAL_TLS_KEY", "private key"],
        ),
    ];
    for (env, named) in &cases {
        for args in [&["worker"][..], &["serve"], &["deployment", "show"]] {
            let out = cli(&settings, env, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{args:?} {env:?}: {}",
                text(&out)
            );
            for name in *named {
                assert!(stderr.contains(name), "{args:?} names {name}: {stderr}");
            }
            assert!(!stderr.contains("-----BEGIN"), "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}
