//! Secrets and listeners against a hostile client (issue "Abuse-proof",
//! item 6 and parts of 5 and 8), on the real stack:
//!
//! - outside development `serve` refuses a payload key that ships in the
//!   repository, or one that is not random, naming the setting and not
//!   printing the key;
//! - the payload codec answers only an operator's session or
//!   `Authorization: Bearer <CODEC_TOKEN>`, on every listener;
//! - answers with order, booking or ops data are `Cache-Control: no-store`,
//!   errors included;
//! - a Temporal outage is a 503 whose body is a generic sentence, never the
//!   client's error text;
//! - `/metrics` and `/api/config` are served on the admin listener, and
//!   `/metrics` not on the public one unless `PUBLIC_METRICS` says so;
//! - behind HAProxy, a client cannot claim `X-Forwarded-Proto` itself: the
//!   balancer sets it, so over TLS the session cookie is Secure and the
//!   console's Origin check compares with `https://`.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use flightctl::domain::FlightId;
use flightctl::ops::{Password, hash_password};
use flightctl::store::{ops::put_operator, orders};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use support::procs::{self, Proc};
use support::shape::Shape;
use support::{FL101, TestApp};
use uuid::Uuid;

/// The payload key compose.yaml ships for its development stack: public,
/// so refused outside development.
const COMPOSE_KEY: &str = "DdETYdFSeu1cCmRA4WzFgSiO6Sir0iWdZWwgMGDUkpo=";
/// The codec token of the `serve` processes here (CODEC_TOKEN).
const TOKEN: &str = "abuse-secrets-codec-token-0123456789abcdef";
const PASSWORD: &str = "correct horse battery staple";
/// A `serve` that refuses its settings exits at once; one that does not is
/// stopped after this (and the test fails).
const EXIT_WITHIN: Duration = Duration::from_secs(20);

fn stderr_file(path: &std::path::Path) -> std::fs::File {
    std::fs::File::create(path).expect("a log file")
}

/// `flightctl serve` configured like `settings`, plus `env`: the process,
/// its public and admin ports, and its log file.
fn serve(
    settings: &flightctl::config::Settings,
    env: &[(&str, &str)],
) -> (Proc, u16, u16, std::path::PathBuf) {
    let (port, admin) = (procs::free_port(), procs::free_port());
    let log = procs::temp_dir("abuse-secrets").join("serve.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightctl"));
    cmd.arg("serve")
        .current_dir(support::repo_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(support::worker_env(settings))
        .env("SERVER_PORT", port.to_string())
        .env("ADMIN_HOST", "127.0.0.1")
        .env("ADMIN_PORT", admin.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr_file(&log));
    (Proc::spawn("serve", cmd, libc::SIGTERM), port, admin, log)
}

/// `serve` with `env`, expected to refuse to start: its exit status (None
/// when it was still running after [`EXIT_WITHIN`]) and what it wrote.
async fn refused_serve(env: &[(&str, &str)]) -> (Option<std::process::ExitStatus>, String) {
    let settings = support::isolated_settings(false).await;
    let (mut proc, _, _, log) = serve(&settings, env);
    let exit = proc.wait_exit(EXIT_WITHIN);
    drop(proc);
    (exit, std::fs::read_to_string(log).unwrap_or_default())
}

fn assert_refused(what: &str, exit: Option<std::process::ExitStatus>, log: &str, key: &str) {
    println!("{what}: exit {exit:?}, said: {}", log.trim());
    let exit = exit.unwrap_or_else(|| panic!("{what}: serve started; log:\n{log}"));
    assert!(!exit.success(), "{what}: serve exited 0:\n{log}");
    assert!(
        log.contains("PAYLOAD_ENCRYPTION_KEY"),
        "{what}: the refusal names the setting:\n{log}"
    );
    assert!(!log.contains(key), "{what}: the key is printed:\n{log}");
}

#[tokio::test]
async fn the_payload_key_shipped_in_compose_is_refused_in_production() {
    let (exit, log) = refused_serve(&[
        ("FLIGHTCTL_ENV", "production"),
        ("PAYLOAD_ENCRYPTION_KEY", COMPOSE_KEY),
        ("PAYLOAD_ENCRYPTION_KEY_ID", "dev"),
    ])
    .await;
    assert_refused("the compose key", exit, &log, COMPOSE_KEY);
}

#[tokio::test]
async fn a_payload_key_that_is_not_random_is_refused_outside_development() {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let zeros = b64(&[0u8; 32]);
    let text = b64(b"my-payload-key-is-a-sentence-123");
    for (what, key) in [("32 zero bytes", zeros), ("32 characters of text", text)] {
        let (exit, log) = refused_serve(&[("PAYLOAD_ENCRYPTION_KEY", key.as_str())]).await;
        assert_refused(what, exit, &log, &key);
    }
}

#[tokio::test]
async fn in_development_the_shipped_key_still_runs_the_stack() {
    let settings = support::isolated_settings(false).await;
    let (mut proc, port, _, log) = serve(
        &settings,
        &[
            ("FLIGHTCTL_ENV", "development"),
            ("PAYLOAD_ENCRYPTION_KEY", COMPOSE_KEY),
        ],
    );
    procs::wait_for_port("serve", port, EXIT_WITHIN);
    assert!(
        proc.is_running(),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A client with its own cookie jar.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POST one plain payload to `url` with `auth` (an Authorization value) and
/// `origin`: the answer's status, headers and body.
async fn decode(
    http: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    origin: Option<&str>,
) -> (u16, HeaderMap, Value) {
    let body =
        json!({"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "MQ=="}]});
    let mut req = http.post(url).json(&body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let resp = req.send().await.expect("POST /codec/decode");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or_default())
}

#[tokio::test]
async fn the_codec_needs_a_session_or_the_codec_token_on_every_listener() {
    let settings = support::isolated_settings(false).await;
    let pool = support::prepare_database(&settings).await;
    let hash = hash_password(&Password::new(PASSWORD)).unwrap();
    put_operator(&pool, "ada", &hash).await.unwrap();
    // Development, so the public listener may serve the codec too: the
    // codec's credentials hold there as well.
    let (_serve, port, admin, _log) = serve(
        &settings,
        &[
            ("FLIGHTCTL_ENV", "development"),
            ("CODEC_ON_PUBLIC_LISTENER", "true"),
            ("CODEC_TOKEN", TOKEN),
            ("CODEC_CORS_ORIGINS", "http://ui.example"),
        ],
    );
    procs::wait_for_port("serve", port, EXIT_WITHIN);
    procs::wait_for_port("serve's admin listener", admin, EXIT_WITHIN);
    let listeners = [
        format!("http://127.0.0.1:{admin}/codec/decode"),
        format!("http://127.0.0.1:{port}/codec/decode"),
    ];
    let stranger = client();
    let bearer = format!("Bearer {TOKEN}");
    for url in &listeners {
        for auth in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
            let (status, _, body) = decode(&stranger, url, auth, None).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some("UNAUTHENTICATED")),
                "{url} with {auth:?}: {body}"
            );
            assert!(body["message"].is_string(), "{body}");
        }
        let (status, _, body) = decode(&stranger, url, Some(&bearer), None).await;
        assert_eq!(status, 200, "{url} with the token: {body}");
        assert_eq!(body["payloads"][0]["data"], "MQ==", "{body}");
        // Encode too: it proves nothing secret, but it is the codec.
        let encode = url.replace("/decode", "/encode");
        let (status, _, body) = decode(&stranger, &encode, None, None).await;
        assert_eq!(status, 401, "{encode}: {body}");
        let (status, _, body) = decode(&stranger, &encode, Some(&bearer), None).await;
        assert_eq!(status, 200, "{encode} with the token: {body}");
    }

    // An operator signed in on the public listener: the browser sends the
    // session cookie to the codec (the Temporal UI's "include credentials").
    let operator = client();
    let signed_in = operator
        .post(format!("http://127.0.0.1:{port}/api/ops/session"))
        .json(&json!({"name": "ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 200);
    for url in &listeners {
        let (status, headers, body) = decode(&operator, url, None, Some("http://ui.example")).await;
        assert_eq!(status, 200, "{url} with a session: {body}");
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            header("access-control-allow-origin"),
            Some("http://ui.example")
        );
        assert_eq!(header("access-control-allow-credentials"), Some("true"));
        // The preflight carries no credentials and is answered as CORS asks.
        let preflight = stranger
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", "http://ui.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status().as_u16(), 204, "{url}");
        let allowed = preflight.headers();
        assert_eq!(
            allowed
                .get("access-control-allow-credentials")
                .and_then(|v| v.to_str().ok()),
            Some("true"),
            "{url}"
        );
    }
    // Signed out, the cookie opens nothing any more.
    let out = operator
        .delete(format!("http://127.0.0.1:{port}/api/ops/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    let (status, _, body) = decode(&operator, &listeners[0], None, None).await;
    assert_eq!(status, 401, "{body}");
}

fn cache_control(headers: &HeaderMap) -> Option<String> {
    headers
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn answers_with_order_booking_or_ops_data_are_not_stored() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let order = Uuid::new_v4();
    let flight: FlightId = FL101.parse().unwrap();
    let row = support::order_row(order.into(), flight, &["3C"]);
    orders::save(&app.pool, &row, None).await.unwrap();
    let hash = hash_password(&Password::new(PASSWORD)).unwrap();
    put_operator(&app.pool, "ada", &hash).await.unwrap();
    let operator = client();
    let (unknown, lookup) = (Uuid::new_v4(), json!({"lastName": "Lovelace"}));
    let asks: Vec<(reqwest::Method, String, Option<Value>, u16)> = vec![
        (
            reqwest::Method::GET,
            format!("/api/orders/{order}"),
            None,
            200,
        ),
        (
            reqwest::Method::GET,
            format!("/api/orders/{order}/status"),
            None,
            200,
        ),
        (
            reqwest::Method::GET,
            format!("/api/orders/{unknown}/status"),
            None,
            404,
        ),
        (
            reqwest::Method::GET,
            "/api/orders/not-an-id".into(),
            None,
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/orders".into(),
            Some(json!({"flightId": FL101, "seats": []})),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/bookings/K7QX2M/cancel".into(),
            Some(lookup),
            404,
        ),
        (reqwest::Method::GET, "/api/ops/session".into(), None, 401),
        (
            reqwest::Method::POST,
            "/api/ops/session".into(),
            Some(json!({"name": "ada", "password": PASSWORD})),
            200,
        ),
        (reqwest::Method::GET, "/api/ops/orders".into(), None, 200),
        (
            reqwest::Method::GET,
            format!("/api/ops/orders/{order}"),
            None,
            200,
        ),
    ];
    for (method, path, body, expected) in asks {
        let mut req = operator.request(method.clone(), app.url(&path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let control = cache_control(resp.headers());
        assert_eq!(status, expected, "{method} {path}");
        assert_eq!(control.as_deref(), Some("no-store"), "{method} {path}");
    }
    // An order's event stream: its headers, then the stream is dropped.
    let stream = operator
        .get(app.url(&format!("/api/orders/{order}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert_eq!(
        cache_control(stream.headers()).as_deref(),
        Some("no-store"),
        "the order's events"
    );
}

#[tokio::test]
async fn a_temporal_outage_is_a_503_with_a_generic_sentence() {
    let mut settings = support::isolated_settings(false).await;
    // Nothing listens there: the client's connection is refused.
    let dead = procs::free_port();
    settings.temporal.host = format!("127.0.0.1:{dead}");
    let app = TestApp::spawn(settings).await;
    let resp = app
        .http
        .post(app.url("/api/orders"))
        .json(&json!({"flightId": FL101, "seats": ["1A"]}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").is_some();
    let body: Value = resp.json().await.unwrap();
    println!("Temporal down: {status} {body}");
    assert_eq!(status, 503, "{body}");
    assert!(retry_after, "a 503 says when to retry");
    assert_eq!(body["error"], "SERVICE_UNAVAILABLE");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error", "message"], "{body}");
    let message = body["message"].as_str().unwrap().to_lowercase();
    for driver in [
        "127.0.0.1",
        &dead.to_string(),
        "transport",
        "tonic",
        "grpc",
        "os error",
        "connection refused",
        "error trying",
        "status:",
        "dns",
    ] {
        assert!(!message.contains(driver), "{driver:?} in {message:?}");
    }
}

#[tokio::test]
async fn metrics_and_the_config_are_served_on_the_admin_listener() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let metrics = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("flightctl_"), "{text}");
    let (status, config) = app.admin_get("/api/config").await;
    assert_eq!(status, 200, "{config}");
    // Public: no metrics unless PUBLIC_METRICS (false unless development),
    // and the UI's config with what the UI uses, nothing more.
    let (status, body) = app.get("/metrics").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NOT_FOUND")));
    let (status, config) = app.get("/api/config").await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = config
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "holdMaxLifetimeSeconds",
            "paymentFailureRate",
            "paymentMaxRetries",
            "seatReservationSeconds",
            "temporalNamespace",
            "temporalUiUrl",
        ],
        "{config}"
    );
}

/// Through HAProxy (the repository's configuration), a client that sends
/// `X-Forwarded-Proto: https` over plain HTTP is not believed: the balancer
/// says how the client connected, so the session cookie is not marked
/// Secure for a connection that was not, and the console's Origin check
/// compares with the scheme the browser really used.
#[tokio::test]
async fn behind_haproxy_the_balancer_says_how_the_client_connected() {
    let settings = support::isolated_settings(true).await;
    let shape = Shape::start(settings, 1, 1).await;
    let hash = hash_password(&Password::new(PASSWORD)).unwrap();
    put_operator(&shape.app.pool, "ada", &hash).await.unwrap();
    let http = client();
    let signed_in = http
        .post(shape.url("/api/ops/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"name": "ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 200);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    println!("set-cookie through haproxy: {cookie}");
    assert!(cookie.starts_with("flightctl_ops="), "{cookie}");
    assert!(
        !cookie.to_lowercase().contains("secure"),
        "a plain-HTTP client claimed https and got a Secure cookie: {cookie}"
    );
    // The Origin check: a state change from this very page (http, the
    // balancer's address) passes, though the client claims https.
    let origin = shape.url("");
    let out = http
        .delete(shape.url("/api/ops/session"))
        .header("x-forwarded-proto", "https")
        .header("origin", origin.trim_end_matches('/'))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
}

/// Every payload key a shipped file holds (compose.yaml, .env.example, the
/// k8s manifests, config/): every base64 word that decodes to 32 bytes.
fn shipped_keys() -> Vec<(String, String)> {
    use base64::Engine as _;
    let root = support::repo_root();
    let mut files = vec![root.join("compose.yaml"), root.join(".env.example")];
    let mut dirs = vec![root.join("deploy/k8s"), root.join("config")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut keys = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c)));
        for word in words.filter(|w| w.len() >= 43) {
            let decoded = base64::engine::general_purpose::STANDARD.decode(word);
            if decoded.is_ok_and(|bytes| bytes.len() == 32) {
                keys.push((file.display().to_string(), word.to_string()));
            }
        }
    }
    keys
}

#[test]
fn every_payload_key_the_repository_ships_is_known_as_shipped() {
    use base64::Engine as _;
    let keys = shipped_keys();
    println!("keys shipped: {keys:?}");
    assert!(
        keys.iter().any(|(_, k)| k == COMPOSE_KEY),
        "the scan finds compose.yaml's key: {keys:?}"
    );
    for (file, key) in &keys {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        let fingerprint = flightctl::config::payload_key_fingerprint(&bytes);
        assert!(
            flightctl::config::SHIPPED_PAYLOAD_KEYS.contains(&fingerprint.as_str()),
            "{file} ships a payload key whose fingerprint {fingerprint} is not in \
             SHIPPED_PAYLOAD_KEYS (src/config/payload.rs)"
        );
    }
    // .env.example ships none: it says how to make one.
    let example = std::fs::read_to_string(support::repo_root().join(".env.example")).unwrap();
    assert!(example.contains("PAYLOAD_ENCRYPTION_KEY=\n"), "{example}");
    assert!(example.contains("openssl rand -base64 32"));
}

/// A self-signed certificate for 127.0.0.1 and its key, in one PEM (what
/// HAProxy's `crt` takes), made by the `openssl` command.
fn self_signed_pem() -> std::path::PathBuf {
    let dir = procs::temp_dir("lb-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(made.success(), "openssl made a certificate");
    let pem = dir.join("lb.pem");
    let text = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&pem, text).unwrap();
    pem
}

/// `curl` over TLS (the test's own certificate, so `-k`): the answer's
/// status line and headers.
fn curl_headers(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-k", "-s", "-o", "/dev/null", "-D", "-", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The status code of `curl_headers`' answer.
fn status_of(headers: &str) -> Option<u16> {
    headers.split_whitespace().nth(1)?.parse().ok()
}

/// Behind HAProxy terminating TLS, serve knows the client used https: the
/// session cookie is Secure, and a state change from the https page passes
/// the console's Origin check (one from the http origin does not).
#[tokio::test]
async fn behind_haproxy_over_tls_the_cookie_is_secure_and_the_origin_is_https() {
    let pem = self_signed_pem();
    let settings = support::isolated_settings(true).await;
    let shape = Shape::start_tls(settings, 1, 1, &pem).await;
    let hash = hash_password(&Password::new(PASSWORD)).unwrap();
    put_operator(&shape.app.pool, "ada", &hash).await.unwrap();
    let base = shape.app.address.clone();
    assert!(base.starts_with("https://"), "{base}");
    let body = json!({"name": "ada", "password": PASSWORD}).to_string();
    let session_url = format!("{base}/api/ops/session");
    let json = "content-type: application/json";
    let signed_in = curl_headers(&["-X", "POST", "-H", json, "--data", &body, &session_url]);
    println!("sign-in through haproxy over TLS:\n{signed_in}");
    assert_eq!(status_of(&signed_in), Some(200), "{signed_in}");
    let cookie_line = signed_in
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie: flightctl_ops="))
        .unwrap_or_else(|| panic!("no session cookie: {signed_in}"));
    assert!(
        cookie_line.to_lowercase().contains("; secure"),
        "{cookie_line}"
    );
    let cookie = cookie_line
        .split_once(": ")
        .and_then(|(_, v)| v.split(';').next())
        .unwrap()
        .to_string();
    let with_cookie = format!("cookie: {cookie}");
    // A state change from the http page is another origin: 403.
    let http_origin = format!("origin: {}", base.replacen("https://", "http://", 1));
    let refused = curl_headers(&[
        "-X",
        "DELETE",
        "-H",
        &with_cookie,
        "-H",
        &http_origin,
        &session_url,
    ]);
    assert_eq!(status_of(&refused), Some(403), "{refused}");
    let https_origin = format!("origin: {base}");
    let signed_out = curl_headers(&[
        "-X",
        "DELETE",
        "-H",
        &with_cookie,
        "-H",
        &https_origin,
        &session_url,
    ]);
    assert_eq!(status_of(&signed_out), Some(204), "{signed_out}");
}
