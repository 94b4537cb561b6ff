//! schemathesis against a running `flightctl serve` + worker (real Postgres,
//! Redis and Temporal), with the document the server serves and every
//! check on: no 5xx, no answer outside the document. Its settings, each
//! with its reason, are in `schemathesis.toml`. Two runs: the codec's
//! operations against the admin listener, which serves them, and every other
//! against the public one. schemathesis comes from
//! PyPI (`scripts/install-prereqs.sh`); without it this test fails, it
//! does not skip.

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
    let env = [("RUST_LOG", "warn"), ("ADMIN_PORT", admin_port.as_str())];
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

    let workdir = tempfile::tempdir().unwrap();
    let config = support::repo_root().join("schemathesis.toml");
    let document = format!("{base}/api/openapi.json");
    let codec = "^/codec/";
    let mut failed = Vec::new();
    // The codec's operations have no links: no stateful phase there.
    let all = "examples,coverage,fuzzing,stateful";
    for (url, filter, phases) in [
        (&base, "--exclude-path-regex", all),
        (&admin, "--include-path-regex", "examples,coverage,fuzzing"),
    ] {
        let started = Instant::now();
        let mut cmd = Command::new(&exe);
        cmd.arg("--no-color")
            .arg("--config-file")
            .arg(&config)
            .args(["run", &document])
            // Every check is on in the config file (`--checks all` would
            // turn on again the one it turns off, with its reason).
            .args(["--url", url])
            .args([filter, codec])
            .args(["--phases", phases])
            // Hypothesis keeps its example database in the working directory.
            .current_dir(workdir.path());
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("schemathesis runs"))
            .await
            .unwrap();
        println!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        println!("schemathesis on {url} took {:.0?}", started.elapsed());
        if !out.status.success() {
            failed.push(format!("{url}: exit {:?}", out.status.code()));
        }
    }
    let serve_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !serve_log.contains("panicked"),
        "serve panicked:\n{serve_log}"
    );
    assert!(
        failed.is_empty(),
        "schemathesis found failures ({failed:?}); serve's log:\n{}",
        serve_log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
