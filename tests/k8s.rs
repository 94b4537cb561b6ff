//! The Kubernetes manifests (`deploy/k8s`), validated offline: the example
//! overlay and two worker builds (the committed `workers/example-1` and one
//! written by `scripts/k8s-rollout.sh new`) rendered by `kubectl kustomize`,
//! checked against the Kubernetes API schemas by `kubernetes-validate` and
//! against security and reliability policies by `checkov`, with 0 failures.
//! Both come from PyPI (`scripts/install-prereqs.sh`, pinned); without one
//! this test fails, it does not skip. Each tool is bounded by a deadline.

#[path = "support/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(45);
const BUILDS: [&str; 2] = ["example-1", "example-2"];
const IMAGE_1: &str = "registry.example.com/flightctl@sha256:0000000000000000000000000000000000000000000000000000000000000000";
const IMAGE_2: &str = "registry.example.com/flightctl@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flightctl-k8s-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `scripts/k8s-rollout.sh ARGS`: its exit status and its output.
fn rollout_script(args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(repo_root().join("scripts/k8s-rollout.sh"));
    cmd.args(args).current_dir(repo_root());
    let out = tools::run_bounded("scripts/k8s-rollout.sh", cmd, WITHIN);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `dir` as `kubectl kustomize` renders it.
fn kustomize(dir: &Path) -> String {
    let kubectl = tools::tool("kubectl", "apt-get install kubectl");
    let mut cmd = Command::new(kubectl);
    cmd.arg("kustomize").arg(dir);
    let out = tools::run_bounded("kubectl kustomize", cmd, WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl kustomize {dir:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// A copy of `deploy/k8s` in which the script wrote both example builds
/// (example-1 again, to compare with the committed one): its example overlay.
fn overlay_with_builds() -> (PathBuf, PathBuf) {
    let dir = scratch();
    copy_tree(&repo_root().join("deploy/k8s"), &dir.join("k8s"));
    let overlay = dir.join("k8s/overlays/example");
    std::fs::remove_dir_all(overlay.join("workers/example-1")).unwrap();
    let overlay_arg = overlay.to_str().unwrap();
    for (build, image) in BUILDS.iter().zip([IMAGE_1, IMAGE_2]) {
        let (ok, text) = rollout_script(&["new", overlay_arg, build, image]);
        assert!(ok, "scripts/k8s-rollout.sh new {build}: {text}");
    }
    (dir, overlay)
}

/// The example overlay and both worker builds as `kubectl kustomize`
/// renders them, in one file.
fn render() -> (PathBuf, String) {
    let (dir, overlay) = overlay_with_builds();
    let mut yaml = kustomize(&overlay);
    for build in BUILDS {
        yaml.push_str("---\n");
        yaml.push_str(&kustomize(&overlay.join("workers").join(build)));
    }
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
    find(&docs, "HorizontalPodAutoscaler", "flightctl-serve");
    find(&docs, "PodDisruptionBudget", "flightctl-serve");
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

/// The admin port (the codec and the metrics) admits pods of flightctl's
/// own namespace only, and only those labelled for it (the operators'
/// proxy, Prometheus): a peer with `namespaceSelector: {}` would admit a
/// labelled pod of any namespace, which anyone with a namespace can make.
#[test]
fn the_admin_port_admits_only_labelled_pods_of_its_own_namespace() {
    let (_, yaml) = render();
    let docs = docs(&yaml);
    let admin_port: u64 = find(&docs, "ConfigMap", "flightctl-config")["data"]["ADMIN_PORT"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .expect("ADMIN_PORT");
    let policy = find(&docs, "NetworkPolicy", "flightctl");
    let namespace = policy["metadata"]["namespace"].as_str().unwrap();
    let rules: Vec<&serde_yaml::Value> = policy["spec"]["ingress"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|r| {
            r["ports"]
                .as_sequence()
                .is_some_and(|p| p.iter().any(|p| p["port"].as_u64() == Some(admin_port)))
        })
        .collect();
    assert_eq!(rules.len(), 1, "one rule opens the admin port: {rules:?}");
    let peers = rules[0]["from"].as_sequence().expect("from");
    assert!(!peers.is_empty());
    for peer in peers {
        let labels = peer["podSelector"]["matchLabels"]
            .as_mapping()
            .unwrap_or_else(|| panic!("a peer selects pods by label: {peer:?}"));
        assert!(!labels.is_empty(), "{peer:?}");
        match &peer["namespaceSelector"] {
            serde_yaml::Value::Null => {} // the policy's own namespace
            selector => assert_eq!(
                selector["matchLabels"]["kubernetes.io/metadata.name"].as_str(),
                Some(namespace),
                "a peer of another namespace: {peer:?}"
            ),
        }
    }
}

/// Behind an ingress every customer's connection comes from the ingress
/// controller: the ConfigMap names its network in TRUSTED_PROXIES (with a
/// comment saying to set it to the cluster's), so per-client limits see
/// customers, not one client.
#[test]
fn trusted_proxies_name_the_ingress_network() {
    let (_, yaml) = render();
    let docs = docs(&yaml);
    let proxies = find(&docs, "ConfigMap", "flightctl-config")["data"]["TRUSTED_PROXIES"]
        .as_str()
        .expect("TRUSTED_PROXIES")
        .to_string();
    assert!(!proxies.trim().is_empty(), "TRUSTED_PROXIES is empty");
    flightctl::config::TrustedProxies::parse(&proxies)
        .unwrap_or_else(|e| panic!("TRUSTED_PROXIES={proxies:?} does not parse: {e}"));
    let source =
        std::fs::read_to_string(repo_root().join("deploy/k8s/base/configmap.yaml")).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("TRUSTED_PROXIES:"))
        .unwrap();
    let comment: String = lines[..at]
        .iter()
        .rev()
        .take_while(|l| l.trim_start().starts_with('#'))
        .map(|l| l.to_lowercase())
        .collect();
    assert!(
        comment.contains("ingress"),
        "the comment above TRUSTED_PROXIES names the ingress: {comment}"
    );
}

/// Prometheus (the Prometheus Operator's ServiceMonitor) scrapes serve's
/// metrics on the admin Service, where the public listener no longer
/// serves them.
#[test]
fn the_service_monitor_scrapes_the_admin_listener() {
    let (_, yaml) = render();
    let docs = docs(&yaml);
    let text =
        std::fs::read_to_string(repo_root().join("deploy/k8s/monitoring/service-monitor.yaml"))
            .expect("deploy/k8s/monitoring/service-monitor.yaml");
    let monitor: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(monitor["kind"], "ServiceMonitor");
    let admin = find(&docs, "Service", "flightctl-admin");
    assert!(
        selects(&monitor["spec"]["selector"], &admin["metadata"]["labels"]),
        "the ServiceMonitor selects flightctl-admin: {monitor:?}"
    );
    let serve = find(&docs, "Service", "flightctl-serve");
    assert!(
        !selects(&monitor["spec"]["selector"], &serve["metadata"]["labels"]),
        "the ServiceMonitor does not select the public Service"
    );
    let endpoints = monitor["spec"]["endpoints"].as_sequence().unwrap();
    let ports: Vec<&str> = admin["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for endpoint in endpoints {
        let port = endpoint["port"].as_str().unwrap();
        assert!(ports.contains(&port), "{port} is a port of flightctl-admin");
        assert_eq!(endpoint["path"], "/metrics");
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

/// The label every object of one worker build carries: its build id.
const BUILD_LABEL: &str = "flightctl.io/build";

fn is_worker(d: &serde_yaml::Value) -> bool {
    d["kind"] == "Deployment" && d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
}

/// Whether a `matchLabels` selector selects pods labelled `labels`.
fn selects(selector: &serde_yaml::Value, labels: &serde_yaml::Value) -> bool {
    selector["matchLabels"]
        .as_mapping()
        .expect("a matchLabels selector")
        .iter()
        .all(|(k, v)| &labels[k] == v)
}

/// The container's `WORKER_BUILD_ID` comes from the pod's build label, so
/// a pod can never poll as another build than its Deployment's.
fn assert_build_from_label(pod: &serde_yaml::Value, what: &str) {
    let env = pod["containers"][0]["env"].as_sequence().unwrap();
    let build = env
        .iter()
        .find(|e| e["name"] == "WORKER_BUILD_ID")
        .unwrap_or_else(|| panic!("{what} sets WORKER_BUILD_ID"));
    assert_eq!(
        build["valueFrom"]["fieldRef"]["fieldPath"],
        format!("metadata.labels['{BUILD_LABEL}']").as_str(),
        "{what}"
    );
}

/// Issue 23 (5): the workers ran as one Deployment `flightctl-worker` with
/// RollingUpdate, which stopped the old build's pods while bookings pinned
/// to it still ran. Now each build is its own Deployment, which nothing
/// else replaces, scales to zero or drains to zero.
#[test]
fn each_worker_build_runs_its_own_deployment_that_nothing_scales_to_zero() {
    let (dir, overlay) = overlay_with_builds();
    let shared = docs(&kustomize(&overlay));
    assert!(
        !shared.iter().any(is_worker),
        "the environment's overlay has no worker Deployment of its own"
    );
    for d in &shared {
        let text = serde_yaml::to_string(d).unwrap();
        assert!(!text.contains("flightctl-worker"), "{text}");
    }
    let mut pods = Vec::new();
    for build in BUILDS {
        let docs = docs(&kustomize(&overlay.join("workers").join(build)));
        let workers: Vec<_> = docs.iter().filter(|d| is_worker(d)).collect();
        assert_eq!(workers.len(), 1, "one worker Deployment per build");
        let deployment = workers[0];
        let name = format!("flightctl-worker-{build}");
        assert_eq!(deployment["metadata"]["name"], name.as_str());
        for d in &docs {
            assert_eq!(d["metadata"]["labels"][BUILD_LABEL], build, "{d:?}");
        }
        let spec = &deployment["spec"];
        assert_eq!(spec["selector"]["matchLabels"][BUILD_LABEL], build);
        let template = &spec["template"];
        assert_eq!(template["metadata"]["labels"][BUILD_LABEL], build);
        assert_build_from_label(&template["spec"], &name);
        // A rolling update replaces pods of this build only (same label,
        // same image), and never goes below the count.
        assert_eq!(spec["strategy"]["type"], "RollingUpdate");
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        let grace = template["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap();
        assert!(grace >= 30, "the worker's grace covers its drain: {grace}");

        let budget = find(&docs, "PodDisruptionBudget", &name);
        assert!(budget["spec"]["minAvailable"].as_u64() >= Some(1));
        assert!(selects(
            &budget["spec"]["selector"],
            &template["metadata"]["labels"]
        ));
        let scaled = find(&docs, "ScaledObject", &name);
        assert_eq!(scaled["spec"]["scaleTargetRef"]["name"], name.as_str());
        assert!(scaled["spec"]["minReplicaCount"].as_u64() >= Some(1));
        let trigger = &scaled["spec"]["triggers"][0];
        assert_eq!(trigger["type"], "temporal");
        assert_eq!(trigger["metadata"]["workerDeploymentBuildId"], build);
        assert_eq!(
            trigger["metadata"]["workerDeploymentNameFromEnv"],
            "WORKER_DEPLOYMENT_NAME"
        );
        let job = find(&docs, "Job", &format!("flightctl-set-current-{build}"));
        assert_build_from_label(&job["spec"]["template"]["spec"], "the set-current Job");
        assert!(
            job["spec"]["ttlSecondsAfterFinished"].is_null(),
            "a finished set-current Job stays, so applying its build again never reruns it"
        );
        pods.push((
            build,
            spec["selector"].clone(),
            budget["spec"]["selector"].clone(),
            template["metadata"]["labels"].clone(),
        ));
    }
    // No build's Deployment or budget selects another build's pods.
    for (build, deployment, budget, _) in &pods {
        for (other, _, _, labels) in pods.iter().filter(|p| p.0 != *build) {
            assert!(
                !selects(deployment, labels),
                "{build} selects {other}'s pods"
            );
            assert!(
                !selects(budget, labels),
                "{build}'s budget counts {other}'s pods"
            );
        }
    }
    // The committed example build is what the script writes.
    let example = "overlays/example/workers/example-1/kustomization.yaml";
    assert_eq!(
        std::fs::read_to_string(dir.join("k8s").join(example)).unwrap(),
        std::fs::read_to_string(repo_root().join("deploy/k8s").join(example)).unwrap(),
        "deploy/k8s/{example} is not what `scripts/k8s-rollout.sh new` writes"
    );
}

/// A build is written once, with a build id that fits every object name
/// and an image by digest; the script refuses anything else.
#[test]
fn the_rollout_script_writes_a_build_once_and_refuses_a_bad_one() {
    let (_dir, overlay) = overlay_with_builds();
    let overlay = overlay.to_str().unwrap();
    let refusals = [
        (
            ["new", overlay, "example-1", IMAGE_1],
            "a build is written once",
        ),
        (["new", overlay, "Example-3", IMAGE_1], "build id"),
        (["new", overlay, "-3", IMAGE_1], "build id"),
        (
            [
                "new",
                overlay,
                "example-3",
                "registry.example.com/flightctl:latest",
            ],
            "image",
        ),
    ];
    for (args, says) in refusals {
        let (ok, text) = rollout_script(&args);
        assert!(!ok && text.contains(says), "{args:?}: {text}");
    }
    let (ok, text) = rollout_script(&["roll", overlay, "example-9"]);
    assert!(!ok && text.contains("no such build"), "{text}");
}
