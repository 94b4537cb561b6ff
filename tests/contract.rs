//! The API contract, snapshotted: the OpenAPI document's operations (method
//! and path) and the error code strings it says the API can send (its
//! `ErrorCode` enum) must equal the checked-in lists in `tests/contract/`,
//! one entry a line, sorted. A refactor changes neither; a deliberate
//! contract change rewrites the files with
//! `UPDATE_CONTRACT=1 cargo test --test contract` and shows up in review.
//!
//! The document is the one `serve` sends at `/api/openapi.json`
//! (`tests/openapi.rs` checks the served copy equals this one).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn document() -> Value {
    flightctl::api::openapi_document().clone()
}

/// `METHOD /path`, one per operation.
fn operations(doc: &Value) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            ops.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    ops
}

fn error_codes(doc: &Value) -> BTreeSet<String> {
    doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("the document enumerates its error codes")
        .iter()
        .map(|c| c.as_str().expect("a code is a string").to_string())
        .collect()
}

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/contract")
        .join(name)
}

/// Compares `actual` with the snapshot `name`, printing what was added and
/// what went missing; with `UPDATE_CONTRACT=1` it rewrites the snapshot.
fn assert_matches_snapshot(name: &str, actual: &BTreeSet<String>) {
    let path = snapshot_path(name);
    if std::env::var_os("UPDATE_CONTRACT").is_some() {
        let text: String = actual.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).expect("write the snapshot");
        return;
    }
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let expected: BTreeSet<String> = text.lines().map(str::to_string).collect();
    let added: Vec<_> = actual.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(actual).collect();
    let mut report = String::new();
    for line in &missing {
        report.push_str(&format!("- {line}\n"));
    }
    for line in &added {
        report.push_str(&format!("+ {line}\n"));
    }
    assert!(
        report.is_empty(),
        "the API contract changed against {} (- in the snapshot only, + in the \
         document only):\n{report}\nA refactor must not change it; if the change \
         is deliberate, rerun with UPDATE_CONTRACT=1 and commit the file.",
        path.display()
    );
    let sorted: Vec<&str> = text.lines().collect();
    let mut resorted = sorted.clone();
    resorted.sort_unstable();
    resorted.dedup();
    assert_eq!(
        sorted,
        resorted,
        "{}: keep it sorted, no duplicates",
        path.display()
    );
}

#[test]
fn the_documented_operations_match_the_snapshot() {
    assert_matches_snapshot("paths.txt", &operations(&document()));
}

#[test]
fn the_error_codes_match_the_snapshot() {
    assert_matches_snapshot("error-codes.txt", &error_codes(&document()));
}
