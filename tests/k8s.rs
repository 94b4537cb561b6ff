//! The Kubernetes manifests (`deploy/k8s`), validated offline: the example
//! overlay rendered by `kubectl kustomize`, checked against the Kubernetes
//! API schemas by `kubernetes-validate` and against security and
//! reliability policies by `checkov`, with 0 failures. Both come from PyPI
//! (`scripts/install-prereqs.sh`, pinned); without one this test fails, it
//! does not skip. Each tool is bounded by a deadline.

#[path = "support/tools.rs"]
mod tools;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(45);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The example overlay as `kubectl kustomize` renders it, in a file.
fn render() -> (PathBuf, String) {
    let kubectl = tools::tool("kubectl", "apt-get install kubectl");
    let mut cmd = Command::new(kubectl);
    cmd.args(["kustomize", "deploy/k8s/overlays/example"])
        .current_dir(repo_root());
    let out = tools::run_bounded("kubectl kustomize", cmd, WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl kustomize: {stderr}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    let dir = std::env::temp_dir().join(format!("flightctl-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("example.yaml");
    std::fs::write(&file, &yaml).unwrap();
    (file, yaml)
}

fn docs(yaml: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .collect()
}

fn find<'a>(docs: &'a [serde_yaml::Value], kind: &str, name: &str) -> &'a serde_yaml::Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{kind}/{name} is not rendered"))
}

#[test]
fn the_example_overlay_renders_what_a_deployment_needs() {
    let (_, yaml) = render();
    let docs = docs(&yaml);
    assert!(
        docs.iter().all(|d| d["kind"].as_str() != Some("Secret")),
        "secrets are referenced, never inlined"
    );
    for d in docs.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(d["metadata"]["namespace"], "flightctl", "{d:?}");
    }
    let serve = &find(&docs, "Deployment", "flightctl-serve")["spec"]["template"]["spec"];
    let container = &serve["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let worker = &find(&docs, "Deployment", "flightctl-worker")["spec"]["template"]["spec"];
    let grace = worker["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace >= 30, "the worker's grace covers its drain: {grace}");
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "Deployment" || d["kind"] == "Job")
    {
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{d:?}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        assert!(
            c["image"].as_str().unwrap().contains("@sha256:"),
            "image by digest: {c:?}"
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert!(c["resources"]["limits"]["memory"].is_string(), "{c:?}");
    }
    let scaled = find(&docs, "ScaledObject", "flightctl-worker");
    assert_eq!(scaled["spec"]["triggers"][0]["type"], "temporal");
    find(&docs, "HorizontalPodAutoscaler", "flightctl-serve");
    find(&docs, "PodDisruptionBudget", "flightctl-serve");
    find(&docs, "PodDisruptionBudget", "flightctl-worker");
    find(&docs, "Job", "flightctl-migrate");
}

/// The payload codec decrypts every Temporal payload: it is on serve's admin
/// port, which only the Service `flightctl-admin` targets, no Ingress
/// routes to, and the NetworkPolicy admits only from labelled pods.
#[test]
fn the_codec_is_reached_only_through_the_admin_service() {
    let (_, yaml) = render();
    let docs = docs(&yaml);
    let config = &find(&docs, "ConfigMap", "flightctl-config")["data"];
    assert_ne!(config["CODEC_ON_PUBLIC_LISTENER"].as_str(), Some("true"));
    let port = |name: &str| -> u64 {
        config[name]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name} in the ConfigMap"))
    };
    let (server_port, admin_port) = (port("SERVER_PORT"), port("ADMIN_PORT"));
    assert_eq!(
        config["ADMIN_HOST"], "0.0.0.0",
        "the Service reaches the pod IP"
    );
    let serve = &find(&docs, "Deployment", "flightctl-serve")["spec"]["template"]["spec"];
    let ports = serve["containers"][0]["ports"].as_sequence().unwrap();
    let named = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
    };
    assert_eq!(named("http"), Some(server_port));
    assert_eq!(named("admin"), Some(admin_port));

    let targets = |service: &str| -> Vec<String> {
        find(&docs, "Service", service)["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| match &p["targetPort"] {
                serde_yaml::Value::Number(n) => n.to_string(),
                other => other.as_str().unwrap().to_string(),
            })
            .collect()
    };
    assert_eq!(targets("flightctl-serve"), ["http"]);
    assert_eq!(targets("flightctl-admin"), ["admin"]);
    for ingress in docs.iter().filter(|d| d["kind"] == "Ingress") {
        let text = serde_yaml::to_string(ingress).unwrap();
        assert!(!text.contains("flightctl-admin"), "{text}");
    }

    let policy = find(&docs, "NetworkPolicy", "flightctl");
    for rule in policy["spec"]["ingress"].as_sequence().unwrap() {
        let ports: Vec<u64> = rule["ports"]
            .as_sequence()
            .expect("every rule names its ports (none would admit them all)")
            .iter()
            .map(|p| p["port"].as_u64().unwrap())
            .collect();
        if ports.contains(&admin_port) {
            assert_eq!(ports, [admin_port], "the admin port has a rule of its own");
            let from = rule["from"].as_sequence().map_or(0, Vec::len);
            assert!(
                from > 0,
                "the admin port is not open to every pod: {rule:?}"
            );
        }
    }
}

#[test]
fn kubernetes_validate_accepts_the_example_overlay() {
    let (file, _) = render();
    let exe = tools::tool(
        "kubernetes-validate",
        "python3 -m pip install kubernetes-validate==1.37.0",
    );
    let mut cmd = Command::new(exe);
    cmd.arg("--strict").arg(&file);
    let out = tools::run_bounded("kubernetes-validate", cmd, WITHIN);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate: {text}");
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert!(passed >= 10, "{passed} resources validated: {text}");
    // Only KEDA's ScaledObject, a CRD, has no schema in the tool: allowed.
    for line in text
        .lines()
        .filter(|l| !l.contains(" passed for resource "))
    {
        assert!(
            line.trim().is_empty()
                || line.contains(
                    "Couldn't find schema for kind ScaledObject with api version keda.sh/v1alpha1"
                ),
            "kubernetes-validate: {line}\n{text}"
        );
    }
}

#[test]
fn checkov_finds_no_failure_in_the_example_overlay() {
    let (file, _) = render();
    let exe = tools::tool("checkov", "python3 -m pip install checkov==3.3.30");
    let mut cmd = Command::new(exe);
    // Offline: no policy download, no platform look-up of guidelines.
    cmd.args([
        "--skip-download",
        "--framework",
        "kubernetes",
        "--output",
        "json",
        "--file",
    ])
    .arg(&file)
    .env("BC_SKIP_MAPPING", "TRUE")
    .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false");
    let out = tools::run_bounded("checkov", cmd, WITHIN);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failures:\n{}",
        failed.join("\n")
    );
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(
        summary["passed"].as_u64() > Some(100),
        "checkov checked little: {summary}"
    );
    for skip in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let reason = skip["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(reason.len() > 20, "a skip without its reason: {skip}");
    }
}
