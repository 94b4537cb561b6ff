//! Payment data stays private in Temporal: every payload the API and the
//! worker send is encrypted (AES-256-GCM), so a payment code is not in
//! `temporal workflow show`; `POST /codec/decode` gives an operator the
//! payloads back, and plain payloads (histories from before encryption)
//! pass through. Real servers, the real `temporal` CLI.

mod support;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use flightctl::codec::Cipher;
use flightctl::config::{PayloadKey, PayloadKeys, Secret, Settings};
use serde_json::{Value, json};
use support::{FL101, TestApp};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// Not one of the simulated provider's test codes: approved with failure
/// rate 0, and distinctive enough not to occur in a history by chance.
const CODE: &str = "47291";
const UI_ORIGIN: &str = "http://localhost:8233";

async fn booking_settings() -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    s
}

/// `temporal <args> --address ... --namespace ...` with nothing from this
/// process's environment (no `TEMPORAL_*` or codec settings of the machine).
fn temporal_cli(settings: &Settings, args: &[&str]) -> String {
    let bin = support::procs::find_bin("temporal", "FLIGHTCTL_TEST_TEMPORAL", &[]);
    let out = Command::new(bin)
        .args(args)
        .args(["--address", &settings.temporal.host])
        .args(["--namespace", &settings.temporal.namespace])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", support::procs::temp_dir("temporal-cli-home"))
        .output()
        .expect("run the temporal CLI");
    assert!(
        out.status.success(),
        "temporal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Every payload object (`{"metadata": {...}, "data": "..."}`) in a JSON
/// history, with its path.
fn payloads<'a>(value: &'a Value, path: &str, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            if map.get("metadata").is_some_and(Value::is_object) && map.contains_key("data") {
                found.push((path.to_string(), value));
            }
            for (k, v) in map {
                payloads(v, &format!("{path}.{k}"), found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| payloads(v, path, found)),
        _ => {}
    }
}

fn metadata(payload: &Value, key: &str) -> Option<String> {
    let text = payload["metadata"][key].as_str()?;
    String::from_utf8(B64.decode(text).ok()?).ok()
}

fn data(payload: &Value) -> Vec<u8> {
    B64.decode(payload["data"].as_str().unwrap_or_default())
        .expect("payload data is base64")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Hold two seats; the order's id.
async fn create(app: &TestApp) -> String {
    let body = json!({"flightId": FL101, "seats": ["7C", "7D"]});
    let (code, body) = app.post("/api/orders", body).await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

/// Pay with `CODE` and wait for the order to be CONFIRMED.
async fn pay(app: &TestApp, order: &str) {
    app.name_passengers(order).await;
    let body = json!({"paymentCode": CODE});
    let (code, body) = app.post(&format!("/api/orders/{order}/pay"), body).await;
    assert_eq!(code, 202, "{body}");
    support::eventually(
        "the order to be CONFIRMED",
        Duration::from_secs(60),
        || async {
            let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
            (s["status"] == "CONFIRMED").then_some(())
        },
    )
    .await;
}

async fn book_and_pay(app: &TestApp) -> String {
    let order = create(app).await;
    pay(app, &order).await;
    order
}

/// `temporal workflow show -o json` of an order's completed workflow: the
/// text and its payloads with their paths.
fn show(app: &TestApp, order: &str) -> (String, Vec<(String, Value)>) {
    let workflow = format!("booking-{order}");
    let shown = temporal_cli(
        &app.settings,
        &["workflow", "show", "-w", &workflow, "-o", "json"],
    );
    assert!(
        shown.contains("EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"),
        "the workflow completed: {shown}"
    );
    let history: Value = serde_json::from_str(&shown).expect("JSON history");
    let mut found = Vec::new();
    payloads(&history, "", &mut found);
    let found = found.into_iter().map(|(k, p)| (k, p.clone())).collect();
    (shown, found)
}

fn key_id_of(p: &Value) -> Option<String> {
    (metadata(p, "encoding").as_deref() == Some("binary/encrypted"))
        .then(|| metadata(p, "encryption-key-id").unwrap_or_default())
}

/// Nothing private is readable in any payload: not the code, the order id or
/// the seats.
fn assert_private(found: &[(String, Value)], order: &str) {
    for (path, p) in found {
        let bytes = data(p);
        for secret in [CODE, order, "\"7C\"", "\"7D\""] {
            assert!(!contains(&bytes, secret), "{secret} readable at {path}");
        }
    }
}

#[tokio::test]
async fn a_payment_code_is_not_readable_in_temporal_history_but_an_operator_can_decode_it() {
    let app = TestApp::with_worker(booking_settings().await).await;
    let order = book_and_pay(&app).await;
    let (shown, found) = show(&app, &order);
    assert!(
        !shown.contains(CODE),
        "payment code in the history: {shown}"
    );
    assert_private(&found, &order);
    let encrypted: Vec<&Value> = found
        .iter()
        .filter(|(_, p)| key_id_of(p).is_some())
        .map(|(_, p)| p)
        .collect();
    // Workflow input, both updates' arguments and answers, the validation's
    // input and result, local activity results, the workflow result.
    assert!(encrypted.len() >= 8, "few encrypted payloads: {shown}");
    for p in &encrypted {
        assert_eq!(key_id_of(p).as_deref(), Some(support::PAYLOAD_KEY_ID));
    }

    // The operator's view: the codec endpoint opens the same payloads.
    let body = json!({"payloads": encrypted});
    let (status, decoded) = app.admin_post("/codec/decode", body).await;
    assert_eq!(status, 200, "{decoded}");
    let decoded: Vec<Value> = decoded["payloads"].as_array().unwrap().clone();
    assert_eq!(decoded.len(), encrypted.len());
    assert!(
        decoded
            .iter()
            .all(|p| metadata(p, "encoding").as_deref() == Some("json/plain"))
    );
    let texts: Vec<String> = decoded
        .iter()
        .map(|p| String::from_utf8(data(p)).unwrap())
        .collect();
    let code_field = format!("\"code\":\"{CODE}\"");
    assert!(
        texts.iter().any(|t| t.contains(&code_field)),
        "no decoded payload has the code: {texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains(&order)), "{texts:?}");

    // And the real CLI, pointed at the endpoint as the Temporal UI would be
    // (its text view: `-o json` does not apply a codec endpoint, CLI 1.x).
    let workflow = format!("booking-{order}");
    let endpoint = format!("{}/codec", app.admin_address);
    let args = [
        "workflow",
        "show",
        "-w",
        &workflow,
        "--detailed",
        "--codec-endpoint",
        &endpoint,
        "--codec-auth",
        &format!("Bearer {}", support::CODEC_TOKEN),
    ];
    let through_codec = temporal_cli(&app.settings, &args);
    assert!(
        through_codec.contains(&format!("code: {CODE}")),
        "{through_codec}"
    );
}

#[tokio::test]
async fn with_encryption_switched_off_payloads_are_plain_and_the_processes_say_so() {
    let mut settings = booking_settings().await;
    settings.temporal.payload_encryption = false;
    settings.temporal.payload_encryption_key = Secret::new("");
    let app = TestApp::with_worker(settings).await;
    let order = book_and_pay(&app).await;
    let (_, found) = show(&app, &order);
    assert!(found.iter().all(|(_, p)| key_id_of(p).is_none()));
    let code_field = format!("\"code\":\"{CODE}\"");
    assert!(
        found.iter().any(|(_, p)| contains(&data(p), &code_field)),
        "the check above would see a readable code"
    );
    assert!(
        app.worker_log(0).contains("payload encryption is OFF"),
        "{}",
        app.worker_log(0)
    );
}

/// The rotation of README: every process reads both keys, the writer's key
/// changes while an order is in flight, the order completes.
#[tokio::test]
async fn an_order_in_flight_completes_across_a_key_rotation() {
    // Keys of 32 distinct bytes: serve and worker refuse a patterned one
    // (32 equal bytes) outside development.
    let key = |seed: u8| {
        let bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ seed).collect();
        B64.encode(bytes)
    };
    let (old, new) = (key(0x5a), key(0xc3));
    let mut settings = booking_settings().await;
    settings.temporal.payload_encryption_key = Secret::new(old.clone());
    settings.temporal.payload_encryption_key_id = "old".into();
    settings.temporal.payload_decryption_keys = Secret::new(format!("new:{new}"));
    let mut app = TestApp::with_worker(settings).await;
    let order = create(&app).await;

    // The worker now writes with the new key; the API still with the old.
    app.worker().stop();
    let temporal = &mut app.settings.temporal;
    temporal.payload_encryption_key = Secret::new(new);
    temporal.payload_encryption_key_id = "new".into();
    temporal.payload_decryption_keys = Secret::new(format!("old:{old}"));
    app.start_worker().await;
    pay(&app, &order).await;

    let (_, found) = show(&app, &order);
    assert_private(&found, &order);
    let ids: std::collections::BTreeSet<String> =
        found.iter().filter_map(|(_, p)| key_id_of(p)).collect();
    assert_eq!(ids, ["new".to_string(), "old".to_string()].into());
}

/// An app that needs no Temporal: the codec endpoints only.
async fn codec_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut s = support::isolated_settings(false).await;
    configure(&mut s);
    TestApp::spawn(s).await
}

fn json_payload(text: &str) -> Value {
    json!({"metadata": {"encoding": B64.encode("json/plain")}, "data": B64.encode(text)})
}

fn payload_json(p: &Payload) -> Value {
    let metadata: serde_json::Map<String, Value> = p
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(B64.encode(v))))
        .collect();
    json!({"metadata": metadata, "data": B64.encode(&p.data)})
}

#[tokio::test]
async fn encode_then_decode_gives_the_payloads_back_and_plain_ones_pass_through() {
    let app = codec_app(|_| {}).await;
    let original = vec![
        json_payload(r#"{"code":"12345"}"#),
        json_payload("\"PAID\""),
    ];
    let (status, encoded) = app
        .admin_post("/codec/encode", json!({"payloads": original}))
        .await;
    assert_eq!(status, 200, "{encoded}");
    let encoded = encoded["payloads"].as_array().unwrap().clone();
    assert_eq!(encoded.len(), 2);
    for p in &encoded {
        assert_eq!(metadata(p, "encoding").as_deref(), Some("binary/encrypted"));
        assert!(!contains(&data(p), "12345"));
    }
    let (status, decoded) = app
        .admin_post("/codec/decode", json!({"payloads": encoded}))
        .await;
    assert_eq!(status, 200, "{decoded}");
    assert_eq!(decoded["payloads"], json!(original));

    // An event's payloads come in one request: more than the booking API's
    // 16 KiB body limit is fine here.
    let many = vec![json_payload(&"x".repeat(1000)); 40];
    let (status, body) = app
        .admin_post("/codec/encode", json!({"payloads": many}))
        .await;
    assert_eq!(status, 200, "{body}");

    let mixed = json!({"payloads": [original[1], encoded[0], {"metadata": {}}]});
    let (status, decoded) = app.admin_post("/codec/decode", mixed).await;
    assert_eq!(status, 200, "{decoded}");
    assert_eq!(
        decoded["payloads"],
        json!([original[1], original[0], {"metadata": {}, "data": ""}])
    );
}

#[tokio::test]
async fn after_a_rotation_old_payloads_decode_and_unknown_key_ids_are_refused() {
    let old = PayloadKey {
        id: "2025-q4".into(),
        key: [7; 32],
    };
    let retired = PayloadKey {
        id: "retired".into(),
        key: [9; 32],
    };
    let old_b64 = B64.encode(old.key);
    let app = codec_app(|s| {
        s.temporal.payload_decryption_keys = Secret::new(format!("2025-q4:{old_b64}"));
    })
    .await;
    let seal = |key: &PayloadKey| {
        let cipher = Cipher::new(&PayloadKeys {
            encrypt: Some(key.clone()),
            decrypt: vec![],
        });
        let plain = Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: b"\"sealed by an old key\"".to_vec(),
            ..Default::default()
        };
        payload_json(&cipher.encode_one(plain).unwrap())
    };

    let (status, decoded) = app
        .admin_post("/codec/decode", json!({"payloads": [seal(&old)]}))
        .await;
    assert_eq!(status, 200, "{decoded}");
    assert_eq!(
        decoded["payloads"],
        json!([json_payload("\"sealed by an old key\"")])
    );
    let (status, encoded) = app
        .admin_post("/codec/encode", json!({"payloads": [json_payload("1")]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        metadata(&encoded["payloads"][0], "encryption-key-id").as_deref(),
        Some(support::PAYLOAD_KEY_ID),
        "new payloads use the current key"
    );

    let (status, error) = app
        .admin_post("/codec/decode", json!({"payloads": [seal(&retired)]}))
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"], "UNKNOWN_KEY_ID");
    assert!(
        error["message"].as_str().unwrap().contains("\"retired\""),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_codec_requests_are_400_in_the_error_shape() {
    let app = codec_app(|_| {}).await;
    let raw = app
        .http
        .post(app.admin_url("/codec/decode"))
        .bearer_auth(support::CODEC_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"], "INVALID_JSON");

    let encrypted = |data: &str| {
        json!({"metadata": {
            "encoding": B64.encode("binary/encrypted"),
            "encryption-key-id": B64.encode(support::PAYLOAD_KEY_ID),
        }, "data": data})
    };
    let cases = [
        (json!({"payloads": "nope"}), "INVALID_REQUEST"),
        (json!({"payload": []}), "INVALID_REQUEST"),
        (
            json!({"payloads": [{"metadata": {}, "data": "%%%"}]}),
            "INVALID_PAYLOAD",
        ),
        (
            json!({"payloads": [{"metadata": {"encoding": "!"}, "data": ""}]}),
            "INVALID_PAYLOAD",
        ),
        (
            json!({"payloads": [encrypted(&B64.encode([0u8; 40]))]}),
            "INVALID_PAYLOAD",
        ),
        (json!({"payloads": [encrypted("")]}), "INVALID_PAYLOAD"),
    ];
    for (body, code) in cases {
        let (status, error) = app.admin_post("/codec/decode", body.clone()).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some(code)),
            "{body}"
        );
        assert!(error["message"].is_string(), "{error}");
    }
    let (status, error) = app.admin_get("/codec/decode").await;
    assert_eq!(
        (status, error["error"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
}

#[tokio::test]
async fn the_temporal_ui_origin_may_call_the_codec_from_a_browser() {
    let app = codec_app(|s| s.temporal.codec_cors_origins = "https://ops.example".into()).await;
    for origin in [UI_ORIGIN, "https://ops.example"] {
        let preflight = app
            .http
            .request(reqwest::Method::OPTIONS, app.admin_url("/codec/decode"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-namespace,authorization",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204);
        let h = preflight.headers();
        assert_eq!(h["access-control-allow-origin"], origin);
        assert_eq!(h["access-control-allow-credentials"], "true");
        let allowed = h["access-control-allow-headers"].to_str().unwrap();
        for header in ["content-type", "x-namespace", "authorization"] {
            assert!(allowed.contains(header), "{allowed}");
        }
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
    }

    let post = app
        .http
        .post(app.admin_url("/codec/decode"))
        .bearer_auth(support::CODEC_TOKEN)
        .header("origin", UI_ORIGIN)
        .header("x-namespace", "default")
        .json(&json!({"payloads": [json_payload("1")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(post.headers()["access-control-allow-origin"], UI_ORIGIN);

    let stranger = app
        .http
        .request(reqwest::Method::OPTIONS, app.admin_url("/codec/decode"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let body: Value = stranger.json().await.unwrap();
    assert_eq!(body["error"], "ORIGIN_NOT_ALLOWED");
}

fn load(env: &[(&str, &str)]) -> Result<Settings, flightctl::config::ConfigError> {
    let env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(&flightctl::config::Sources {
        config_dir: support::repo_root().join("config"),
        file: None,
        env: Box::new(move |k| env.get(k).cloned()),
    })
}

/// A payload POSTed to `url`, with the codec token.
async fn post_payload(app: &TestApp, url: String) -> reqwest::Response {
    let body = json!({"payloads": [json_payload("1")]});
    (app.http.post(url))
        .bearer_auth(support::CODEC_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The Temporal UI's preflight of a POST to `url`.
async fn preflight(app: &TestApp, url: String) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", UI_ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap()
}

/// Neither codec route answers at `base` (a listener's address): 404
/// `NOT_FOUND`, by its path or a percent-encoded one the router decodes to
/// it, with a request id like every answer; a preflight gets no CORS grant.
async fn assert_no_codec_at(app: &TestApp, base: &str) {
    let paths = [
        "/codec/decode",
        "/codec/encode",
        "/%63odec/decode",
        "/c%6Fdec/encode",
    ];
    for path in paths {
        let resp = post_payload(app, format!("{base}{path}")).await;
        assert_eq!(resp.status(), 404, "{base}{path}");
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "NOT_FOUND", "{base}{path}");
    }
    let preflight = preflight(app, format!("{base}/codec/encode")).await;
    assert_eq!(preflight.status(), 404, "{base}");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Both codec routes answer at `base`, the Temporal UI's preflight too.
async fn assert_codec_at(app: &TestApp, base: &str) {
    for path in ["/codec/encode", "/codec/decode"] {
        let resp = post_payload(app, format!("{base}{path}")).await;
        assert_eq!(resp.status(), 200, "{base}{path}");
    }
    let preflight = preflight(app, format!("{base}/codec/decode")).await;
    assert_eq!(preflight.status(), 204, "{base}");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        UI_ORIGIN
    );
}

#[tokio::test]
async fn the_codec_is_on_the_admin_listener_and_not_on_the_public_one() {
    let app = codec_app(|_| {}).await;
    assert_codec_at(&app, &app.admin_address).await;
    assert_no_codec_at(&app, &app.address).await;
}

#[tokio::test]
async fn the_admin_listener_serves_nothing_customer_facing() {
    let app = codec_app(|_| {}).await;
    let flight = format!("/api/flights/{FL101}");
    let customer = [
        "/",
        "/manage",
        "/assets/app.js",
        "/api/flights",
        flight.as_str(),
        "/api/openapi.json",
        "/api/docs",
    ];
    for path in customer {
        let (status, body) = app.admin_get(path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("NOT_FOUND")),
            "admin {path}"
        );
        let (status, _) = app.get(path).await;
        assert_eq!(status, 200, "public {path}");
    }
    let order = json!({"flightId": FL101, "seats": ["1A"]});
    let (status, body) = app.admin_post("/api/orders", order).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NOT_FOUND")));
    // The probes answer there too (they read nothing private), so a probe
    // can check the admin port itself; without Temporal, not ready.
    let (status, body) = app.admin_get("/livez").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    for path in ["/readyz", "/health"] {
        let (status, body) = app.admin_get(path).await;
        assert!(body["checks"].is_object(), "{path}: {status} {body}");
    }
}

#[tokio::test]
async fn with_codec_on_public_listener_both_listeners_answer_the_codec() {
    let app = codec_app(|s| s.temporal.codec_on_public_listener = true).await;
    assert_codec_at(&app, &app.address).await;
    assert_codec_at(&app, &app.admin_address).await;
}

#[tokio::test]
async fn with_the_endpoint_turned_off_the_codec_routes_are_not_there() {
    let app = codec_app(|s| {
        s.temporal.codec_endpoint_enabled = false;
        // Off wins, on every listener.
        s.temporal.codec_on_public_listener = true;
    })
    .await;
    assert_no_codec_at(&app, &app.admin_address).await;
    assert_no_codec_at(&app, &app.address).await;
}

#[tokio::test]
async fn the_admin_listener_is_on_loopback_unless_told_otherwise() {
    let defaults = load(&[]).unwrap();
    assert_eq!(
        (
            defaults.server.admin_host.as_str(),
            defaults.server.admin_port
        ),
        ("127.0.0.1", 8081)
    );
    // The tests' settings keep the default host, on a free port.
    let app = codec_app(|_| {}).await;
    let bound: std::net::SocketAddr = app
        .admin_address
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    assert!(bound.ip().is_loopback(), "{bound}");
    assert_ne!(bound.port(), 0);
}

/// `flightctl serve` itself: both listeners up, the admin one logged, and
/// SIGTERM stops both.
#[tokio::test]
async fn serve_runs_both_listeners_and_a_signal_stops_both() {
    let app = codec_app(|_| {}).await;
    let admin_port = support::procs::free_port();
    let (mut serve, port, log) =
        support::serve_process(&app.settings, &[("ADMIN_PORT", &admin_port.to_string())]);
    support::procs::wait_for_port(
        "serve's admin listener",
        admin_port,
        Duration::from_secs(20),
    );
    let admin = format!("http://127.0.0.1:{admin_port}/codec/encode");
    let public = format!("http://127.0.0.1:{port}/codec/encode");
    assert_eq!(post_payload(&app, admin).await.status(), 200);
    assert_eq!(post_payload(&app, public).await.status(), 404);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("admin listener on http://127.0.0.1:{admin_port}")),
        "{text}"
    );
    unsafe { libc::kill(serve.pid() as i32, libc::SIGTERM) };
    let exit = serve.wait_exit(Duration::from_secs(20));
    assert!(exit.is_some_and(|e| e.success()), "{exit:?}");
    for port in [port, admin_port] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
}

#[test]
fn the_codec_endpoint_is_turned_off_with_false_and_nothing_else() {
    assert!(load(&[]).unwrap().temporal.codec_endpoint_enabled);
    let off = load(&[("CODEC_ENDPOINT_ENABLED", "false")]).unwrap();
    assert!(!off.temporal.codec_endpoint_enabled);
    let err = load(&[("CODEC_ENDPOINT_ENABLED", "no")]).unwrap_err();
    assert!(err.to_string().contains("CODEC_ENDPOINT_ENABLED"), "{err}");
}

#[test]
fn payload_keys_come_from_the_environment_and_never_show_in_debug() {
    let current = B64.encode([1u8; 32]);
    let old = format!(
        "2025-q4:{},2025-q3:{}",
        B64.encode([2u8; 32]),
        B64.encode([3u8; 32])
    );
    let s = load(&[
        ("PAYLOAD_ENCRYPTION_KEY", &current),
        ("PAYLOAD_ENCRYPTION_KEY_ID", "2026-q1"),
        ("PAYLOAD_DECRYPTION_KEYS", &old),
    ])
    .unwrap();
    let keys = s.temporal.payload_keys().unwrap();
    assert_eq!(keys.encrypt.as_ref().unwrap().id, "2026-q1");
    assert_eq!(keys.encrypt.as_ref().unwrap().key, [1u8; 32]);
    let ids: Vec<&str> = keys.decrypt.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["2026-q1", "2025-q4", "2025-q3"]);
    let debug = format!("{s:?} {keys:?}");
    for secret in [current.as_str(), &B64.encode([2u8; 32])] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(!debug.contains("[1, 1, 1"), "{debug}");

    let none = load(&[]).unwrap().temporal.payload_keys().unwrap();
    assert!(none.encrypt.is_none() && none.decrypt.is_empty());
}

#[test]
fn a_bad_payload_key_stops_loading_and_names_the_variable() {
    let short = B64.encode([1u8; 16]);
    let good = B64.encode([1u8; 32]);
    let other = B64.encode([2u8; 32]);
    let twice = format!("k:{other}");
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("PAYLOAD_ENCRYPTION_KEY", "not base64!")],
            "PAYLOAD_ENCRYPTION_KEY",
        ),
        (&[("PAYLOAD_ENCRYPTION_KEY", &short)], "32 bytes"),
        (
            &[
                ("PAYLOAD_ENCRYPTION_KEY", &good),
                ("PAYLOAD_ENCRYPTION_KEY_ID", "a:b"),
            ],
            "PAYLOAD_ENCRYPTION_KEY_ID",
        ),
        (
            &[("PAYLOAD_DECRYPTION_KEYS", "no-colon")],
            "PAYLOAD_DECRYPTION_KEYS",
        ),
        (
            &[
                ("PAYLOAD_ENCRYPTION_KEY", &good),
                ("PAYLOAD_ENCRYPTION_KEY_ID", "k"),
                ("PAYLOAD_DECRYPTION_KEYS", &twice),
            ],
            "twice",
        ),
    ];
    for (env, wanted) in cases {
        let err = load(env).unwrap_err().to_string();
        assert!(err.contains(wanted), "{env:?}: {err}");
        assert!(!err.contains(&good) && !err.contains(&short), "{err}");
    }
}

#[test]
fn a_worker_with_a_malformed_key_stops_with_one_line_naming_the_variable() {
    let secret = B64.encode([5u8; 20]);
    let out = Command::new(env!("CARGO_BIN_EXE_flightctl"))
        .arg("worker")
        .current_dir(support::repo_root())
        .env_clear()
        .env("PAYLOAD_ENCRYPTION_KEY", &secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PAYLOAD_ENCRYPTION_KEY"), "{stderr}");
    assert!(stderr.contains("32 bytes"), "{stderr}");
    assert!(!stderr.contains(&secret), "{stderr}");
}
