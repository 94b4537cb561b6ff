//! Committed workflow histories (tests/histories/*.json) must replay against
//! today's workflow code: a change that would break running orders fails
//! here, without any server. Refresh them on purpose with
//! `FLIGHTCTL_RECORD_HISTORIES=$PWD/tests/histories cargo test --test booking_workflow -- recorded never_arrives`
//! and `--test abuse_holds spun` (a hold spun by changes until its cap), and
//! `--test bookings refund` and `--test refunds sold_nothing` for the
//! refund's. A change of the booking workflow ships as a new worker build
//! (Pinned): bookings started on the old build finish there, so the
//! fixtures are re-recorded with the change rather than kept per build.

mod support;

use temporalio_client::WorkflowHistory;

#[tokio::test]
async fn committed_histories_still_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for ending in [
        "confirmed",
        "cancelled",
        "expired",
        "expired-at-cap",
        "failed-payment",
        "failed-timeout",
        "never-created",
        "refunded",
        "refund-failed",
        "refunded-unsold",
    ] {
        let fixture = dir.join(format!("{ending}.json"));
        assert!(
            fixture.is_file(),
            "no recorded history {}",
            fixture.display()
        );
    }
    let replayer = support::replayer();
    for file in files {
        let history = WorkflowHistory::from_json(&std::fs::read(&file).unwrap()).unwrap();
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{} no longer replays: {e}", file.display()));
    }
}
