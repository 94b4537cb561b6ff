//! The flightctl image (SPEC §8), checked by reading the `Dockerfile` and
//! `.dockerignore` (no Docker engine needed): its stages, entrypoint, locked
//! release build, and a build context without build output or secrets.

#[path = "support/compose.rs"]
mod compose_file;

use compose_file::*;

/// One build stage: its base image, its name and its instructions as
/// `(KEYWORD, arguments)`, continuation lines joined.
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.instructions
            .iter()
            .filter(move |(k, _)| k == keyword)
            .map(|(_, args)| args.as_str())
    }

    fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last()
    }
}

fn dockerfile_stages() -> Vec<Stage> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in repo_file("Dockerfile").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => lines.push(std::mem::take(&mut current) + line),
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in lines {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let (keyword, args) = (keyword.to_uppercase(), args.trim().to_string());
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let image = words.iter().find(|w| !w.starts_with("--")).expect("image");
            let name = match words[..] {
                [.., as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push(Stage {
                image: image.to_string(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, args));
        }
    }
    stages
}

fn json_args(instruction: &str) -> Vec<String> {
    serde_json::from_str(instruction)
        .unwrap_or_else(|e| panic!("{instruction:?} is not the exec (JSON) form: {e}"))
}

/// `stage` with the stages it builds on (`FROM <stage>`) merged in: the
/// first one's base image and every instruction, in order.
fn flattened(stages: &[Stage], stage: &Stage) -> Stage {
    let mut merged = match stages
        .iter()
        .find(|s| s.name.as_deref() == Some(stage.image.as_str()))
    {
        Some(base) => flattened(stages, base),
        None => Stage {
            image: stage.image.clone(),
            name: None,
            instructions: Vec::new(),
        },
    };
    merged.name = stage.name.clone();
    merged
        .instructions
        .extend(stage.instructions.iter().cloned());
    merged
}

#[test]
fn image_entrypoint_is_the_flightctl_binary() {
    let stages = dockerfile_stages();
    let runtime = flattened(&stages, stages.last().expect("a build stage"));
    assert_eq!(runtime.image, "debian:bookworm-slim");
    let entrypoint = runtime.last("ENTRYPOINT").expect("an ENTRYPOINT");
    assert_eq!(json_args(entrypoint), ["/usr/local/bin/flightctl"]);
    assert_eq!(json_args(runtime.last("CMD").expect("a CMD")), ["serve"]);
    assert!(
        runtime
            .all("EXPOSE")
            .any(|ports| ports.split_whitespace().any(|p| p == "8080"))
    );
    let user = runtime
        .last("USER")
        .expect("a USER: the image runs as non-root");
    let user = user.split(':').next().unwrap_or_default();
    assert!(user != "root" && user != "0", "runs as {user}");
    assert_eq!(
        runtime.last("WORKDIR"),
        Some("/app"),
        "config/ is read from the workdir"
    );
    assert!(
        runtime
            .all("COPY")
            .any(|args| args == "config/ /app/config/")
    );
    assert!(
        runtime.all("RUN").any(|run| run.contains("curl")),
        "the compose healthcheck of the api uses curl"
    );
}

#[test]
fn builder_installs_protoc_and_builds_a_locked_release() {
    let stages = dockerfile_stages();
    let builder = stages
        .iter()
        .find(|s| s.name.as_deref() == Some("builder"))
        .expect("a stage named builder");
    assert!(
        builder.image.starts_with("rust:"),
        "builder is {}",
        builder.image
    );
    assert!(
        builder
            .all("RUN")
            .any(|run| run.contains("apt-get install") && run.contains("protobuf-compiler")),
        "the Temporal SDK needs protoc to build"
    );
    let build = builder
        .all("RUN")
        .find(|run| run.contains("cargo build"))
        .expect("a cargo build");
    for needed in [
        "--release",
        "--locked",
        "--mount=type=cache,target=/usr/local/cargo/registry",
    ] {
        assert!(build.contains(needed), "cargo build step lacks {needed}");
    }
    let runtime = stages.last().expect("a runtime stage");
    assert!(
        runtime
            .all("COPY")
            .any(|copy| copy.starts_with("--from=builder")
                && copy.ends_with("/usr/local/bin/flightctl")),
        "the runtime stage takes the binary from the builder"
    );
}

#[test]
fn prebuilt_target_differs_from_the_runtime_stage_only_in_the_binary() {
    let stages = dockerfile_stages();
    let runtime = stages.last().expect("a runtime stage");
    let prebuilt = stages
        .iter()
        .find(|s| s.name.as_deref() == Some("runtime-prebuilt"))
        .expect("a stage named runtime-prebuilt (tests/image.rs builds it)");
    assert_eq!(
        prebuilt.image, runtime.image,
        "both targets build on the same stage"
    );
    assert_eq!(
        prebuilt.instructions,
        [(
            "COPY".to_string(),
            "flightctl /usr/local/bin/flightctl".to_string()
        )],
        "runtime-prebuilt adds the context's binary and nothing else"
    );
    assert_eq!(
        runtime.instructions.len(),
        1,
        "the runtime stage adds the builder's binary and nothing else"
    );
}

#[test]
fn build_context_leaves_out_build_output_and_secrets() {
    let ignored: Vec<String> = repo_file(".dockerignore")
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for pattern in ["target", ".git", ".data", "**/node_modules", ".env"] {
        assert!(
            ignored.iter().any(|l| l == pattern),
            ".dockerignore must leave out {pattern}"
        );
    }
    for needed in ["src", "migrations", "config", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignored.iter().any(|l| l == needed),
            "{needed} is needed by the Dockerfile"
        );
    }
}
