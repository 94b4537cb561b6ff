//! Child processes that never outlive the test binary.
//!
//! Every server is spawned from one long-lived thread with
//! `PR_SET_PDEATHSIG(SIGKILL)`, so the kernel kills it when the test process
//! dies, however it dies; an `atexit` hook stops them politely and removes
//! their directories on a normal exit (including after failed tests).

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

struct Registry {
    pids: Vec<(u32, libc::c_int)>,
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pids: Vec::new(),
    dirs: Vec::new(),
});

fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("test-process-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // Keep the thread (the children's parent) alive until exit.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawner thread");
        unsafe { libc::atexit(cleanup_at_exit) };
        Mutex::new(tx)
    })
}

extern "C" fn cleanup_at_exit() {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    for &(pid, signal) in &registry.pids {
        unsafe { libc::kill(pid as i32, signal) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    for &(pid, _) in &registry.pids {
        while unsafe { libc::kill(pid as i32, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    for dir in &registry.dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A process that is killed when this value is dropped, or at the latest
/// when the test binary exits.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    stop_signal: libc::c_int,
}

impl Proc {
    /// Spawn `cmd`; `stop_signal` is what asks it to shut down cleanly.
    pub fn spawn(name: &str, mut cmd: Command, stop_signal: libc::c_int) -> Proc {
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        spawner()
            .lock()
            .unwrap()
            .send((cmd, tx))
            .expect("spawner alive");
        let child = rx
            .recv()
            .expect("spawner reply")
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        REGISTRY
            .lock()
            .unwrap()
            .pids
            .push((child.id(), stop_signal));
        Proc {
            name: name.to_string(),
            child: Some(child),
            stop_signal,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kill it now (SIGKILL): a crash, as far as the process can tell.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            forget_pid(child.id());
        }
    }

    /// Ask it to stop and wait for it.
    pub fn stop(&mut self) {
        self.signal_and_wait(self.stop_signal, Duration::from_secs(10));
    }

    /// Send `signal` (SIGQUIT to Postgres is an immediate shutdown, say)
    /// and wait for it to exit; SIGKILL if it has not within `within`.
    pub fn signal_and_wait(&mut self, signal: libc::c_int, within: Duration) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, signal) };
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    forget_pid(child.id());
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            forget_pid(child.id());
        }
    }

    /// Wait for it to exit by itself (with a deadline) and return its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                forget_pid(child.id());
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn forget_pid(pid: u32) {
    REGISTRY.lock().unwrap().pids.retain(|(p, _)| *p != pid);
}

/// A fresh directory removed when the test binary exits.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flightctl-{prefix}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    spawner();
    REGISTRY.lock().unwrap().dirs.push(dir.clone());
    dir
}

/// A TCP port that was free a moment ago, below the kernel's ephemeral
/// range: a server restarted on its port (a fault test) never finds it
/// taken by the local end of some client's connection meanwhile.
pub fn free_port() -> u16 {
    use rand::Rng;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if ephemeral_low > 11000 {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let port = rng.random_range(10000..ephemeral_low);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Wait until something accepts TCP connections on `port`.
pub fn wait_for_port(name: &str, port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{name} did not listen on port {port} within {within:?}");
}

/// Find an executable: `$ENV_VAR`, then `PATH`, then the given fallbacks.
pub fn find_bin(name: &str, env_var: &str, fallbacks: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env_var) {
        return PathBuf::from(path);
    }
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    from_path
        .or_else(|| fallbacks.iter().map(PathBuf::from).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("{name} not found: install it (scripts/install-prereqs.sh) or set {env_var}")
        })
}

/// `root` and every process descending from it, parents before children
/// (read from `/proc`; processes that exit meanwhile are simply missing).
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // `pid (comm) state ppid ...`: comm may hold spaces and parens.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree
}

/// Processes stopped with SIGSTOP (a stall: alive, sockets open, answering
/// nothing). Continued with SIGCONT by `thaw`, or when dropped, so a failed
/// test never leaves them stopped.
pub struct Frozen {
    pids: Vec<u32>,
}

impl Frozen {
    /// The processes stopped.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Continue every stopped process (SIGCONT).
    pub fn thaw(mut self) {
        self.cont();
    }

    fn cont(&mut self) {
        for pid in self.pids.drain(..) {
            unsafe { libc::kill(pid as i32, libc::SIGCONT) };
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.cont();
    }
}

/// Stop `root` and all its descendants with SIGSTOP. Parents are stopped
/// before their children and the tree is read again until nothing new
/// appears, so a child forked meanwhile is stopped too.
pub fn freeze_tree(root: u32) -> Frozen {
    let mut frozen = Frozen { pids: Vec::new() };
    let mut seen: Vec<u32> = Vec::new();
    for _ in 0..10 {
        let new: Vec<u32> = process_tree(root)
            .into_iter()
            .filter(|p| !seen.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        for pid in new {
            seen.push(pid);
            if unsafe { libc::kill(pid as i32, libc::SIGSTOP) } == 0 {
                frozen.pids.push(pid);
            }
        }
    }
    frozen
}
