//! A hostile client against sign-in, the limiters and the audit trail, on
//! the real stack (Postgres, Redis; no Temporal: nothing here books):
//!
//! - parallel wrong booking look-ups get at most the limit of 404s;
//! - parallel wrong sign-ins (one name, or random names from one address)
//!   get at most their limit of password checks;
//! - a stranger's failures from another address do not lock an operator
//!   out at their own;
//! - sign-ins beyond the bound on password checks are 503 with
//!   `Retry-After` at once, never queued;
//! - every failed or refused sign-in is in the audit trail (the name as
//!   typed, the address, never the password), and the trail's rows cannot
//!   be changed or deleted, even by the role that owns the table;
//! - an operator's event stream ends when the session is signed out or
//!   revoked.
//!
//! The caps are set per test in its own environment (`settings_with`), as
//! a deployment sets them; no rule is switched off.

mod support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use flightctl::config::{Settings, Sources};
use flightctl::ops::{Password, hash_password};
use flightctl::store::ops::put_operator;
use futures::StreamExt;
use serde_json::{Value, json};
use support::TestApp;
use tokio_postgres::error::SqlState;

const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "not the password at all";
/// A hang guard, not a timing assertion: a stream that should end and
/// does not fails the test after this long.
const HANG: Duration = Duration::from_secs(60);

/// Isolated settings (a database, a key prefix of their own) with `env`
/// layered over them as a deployment's environment would be.
async fn settings_with(env: &[(&str, &str)]) -> Settings {
    let isolated = support::isolated_settings(false).await;
    let mut vars: HashMap<String, String> = support::worker_env(&isolated)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    vars.insert("SERVER_HOST".into(), "127.0.0.1".into());
    vars.insert("SERVER_PORT".into(), "0".into());
    for (k, v) in env {
        vars.insert(k.to_string(), v.to_string());
    }
    let mut settings = Settings::load_from(&Sources {
        config_dir: support::repo_root().join("config"),
        file: None,
        env: Box::new(move |name| vars.get(name).cloned()),
    })
    .expect("the test's environment loads");
    settings.redis.target = isolated.redis.target.clone();
    settings
}

async fn app_with(env: &[(&str, &str)]) -> TestApp {
    TestApp::spawn(settings_with(env).await).await
}

async fn add_operator(app: &TestApp, name: &str) {
    let hash = hash_password(&Password::new(PASSWORD)).unwrap();
    put_operator(&app.pool, name, &hash).await.unwrap();
}

/// A client with its own cookie jar, its connections from `from` (any
/// loopback address: each is another client to `serve`).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Sign in as `name`; the status, `Retry-After` and body.
async fn sign_in(
    http: &reqwest::Client,
    app: &TestApp,
    name: &str,
    password: &str,
) -> (u16, Option<String>, Value) {
    let resp = http
        .post(app.url("/api/ops/session"))
        .json(&json!({"name": name, "password": password}))
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (code, retry, resp.json().await.unwrap_or_default())
}

/// `n` sign-ins at once from one client; their answers.
async fn at_once(
    app: &TestApp,
    http: &reqwest::Client,
    names: Vec<String>,
    password: &str,
) -> Vec<(u16, Option<String>, Value)> {
    let calls = names.into_iter().map(|name| {
        let (http, password) = (http.clone(), password.to_string());
        async move { sign_in(&http, app, &name, &password).await }
    });
    futures::future::join_all(calls).await
}

fn count(answers: &[(u16, Option<String>, Value)], code: u16) -> usize {
    answers.iter().filter(|a| a.0 == code).count()
}

/// Random operator names, from a seed printed so a run can be repeated.
fn random_names(n: usize) -> Vec<String> {
    let seed: u64 = std::env::var("ABUSE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("random names from seed {seed} (ABUSE_SEED={seed} repeats them)");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    (0..n)
        .map(|i| format!("guess{i}-{:08x}", rand::Rng::random::<u32>(&mut rng)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_wrong_look_ups_get_at_most_the_limit_of_404s() {
    let app = app_with(&[("LOOKUP_MAX_FAILURES", "10")]).await;
    let calls = (0..40).map(|i| {
        let http = app.http.clone();
        let url = app.url("/api/bookings/lookup");
        let body =
            serde_json::json!({"reference": format!("ABCDE{}", i % 10), "lastName": "Nobody"});
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let codes = futures::future::join_all(calls).await;
    let not_found = codes.iter().filter(|c| **c == 404).count();
    let refused = codes.iter().filter(|c| **c == 429).count();
    println!("40 wrong look-ups at once: 404 {not_found}, 429 {refused}");
    assert_eq!(not_found + refused, 40, "{codes:?}");
    assert!(not_found <= 10, "{not_found} look-ups passed a limit of 10");
    assert_eq!(not_found, 10, "the limit's look-ups are answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_sign_ins_get_at_most_their_limit_of_password_checks() {
    // Password checks unbounded enough that only the limits decide.
    let app = app_with(&[
        ("SIGN_IN_CONCURRENCY", "64"),
        ("SIGN_IN_MAX_PER_NAME", "3"),
        ("SIGN_IN_MAX_PER_ADDRESS", "5"),
    ])
    .await;
    add_operator(&app, "ada").await;
    let http = client_from("127.0.0.1");

    // One name: at most 3 wrong passwords are checked, the rest 429.
    let answers = at_once(&app, &http, vec!["ada".to_string(); 10], WRONG).await;
    let (wrong, refused) = (count(&answers, 401), count(&answers, 429));
    println!("10 wrong sign-ins for one name at once: 401 {wrong}, 429 {refused}");
    assert_eq!(wrong + refused, 10, "{answers:?}");
    assert!(wrong <= 3, "{wrong} wrong passwords checked, limit 3");
    for (_, retry, body) in answers.iter().filter(|a| a.0 == 429) {
        assert_eq!(body["error"], "TOO_MANY_SIGN_INS");
        let retry: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
        assert!((1..=15 * 60).contains(&retry), "{retry}");
    }

    // Random names from the same address: at most 5 in all (3 used).
    let answers = at_once(&app, &http, random_names(10), WRONG).await;
    let (wrong_more, refused) = (count(&answers, 401), count(&answers, 429));
    println!("10 random names at once: 401 {wrong_more}, 429 {refused}");
    assert_eq!(wrong_more + refused, 10, "{answers:?}");
    assert!(
        wrong + wrong_more <= 5,
        "{} failures from one address, limit 5",
        wrong + wrong_more
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_strangers_failures_from_elsewhere_do_not_lock_the_operator_out() {
    let app = app_with(&[]).await;
    add_operator(&app, "ada").await;
    let stranger = client_from("127.0.0.2");
    let mut codes = Vec::new();
    for _ in 0..7 {
        codes.push(sign_in(&stranger, &app, "ada", WRONG).await.0);
    }
    assert_eq!(codes, [401, 401, 401, 401, 401, 429, 429], "the stranger");
    let (code, _, body) = sign_in(&stranger, &app, "ada", PASSWORD).await;
    assert_eq!(
        code, 429,
        "the stranger stays refused, right password or not"
    );
    assert_eq!(body["error"], "TOO_MANY_SIGN_INS");

    // Ada, at her own address, signs in.
    let ada = client_from("127.0.0.1");
    let (code, _, body) = sign_in(&ada, &app, "ada", PASSWORD).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["name"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_beyond_the_bound_on_password_checks_are_503_at_once() {
    let app = app_with(&[
        ("SIGN_IN_CONCURRENCY", "1"),
        ("SIGN_IN_MAX_PER_ADDRESS", "1000"),
    ])
    .await;
    let http = client_from("127.0.0.1");
    let answers = at_once(&app, &http, random_names(8), WRONG).await;
    let (wrong, busy) = (count(&answers, 401), count(&answers, 503));
    println!("8 sign-ins at once, one check at a time: 401 {wrong}, 503 {busy}");
    assert_eq!(wrong + busy, 8, "{answers:?}");
    assert!(wrong >= 1, "one was checked");
    assert!(busy >= 1, "the rest were not queued behind it");
    for (_, retry, body) in answers.iter().filter(|a| a.0 == 503) {
        assert_eq!(body["error"], "SERVICE_BUSY", "{body}");
        let retry: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
        assert!(retry >= 1);
    }
    // Refused for being busy, they did not count: the address may go on.
    let (code, _, _) = sign_in(&http, &app, "nobody", WRONG).await;
    assert_eq!(code, 401);
}

/// The audit trail's sign-in rows that are not successes, oldest first.
async fn failed_sign_ins(app: &TestApp) -> Vec<(String, String, String, Option<String>)> {
    let conn = app.pool.get().await.unwrap();
    conn.query(
        "SELECT operator, target, outcome, detail FROM ops_audit
         WHERE action = 'sign_in' AND outcome <> 'ok' ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failed_sign_in_is_audited_with_the_name_as_typed_never_the_password() {
    let app = app_with(&[("SIGN_IN_MAX_PER_NAME", "2")]).await;
    add_operator(&app, "ada").await;
    let http = client_from("127.0.0.1");
    let long = format!("  {}  ", "m".repeat(300));
    let typed = [
        ("ada", WRONG, 401),
        ("  Mallory ", WRONG, 401),
        (long.as_str(), WRONG, 401),
        ("ada", WRONG, 401),
        ("ada", PASSWORD, 429),
    ];
    for (name, password, code) in typed {
        assert_eq!(sign_in(&http, &app, name, password).await.0, code, "{name}");
    }
    let rows = failed_sign_ins(&app).await;
    let seen: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(op, target, outcome, _)| (op.as_str(), target.as_str(), outcome.as_str()))
        .collect();
    let cut = "m".repeat(64);
    assert_eq!(
        seen,
        [
            ("ada", "127.0.0.1", "INVALID_CREDENTIALS"),
            ("Mallory", "127.0.0.1", "INVALID_CREDENTIALS"),
            (cut.as_str(), "127.0.0.1", "INVALID_CREDENTIALS"),
            ("ada", "127.0.0.1", "INVALID_CREDENTIALS"),
            ("ada", "127.0.0.1", "TOO_MANY_SIGN_INS"),
        ]
    );
    let conn = app.pool.get().await.unwrap();
    let leaked: i64 = conn
        .query_one(
            "SELECT count(*) FROM ops_audit a
             WHERE strpos(a::text, $1) > 0 OR strpos(a::text, $2) > 0",
            &[&PASSWORD, &WRONG],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0, "no password in the audit trail");
}

#[tokio::test]
async fn the_audit_trail_cannot_be_changed_or_deleted_even_by_its_owner() {
    let app = app_with(&[]).await;
    flightctl::store::ops::audit(&app.pool, "ada", "sign_in", "ada", "ok", None)
        .await
        .unwrap();
    let conn = app.pool.get().await.unwrap();
    let owner: bool = conn
        .query_one(
            "SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'ops_audit'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(owner, "the app's role owns the table: no REVOKE binds it");
    for sql in [
        "UPDATE ops_audit SET outcome = 'forged'",
        "DELETE FROM ops_audit",
        "TRUNCATE ops_audit",
    ] {
        let refused = conn.execute(sql, &[]).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {refused}"
        );
    }
    let rows: Vec<(String, String)> = conn
        .query("SELECT operator, outcome FROM ops_audit", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [("ada".to_string(), "ok".to_string())]);
    // Appending still works.
    flightctl::store::ops::audit(&app.pool, "ada", "sign_out", "ada", "ok", None)
        .await
        .unwrap();
}

/// The operator console's sales stream for `http`, its first event read.
async fn open_sales_stream(
    http: &reqwest::Client,
    app: &TestApp,
) -> futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>> {
    let resp = http
        .get(app.url("/api/ops/flights/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = resp.bytes_stream().boxed();
    let first = tokio::time::timeout(HANG, stream.next())
        .await
        .expect("the first event")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("event: flights"));
    stream
}

/// Read `stream` to its end; panics if it is still open after [`HANG`].
async fn ends(stream: &mut futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>) {
    tokio::time::timeout(HANG, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await
    .expect("the stream ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operators_stream_ends_at_sign_out_and_at_revocation() {
    let app = app_with(&[]).await;
    add_operator(&app, "ada").await;
    let http = client_from("127.0.0.1");
    assert_eq!(sign_in(&http, &app, "ada", PASSWORD).await.0, 200);
    let mut stream = open_sales_stream(&http, &app).await;
    let out = http
        .delete(app.url("/api/ops/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    ends(&mut stream).await;

    // A session revoked elsewhere (a new password ends every session).
    let other = client_from("127.0.0.1");
    assert_eq!(sign_in(&other, &app, "ada", PASSWORD).await.0, 200);
    let mut stream = open_sales_stream(&other, &app).await;
    add_operator(&app, "ada").await;
    ends(&mut stream).await;
}
