//! Security headers and HEAD, against the real server, walking the route
//! table (`flightctl::api::ROUTES`): every HTML page sends a
//! Content-Security-Policy without inline script and is not framed, every
//! answer `nosniff` and a referrer policy; every GET route answers HEAD as
//! GET without a body, event streams included (ended after the headers).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use flightctl::domain::FlightId;
use flightctl::store::orders;
use reqwest::header::HeaderMap;
use support::{FL101, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The seeded app, with one live order (a row, no workflow: every read is
/// Postgres) whose id fills `{id}` on the order routes.
async fn app_with_order() -> (TestApp, Uuid) {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    let order = Uuid::new_v4();
    let flight: FlightId = FL101.parse().unwrap();
    let row = support::order_row(order.into(), flight, &["3C"]);
    orders::save(&app.pool, &row, None).await.unwrap();
    (app, order)
}

/// A route's path with its parameters filled: the seeded flight, the order,
/// a booking reference (unknown: 404 is an answer too), a UI module, and a
/// fresh UUID for any other; the page's stream follows the flight and the
/// order.
fn concrete(path: &str, order: Uuid) -> String {
    let id = if path.starts_with("/api/orders/") {
        order.to_string()
    } else {
        FL101.to_string()
    };
    let mut filled = path
        .replace("{id}", &id)
        .replace("{reference}", "K7QX2M")
        .replace("{file}", "app.js");
    while let (Some(start), Some(end)) = (filled.find('{'), filled.find('}')) {
        filled.replace_range(start..=end, &Uuid::new_v4().to_string());
    }
    if filled == "/api/events" {
        format!("{filled}?flight={FL101}&order={order}")
    } else {
        filled
    }
}

fn get_paths(order: Uuid) -> Vec<String> {
    flightctl::api::ROUTES
        .iter()
        .filter(|r| r.method == "get")
        .map(|r| concrete(r.path, order))
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `directive -> sources` of a Content-Security-Policy.
fn csp(policy: &str) -> BTreeMap<String, Vec<String>> {
    policy
        .split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace();
            let name = words.next()?.to_ascii_lowercase();
            Some((name, words.map(str::to_string).collect()))
        })
        .collect()
}

/// What every answer carries, HTML or not.
fn assert_everywhere(what: &str, headers: &HeaderMap) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("strict-origin-when-cross-origin"),
        "{what}"
    );
}

/// What an HTML page carries: a policy without inline script or style,
/// nothing from elsewhere, and no framing.
fn assert_page_headers(what: &str, headers: &HeaderMap) {
    let policy = header(headers, "content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let directives = csp(policy);
    let sources = |name: &str| {
        directives
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} in {policy}"))
    };
    assert_eq!(sources("default-src"), &["'self'"], "{what}: {policy}");
    for name in ["script-src", "style-src"] {
        let list = sources(name);
        for unsafe_source in [
            "'unsafe-inline'",
            "'unsafe-eval'",
            "*",
            "data:",
            "http:",
            "https:",
        ] {
            assert!(
                !list.iter().any(|s| s == unsafe_source),
                "{what}: {name} allows {unsafe_source}: {policy}"
            );
        }
    }
    assert_eq!(sources("frame-ancestors"), &["'none'"], "{what}: {policy}");
    assert_eq!(sources("object-src"), &["'none'"], "{what}: {policy}");
    assert_eq!(sources("base-uri"), &["'none'"], "{what}: {policy}");
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
}

/// The attribute names of each start tag of `html` (lower case), comments
/// skipped and quoted values stepped over.
fn attribute_names(html: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.split_once("-->").map_or("", |(_, after)| after);
            continue;
        }
        // The tag's name, then its attributes up to `>`.
        let mut chars = rest
            .char_indices()
            .skip_while(|(_, c)| !c.is_whitespace() && *c != '>');
        let mut name = String::new();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '>' => {
                    end = i + 1;
                    break;
                }
                '"' | '\'' => {
                    for (_, q) in chars.by_ref() {
                        if q == c {
                            break;
                        }
                    }
                }
                c if c.is_whitespace() || c == '=' || c == '/' => {
                    if !name.is_empty() {
                        names.push(std::mem::take(&mut name).to_ascii_lowercase());
                    }
                }
                c => name.push(c),
            }
        }
        if !name.is_empty() {
            names.push(name.to_ascii_lowercase());
        }
        rest = &rest[end.min(rest.len())..];
    }
    names
}

/// What the policy would refuse, found in the page itself: an inline
/// script, a style element or attribute, an event-handler attribute, a
/// `javascript:` URL.
fn assert_nothing_inline(what: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    for (at, _) in lower.match_indices("<script") {
        let tag = &lower[at..at + lower[at..].find('>').unwrap()];
        assert!(tag.contains(" src="), "{what}: an inline script: {tag}>");
    }
    assert!(!lower.contains("<style"), "{what}: a <style> element");
    assert!(!lower.contains("javascript:"), "{what}: a javascript: URL");
    let names = attribute_names(html);
    assert!(
        names.contains(&"data-testid".to_string()) || names.contains(&"href".to_string()),
        "{what}: no attributes read: {names:?}"
    );
    for name in names {
        assert!(
            name != "style" && !name.starts_with("on"),
            "{what}: an inline `{name}` attribute"
        );
    }
}

#[test]
fn attributes_are_read_as_a_browser_would() {
    let names = attribute_names(
        "<!-- once <b onclick=x> --><a href=\"/x y\" data-x='on z'>on</a><p hidden onload=\"f()\">",
    );
    assert_eq!(names, ["href", "data-x", "hidden", "onload"]);
}

#[tokio::test]
async fn every_page_has_a_policy_without_inline_script_and_every_answer_nosniff() {
    let (app, order) = app_with_order().await;
    let mut pages = Vec::new();
    for path in get_paths(order) {
        let resp = app.http.get(app.url(&path)).send().await.unwrap();
        let headers = resp.headers().clone();
        assert_everywhere(&format!("GET {path}"), &headers);
        let html = header(&headers, "content-type").is_some_and(|t| t.starts_with("text/html"));
        if html {
            assert_page_headers(&format!("GET {path}"), &headers);
            assert_nothing_inline(&path, &resp.text().await.unwrap());
            pages.push(path);
        } else {
            // A JSON answer is no page: no policy needed, none sent.
            assert!(
                header(&headers, "content-security-policy").is_none(),
                "GET {path}"
            );
        }
    }
    for page in ["/", "/manage", "/api/docs"] {
        assert!(
            pages.iter().any(|p| p == page),
            "{page} is an HTML route: {pages:?}"
        );
    }
    // Answers no handler wrote: a 404, a 405, a refused body.
    for (method, path) in [
        (reqwest::Method::GET, "/no/such/page"),
        (reqwest::Method::PATCH, "/api/flights"),
        (reqwest::Method::POST, "/api/orders"),
    ] {
        let resp = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{method} {path}");
        assert_everywhere(&format!("{method} {path}"), resp.headers());
    }
}

/// One HEAD over a raw connection (`Connection: close`), so what the server
/// writes after the headers is seen as sent (an HTTP client drops it) and a
/// body the server drains forever shows as a timeout: the status line's
/// code, the headers (lower-case names) and any bytes after them.
async fn raw_head(port: u16, path: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("HEAD {path} did not end within 10 s"))
        .unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("HEAD {path}: no end of headers in {answer:?}"));
    let head = String::from_utf8(answer[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, answer[end + 4..].to_vec())
}

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn head_answers_every_get_route_as_get_without_a_body() {
    let (app, order) = app_with_order().await;
    let mut streams = 0;
    for path in get_paths(order) {
        let (status, headers, body) = raw_head(port(&app), &path).await;
        assert_ne!(status, 405, "HEAD {path}");
        assert!(
            body.is_empty(),
            "HEAD {path} sent a body: {}",
            String::from_utf8_lossy(&body)
        );
        let get = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(status, get.status().as_u16(), "HEAD {path} and GET");
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            header(get.headers(), "content-type"),
            "HEAD {path} and GET"
        );
        for name in [
            "x-content-type-options",
            "referrer-policy",
            "content-security-policy",
        ] {
            assert_eq!(
                headers.get(name).map(String::as_str),
                header(get.headers(), name),
                "HEAD {path}: {name}"
            );
        }
        if headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"))
        {
            streams += 1;
        }
    }
    assert!(
        streams >= 4,
        "the event streams (4 when this was written) answered HEAD: {streams}"
    );
}

/// Where the body is the same on every request, HEAD says its length as
/// GET does.
#[tokio::test]
async fn head_tells_the_length_get_sends() {
    let (app, _) = app_with_order().await;
    for path in [
        "/api/flights".to_string(),
        format!("/api/flights/{FL101}"),
        "/livez".to_string(),
        "/".to_string(),
        "/api/docs".to_string(),
        "/assets/app.js".to_string(),
    ] {
        let (status, headers, _) = raw_head(port(&app), &path).await;
        let get = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(status, get.status().as_u16(), "HEAD {path} and GET");
        assert_eq!(status, 200, "{path}");
        let length = get.bytes().await.unwrap().len().to_string();
        assert_eq!(headers.get("content-length"), Some(&length), "HEAD {path}");
    }
    // Unknown: HEAD is 404 as GET is.
    let missing = format!("/api/flights/{}", Uuid::new_v4());
    let (status, _, body) = raw_head(port(&app), &missing).await;
    assert_eq!((status, body.len()), (404, 0));
}

#[tokio::test]
async fn another_method_names_head_beside_get() {
    let app = TestApp::spawn(support::isolated_settings(false).await).await;
    for (path, allow) in [
        ("/api/flights", "GET, HEAD"),
        ("/api/orders", "POST"),
        (
            "/api/orders/00000000-0000-0000-0000-000000000000",
            "GET, HEAD, DELETE",
        ),
    ] {
        let resp = app.http.patch(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 405, "{path}");
        assert_eq!(header(resp.headers(), "allow"), Some(allow), "{path}");
    }
    // HEAD where only POST is served: 405 too.
    let (status, headers, _) = raw_head(port(&app), "/api/orders").await;
    assert_eq!(
        (status, headers.get("allow").map(String::as_str)),
        (405, Some("POST"))
    );
}
