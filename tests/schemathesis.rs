//! schemathesis against a running `flightctl serve` + worker (real Postgres,
//! Redis and Temporal), with the document the server serves and every
//! check on: no 5xx, no answer outside the document. Its settings, each
//! with its reason, are in `schemathesis.toml`. The codec's operations run
//! against the admin listener, which serves them; every other against the
//! public one. schemathesis comes from
//! PyPI (`scripts/install-prereqs.sh`); without it this test fails, it
//! does not skip.
//!
//! Every run is seeded (`SEED`, printed), so a failure is reproducible and
//! the suite does not pass or fail by chance; `SCHEMATHESIS_SEED=<n>`
//! picks another seed and `SCHEMATHESIS_SEED=random` lets schemathesis draw
//! one (it prints it), which is what `just fuzz-api` does to explore.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::TestApp;

/// `schemathesis` on PATH, or where `install-prereqs.sh` puts it.
fn schemathesis() -> PathBuf {
    support::tools::tool(
        "schemathesis",
        "python3 -m pip install schemathesis==4.32.5",
    )
}

/// The version `scripts/install-prereqs.sh` pins.
fn pinned_version() -> String {
    let script = std::fs::read_to_string(support::repo_root().join("scripts/install-prereqs.sh"))
        .expect("scripts/install-prereqs.sh");
    script
        .lines()
        .find_map(|l| l.trim().strip_prefix("schemathesis_version="))
        .expect("install-prereqs.sh pins schemathesis")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_outside_the_document() {
    let exe = schemathesis();
    let version = Command::new(&exe).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let pinned = pinned_version();
    assert!(
        version.trim().ends_with(&pinned),
        "{} is {}, not the pinned {pinned}: run scripts/install-prereqs.sh",
        exe.display(),
        version.trim()
    );
    let mut settings = support::isolated_settings(true).await;
    // Orders' holds outlive the run; nothing here waits for an expiry.
    settings.booking.payment_failure_rate = 0.0;
    let app = TestApp::with_worker(settings).await;
    let admin_port = support::procs::free_port().to_string();
    // Fuzzing signs in with wrong passwords, all from 127.0.0.1: this
    // test's own caps are high enough that its later sign-in is not
    // refused (the rule stays on; a real client gets the defaults).
    let env = [
        ("RUST_LOG", "warn"),
        ("ADMIN_PORT", admin_port.as_str()),
        ("SIGN_IN_MAX_PER_ADDRESS", "100000"),
        ("SIGN_IN_MAX_PER_NAME", "100000"),
    ];
    let (_serve, port, log) = support::serve_process(&app.settings, &env);
    let base = format!("http://127.0.0.1:{port}");
    let admin = format!("http://127.0.0.1:{admin_port}");
    support::eventually(
        "serve healthy, with a worker polling",
        Duration::from_secs(60),
        || async {
            let resp = app.http.get(format!("{base}/health")).send().await.ok()?;
            (resp.status() == 200).then_some(())
        },
    )
    .await;

    // Signed out: the whole document but the admin listener's routes (the
    // ops routes answer 401), then the codec and the metrics on the admin
    // listener (no links there: no stateful phase).
    let out = run(
        &exe,
        &base,
        vec!["--exclude-path-regex".into(), ADMIN_ONLY.into()],
    )
    .await;
    // The codec answers operators only: the run holds the codec token as
    // the document's `codec_token` scheme (and tries each call without it,
    // 401 expected).
    let codec_auth = format!(
        "\n[auth.openapi.codec_token]\nbearer = \"{}\"\n",
        support::CODEC_TOKEN
    );
    let admin = run_with(
        &exe,
        &base,
        &admin,
        vec![
            "--include-path-regex".into(),
            ADMIN_ONLY.into(),
            "--phases".into(),
            "examples,coverage,fuzzing".into(),
        ],
        &codec_auth,
    )
    .await;
    // Signed in: the operator console's routes with a session cookie,
    // signing out excluded (it would end the session for the rest).
    let hash = flightctl::ops::hash_password(&flightctl::ops::Password::new(OPS_PASSWORD)).unwrap();
    flightctl::store::ops::put_operator(&app.pool, "fuzz", &hash)
        .await
        .unwrap();
    let signed_in = app
        .http
        .post(format!("{base}/api/ops/session"))
        .json(&serde_json::json!({"name": "fuzz", "password": OPS_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("flightctl_ops=")
        .to_string();
    // The session as the document's `ops_session` scheme: schemathesis
    // sends it, and also tries each route without it (401 expected).
    let auth = format!("\n[auth.openapi.ops_session]\napi_key = \"{token}\"\n");
    let ops = run_with(
        &exe,
        &base,
        &base,
        vec![
            "--include-tag".into(),
            "operations console".into(),
            "--exclude-operation-id".into(),
            "ops_sign_out".into(),
        ],
        &auth,
    )
    .await;
    let serve_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !serve_log.contains("panicked"),
        "serve panicked:\n{serve_log}"
    );
    assert!(
        out.status.success() && admin.status.success() && ops.status.success(),
        "schemathesis found failures (exit {:?} signed out, {:?} on the admin listener, \
         {:?} signed in); serve's log:\n{}",
        out.status.code(),
        admin.status.code(),
        ops.status.code(),
        serve_log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The seed the suite runs with unless `SCHEMATHESIS_SEED` says otherwise.
const SEED: &str = "22";

/// `--seed <n>` for schemathesis, or nothing for `SCHEMATHESIS_SEED=random`.
fn seed_args() -> Vec<String> {
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.to_string());
    if seed == "random" {
        println!("schemathesis seed: random (schemathesis prints the one it drew)");
        return Vec::new();
    }
    println!("schemathesis seed: {seed} (rerun with SCHEMATHESIS_SEED={seed})");
    vec!["--seed".into(), seed]
}

const OPS_PASSWORD: &str = "a long operator password for the fuzzer";
/// The paths served on the admin listener only: the codec's, and
/// `/metrics` (on the public listener only with `PUBLIC_METRICS`, off here).
const ADMIN_ONLY: &str = "^/(codec/|metrics$)";

/// One schemathesis run against `base`, its output printed.
async fn run(exe: &std::path::Path, base: &str, extra: Vec<String>) -> std::process::Output {
    run_at(exe, base, base, extra).await
}

/// One schemathesis run of the document `base` serves against `url`.
async fn run_at(
    exe: &std::path::Path,
    base: &str,
    url: &str,
    extra: Vec<String>,
) -> std::process::Output {
    run_with(exe, base, url, extra, "").await
}

/// A run with `more` appended to the configuration.
async fn run_with(
    exe: &std::path::Path,
    base: &str,
    url: &str,
    extra: Vec<String>,
    more: &str,
) -> std::process::Output {
    let workdir = tempfile::tempdir().unwrap();
    let shared = std::fs::read_to_string(support::repo_root().join("schemathesis.toml")).unwrap();
    let config = workdir.path().join("schemathesis.toml");
    std::fs::write(&config, shared + more).unwrap();
    let started = Instant::now();
    let (exe, base, target) = (exe.to_path_buf(), base.to_string(), url.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .arg("--no-color")
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("{base}/api/openapi.json")])
            .args(["--url", &target])
            .args(seed_args())
            .args(&extra)
            .current_dir(workdir.path())
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    println!("schemathesis on {url} took {:.0?}", started.elapsed());
    out
}
