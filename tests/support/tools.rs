//! Command-line tools the tests run, found where `scripts/install-prereqs.sh`
//! puts them. A missing tool fails the test with how to install it: a test
//! never passes by skipping its tool.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `name` on PATH, or in Python's scripts directory (where pip puts PyPI
/// tools, and `./dev` puts on PATH); panics with `install` if neither has it.
pub fn tool(name: &str, install: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    on_path
        .into_iter()
        .chain(scripts)
        .map(|dir| dir.join(name))
        .find(|exe| exe.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/install-prereqs.sh (or `{install}`); this test needs it")
        })
}

/// Run `cmd` to completion, killing it after `within`: its output, or a
/// panic naming `what` if it did not finish in time.
pub fn run_bounded(what: &str, mut cmd: Command, within: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Read both pipes on threads so a chatty tool never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).ok();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).ok();
        buf
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}
