//! podman for tests/image.rs: the repository's containers.conf, the base
//! image, the image built from the Dockerfile, and containers removed on
//! drop (even when the test fails).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{procs, repo_root, tools};

/// The tag every run of tests/image.rs builds: layers it shares with the
/// previous run's image (the base, apt, the user) stay cached while that
/// image is kept, and the previous image is removed once a new one exists.
pub const TEST_TAG: &str = "localhost/flightctl:test";
/// Every container of tests/image.rs carries this label, so a run can
/// remove what a killed run left behind.
const LABEL: &str = "flightctl-test=image";

pub struct Podman {
    exe: PathBuf,
}

impl Podman {
    pub fn find() -> Podman {
        // The runtime deploy/podman/containers.conf names.
        procs::find_bin(
            "runc",
            "FLIGHTCTL_TEST_RUNC",
            &["/usr/sbin/runc", "/usr/bin/runc"],
        );
        Podman {
            exe: tools::tool("podman", "apt-get install podman runc debootstrap"),
        }
    }

    /// A podman command with the repository's containers.conf (the
    /// settings this machine's sandbox needs, see that file), unless the
    /// caller's environment names one.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.exe);
        if std::env::var_os("CONTAINERS_CONF").is_none() {
            cmd.env("CONTAINERS_CONF", containers_conf());
        }
        cmd
    }

    /// Run podman with `args`; panics with its output unless it succeeds.
    pub fn ok(&self, what: &str, args: &[&str], within: Duration) -> String {
        let out = self.output(what, args, within);
        assert!(out.status.success(), "{what} failed: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn output(&self, what: &str, args: &[&str], within: Duration) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        tools::run_bounded(what, cmd, within)
    }

    /// `localhost/debian:bookworm-slim`, made with debootstrap unless it
    /// exists (scripts/image-base.sh).
    pub fn ensure_base_image(&self) {
        let mut cmd = Command::new(repo_root().join("scripts/image-base.sh"));
        if std::env::var_os("CONTAINERS_CONF").is_none() {
            cmd.env("CONTAINERS_CONF", containers_conf());
        }
        let out = tools::run_bounded("scripts/image-base.sh", cmd, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "making the base image failed: {}",
            describe(&out)
        );
    }

    /// Build the Dockerfile's `runtime-prebuilt` target (everything of the
    /// shipped `runtime` stage, with the binary this test run built), from a
    /// context holding only what it copies; returns the image id.
    pub fn build_image(&self) -> String {
        let context = procs::temp_dir("image-context");
        copy_dir(&repo_root().join("config"), &context.join("config"));
        let binary = Path::new(env!("CARGO_BIN_EXE_flightctl"));
        // A hard link where the target dir shares the file system: the debug
        // binary is large.
        if std::fs::hard_link(binary, context.join("flightctl")).is_err() {
            std::fs::copy(binary, context.join("flightctl")).expect("copying the binary");
        }
        let iidfile = procs::temp_dir("image-iid").join("iid");
        let previous = self.image_id(TEST_TAG);
        let dockerfile = repo_root().join("Dockerfile");
        self.ok(
            "podman build",
            &[
                "build",
                // No registry: the base image must be local.
                "--pull=never",
                "--file",
                dockerfile.to_str().unwrap(),
                "--target",
                "runtime-prebuilt",
                "--iidfile",
                iidfile.to_str().unwrap(),
                "--tag",
                TEST_TAG,
                context.to_str().unwrap(),
            ],
            Duration::from_secs(240),
        );
        let id = std::fs::read_to_string(&iidfile).expect("podman build wrote the image id");
        let id = id.trim().trim_start_matches("sha256:").to_string();
        // The previous run's image, once the new one shares its cached
        // parents: only its own layers (the binary) go. Fails harmlessly
        // while a container still uses it.
        if let Some(previous) = previous.filter(|p| *p != id) {
            let _ = self.output("podman rmi", &["rmi", &previous], Duration::from_secs(60));
        }
        id
    }

    pub fn image_id(&self, image: &str) -> Option<String> {
        let out = self.output(
            "podman image inspect",
            &["image", "inspect", "--format", "{{.Id}}", image],
            Duration::from_secs(30),
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Remove the containers a killed run of this test left (the caller
    /// holds the machine lock, so no other run owns them).
    pub fn remove_stale_containers(&self) {
        let label = format!("label={LABEL}");
        let stale = self.ok(
            "podman ps",
            &["ps", "--all", "--quiet", "--filter", &label],
            Duration::from_secs(30),
        );
        let ids: Vec<&str> = stale.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "--force", "--ignore", "--time", "0"];
            args.extend(ids);
            self.ok("podman rm", &args, Duration::from_secs(60));
        }
    }
}

fn containers_conf() -> PathBuf {
    repo_root().join("deploy/podman/containers.conf")
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One run of tests/image.rs at a time on a machine (every worktree
/// shares podman's image store and the test tag); released when the file
/// closes, on drop.
pub struct MachineLock {
    _file: File,
}

impl MachineLock {
    pub fn acquire(within: Duration) -> MachineLock {
        let path = std::env::temp_dir().join("flightctl-image-test.lock");
        let file = File::create(&path).expect("the lock file");
        let deadline = Instant::now() + within;
        loop {
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return MachineLock { _file: file };
            }
            assert!(
                Instant::now() < deadline,
                "another tests/image.rs run held {} for {within:?}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The containers of one test, `--network host` with a read-only root file
/// system, as the image's (non-root) user; all removed on drop, with the
/// logs of each printed first when the test is failing.
pub struct Containers<'a> {
    podman: &'a Podman,
    image: String,
    prefix: String,
    names: Vec<String>,
}

impl<'a> Containers<'a> {
    pub fn new(podman: &'a Podman, image: &str) -> Containers<'a> {
        Containers {
            podman,
            image: image.to_string(),
            prefix: format!(
                "flightctl-test-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            names: Vec::new(),
        }
    }

    fn run_args(&mut self, role: &str, options: &[String], env: &[(&str, String)]) -> Vec<String> {
        let name = format!("{}-{role}", self.prefix);
        self.names.push(name.clone());
        let mut args: Vec<String> = [
            "run",
            "--name",
            &name,
            "--label",
            LABEL,
            "--network",
            "host",
            "--read-only",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(options.iter().cloned());
        for (key, value) in env {
            args.push("--env".into());
            args.push(format!("{key}={value}"));
        }
        args
    }

    /// Run the image's `command` to completion; panics unless it exits 0.
    /// Its standard output.
    pub fn run_once(&mut self, role: &str, command: &[&str], env: &[(&str, String)]) -> String {
        let mut args = self.run_args(role, &[], env);
        args.push(self.image.clone());
        args.extend(command.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.podman.ok(
            &format!("the {role} container"),
            &args,
            Duration::from_secs(90),
        )
    }

    /// Start the image's `command` in the background; the container's name.
    pub fn start(
        &mut self,
        role: &str,
        options: &[String],
        command: &[&str],
        env: &[(&str, String)],
    ) -> String {
        let mut args = self.run_args(role, options, env);
        args.push("--detach".into());
        args.push(self.image.clone());
        args.extend(command.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.podman.ok(
            &format!("starting the {role} container"),
            &args,
            Duration::from_secs(60),
        );
        self.names.last().unwrap().clone()
    }
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in &self.names {
                // Plain output(): a second panic while unwinding would abort.
                if let Ok(out) = self
                    .podman
                    .cmd()
                    .args(["logs", "--tail", "60", name])
                    .output()
                {
                    eprintln!(
                        "---- container {name}:\n{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        if self.names.is_empty() {
            return;
        }
        let mut args = vec!["rm", "--force", "--ignore", "--time", "0"];
        args.extend(self.names.iter().map(String::as_str));
        match self.podman.cmd().args(&args).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("removing the test's containers failed: {}", describe(&out)),
            Err(e) => eprintln!("removing the test's containers failed: {e}"),
        }
    }
}
