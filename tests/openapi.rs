//! The OpenAPI document: it covers exactly the routes `serve` registers, is
//! served at `/api/openapi.json`, and its reference page at `/api/docs`.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::TestApp;

/// The document as JSON, as the server renders it.
fn document() -> Value {
    flightctl::api::openapi_document().clone()
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

/// `ROUTES` is what `serve` registers (the route table drives both), so a
/// route added without documentation, or documented under another path or
/// method than it is served at, fails here. `HEAD` mirrors GET: the table
/// serves it beside every GET with the GET handler (`tests/headers.rs`
/// sends it to each), so the table lists GET only and the document states
/// the rule once in its description instead of doubling every GET.
#[test]
fn the_document_has_exactly_the_registered_routes() {
    let registered: BTreeSet<(String, String)> = flightctl::api::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(
        registered.len(),
        flightctl::api::ROUTES.len(),
        "a route is registered twice"
    );
    assert!(
        registered.iter().all(|(method, _)| method != "head"),
        "HEAD is served beside every GET by the route table: list GET only"
    );
    let doc = document();
    let documented = operations(&doc);
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(
        description.contains("Every GET operation also answers `HEAD`"),
        "the document states the HEAD rule: {description}"
    );
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty() && unregistered.is_empty(),
        "registered but not in the document: {undocumented:?}; \
         in the document but not registered: {unregistered:?}"
    );
    for spec_route in [
        ("get", "/health"),
        ("get", "/livez"),
        ("get", "/readyz"),
        ("get", "/api/flights"),
        ("get", "/api/flights/{id}"),
        ("post", "/api/orders"),
        ("put", "/api/orders/{id}/seats"),
        ("get", "/api/orders/{id}/status"),
        ("post", "/api/orders/{id}/pay"),
        ("delete", "/api/orders/{id}"),
        ("get", "/api/orders/{id}/events"),
        ("get", "/api/flights/{id}/events"),
        ("get", "/api/flights/events"),
        ("get", "/api/openapi.json"),
        ("get", "/api/docs"),
        ("put", "/api/orders/{id}/passengers"),
        ("post", "/api/bookings/lookup"),
        ("post", "/api/bookings/{reference}/cancel"),
    ] {
        let op = (spec_route.0.to_string(), spec_route.1.to_string());
        assert!(documented.contains(&op), "SPEC §6 route missing: {op:?}");
    }
}

/// `ROUTES` holds only if routes are registered through the table: no
/// `.service(`, `.route(`, `resource(` or route macro elsewhere in
/// `src/api/` (a route added the usual actix way would be served without
/// being documented).
#[test]
fn routes_are_registered_only_through_the_route_table() {
    let dir = support::repo_root().join("src/api");
    let needles = [
        ".service(",
        ".route(",
        "resource(",
        "#[get(",
        "#[post(",
        "#[put(",
        "#[delete(",
        "#[route(",
    ];
    let mut elsewhere = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // The table's own macro is where registration happens.
        let table = lines
            .iter()
            .position(|l| l.starts_with("macro_rules! route_table"))
            .map(|start| {
                let end = start + lines[start..].iter().position(|l| *l == "}").unwrap();
                start..=end
            });
        for (n, line) in lines.iter().enumerate() {
            let in_table = table.as_ref().is_some_and(|t| t.contains(&n));
            if !in_table && needles.iter().any(|needle| line.contains(needle)) {
                elsewhere.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        elsewhere.is_empty(),
        "register routes in `route_table!` (src/api/mod.rs), with #[utoipa::path] on the \
         handler:\n{}",
        elsewhere.join("\n")
    );
}

#[test]
fn the_document_describes_errors_headers_and_streams() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Error"]["properties"]["error"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    let codes: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("the error codes are enumerated")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "INVALID_SEATS",
        "FLIGHT_NOT_FOUND",
        "SEATS_UNAVAILABLE",
        "IDEMPOTENCY_KEY_REUSED",
        "SERVICE_BUSY",
        "INTERNAL",
    ] {
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    for (method, path) in [("post", "/api/orders"), ("post", "/api/orders/{id}/pay")] {
        let params = op(method, path)["parameters"].clone();
        assert!(
            params
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "{method} {path}: {params}"
        );
        let busy = &op(method, path)["responses"]["503"];
        assert!(busy["headers"]["Retry-After"].is_object(), "{busy}");
        assert!(op(method, path)["responses"]["500"].is_object());
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["headers"]["X-Request-Id"].is_object(),
                    "{method} {path} {status} lacks X-Request-Id"
                );
            }
        }
    }
    for path in [
        "/api/orders/{id}/events",
        "/api/flights/{id}/events",
        "/api/flights/events",
        "/api/events",
    ] {
        let ok = &op("get", path)["responses"]["200"];
        assert!(
            ok["content"]["text/event-stream"].is_object(),
            "{path}: {ok}"
        );
    }
}

#[tokio::test]
async fn the_document_and_its_reference_page_are_served() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let resp = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served, document());

    let resp = app.http.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("/assets/docs.js"), "{page}");
    for asset in ["/assets/docs.js", "/assets/docs.css"] {
        let resp = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{asset}");
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
}

/// The reference page in a real browser (Playwright, as `tests/browser.rs`):
/// it lists every operation and sends requests from its forms.
#[tokio::test]
async fn the_reference_page_sends_requests_from_a_browser() {
    let node = support::procs::find_bin("node", "FLIGHTCTL_TEST_NODE", &["/usr/bin/node"]);
    let chromium = support::procs::find_bin("chromium", "CHROMIUM", &["/usr/bin/chromium"]);
    let scripts = support::repo_root().join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "run scripts/install-prereqs.sh (npm install in tests/browser)"
    );
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let run = tokio::process::Command::new(node)
        .arg("docs.mjs")
        .current_dir(&scripts)
        .env("BASE_URL", &app.address)
        .env("CHROMIUM", chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("the page test finishes within 2 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
}

#[tokio::test]
async fn another_method_is_405_naming_the_allowed_ones() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let resp = app
        .http
        .patch(app.url("/api/orders/00000000-0000-0000-0000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD, DELETE");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "METHOD_NOT_ALLOWED");
}

/// Prints the document: `cargo test --test openapi print -- --ignored --nocapture`.
#[test]
#[ignore]
fn print() {
    println!("{}", serde_json::to_string_pretty(&document()).unwrap());
}
