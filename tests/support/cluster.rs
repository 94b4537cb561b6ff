//! A real Redis Cluster: three masters, each with a replica or none, Debian
//! `redis-server --cluster-enabled yes` processes on free ports joined by
//! `redis-cli --cluster create`. A short `cluster-node-timeout` lets a
//! replica take over within seconds of its master's death; a master with
//! no replica leaves its slots unserved until it is restarted.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::procs::{Frozen, Proc, find_bin, free_port, freeze_tree, temp_dir, wait_for_port};

const MASTERS: usize = 3;
/// How long a master may be unreachable before the cluster calls it failed
/// and its replica is promoted.
const NODE_TIMEOUT_MS: u32 = 1000;

struct Node {
    port: u16,
    /// Its cluster bus port.
    bus: u16,
    /// Its directory: `nodes.conf` (its id and slots) survives a restart.
    dir: PathBuf,
    proc: Mutex<Option<Proc>>,
}

pub struct RedisCluster {
    nodes: Vec<Node>,
    server: PathBuf,
    cli: PathBuf,
}

/// One line of `CLUSTER NODES`.
struct NodeLine {
    id: String,
    port: u16,
    /// The id of the master it replicates (replicas only).
    replicates: Option<String>,
    master: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Three masters, each with a replica: six nodes, the cluster created,
    /// every node seeing `cluster_state:ok` and every replica in sync with
    /// its master.
    pub fn start() -> RedisCluster {
        Self::start_with(1)
    }

    /// Three masters and no replica: a master's death leaves its slots
    /// unserved (and the cluster `fail`) until it is restarted.
    pub fn start_without_replicas() -> RedisCluster {
        Self::start_with(0)
    }

    fn start_with(replicas: usize) -> RedisCluster {
        let server = find_bin(
            "redis-server",
            "FLIGHTCTL_TEST_REDIS",
            &["/usr/bin/redis-server"],
        );
        let cli = find_bin(
            "redis-cli",
            "FLIGHTCTL_TEST_REDIS_CLI",
            &["/usr/bin/redis-cli"],
        );
        let root = temp_dir("redis-cluster");
        let nodes: Vec<Node> = (0..MASTERS * (1 + replicas))
            .map(|i| {
                let dir = root.join(i.to_string());
                std::fs::create_dir_all(&dir).unwrap();
                Node {
                    // The bus port is chosen too: port + 10000 may be taken.
                    port: free_port(),
                    bus: free_port(),
                    dir,
                    proc: Mutex::new(None),
                }
            })
            .collect();
        let cluster = RedisCluster { nodes, server, cli };
        for node in &cluster.nodes {
            cluster.spawn(node);
        }
        let mut create = Command::new(&cluster.cli);
        create.args(["--cluster", "create"]);
        create.args(
            cluster
                .nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port)),
        );
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        let out = create.output().expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Start `node`'s server (again, after a kill: from its directory, so
    /// it rejoins as the node it was) and wait until it listens.
    fn spawn(&self, node: &Node) {
        let mut cmd = Command::new(&self.server);
        cmd.args(["--port", &node.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &node.bus.to_string(),
            ])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&node.dir)
            .stdout(Stdio::null());
        let proc = Proc::spawn("redis-cluster-node", cmd, libc::SIGTERM);
        *node.proc.lock().unwrap() = Some(proc);
        wait_for_port("redis cluster node", node.port, Duration::from_secs(15));
    }

    /// Restart the node on `port` (killed before) and wait until the
    /// cluster is healthy again.
    pub fn restart(&self, port: u16, within: Duration) {
        let node = self.nodes.iter().find(|n| n.port == port).expect("ours");
        assert!(node.proc.lock().unwrap().is_none(), "{port} is running");
        self.spawn(node);
        self.wait_healthy(within);
    }

    /// Wait until every running node reports `cluster_state:<state>`
    /// (`ok` or `fail`).
    pub fn wait_state(&self, state: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let wanted = format!("cluster_state:{state}");
        loop {
            let seen: Vec<String> = (self.live_ports().into_iter())
                .map(|p| self.cli(p, &["CLUSTER", "INFO"]).unwrap_or_else(|e| e))
                .collect();
            if seen.iter().all(|info| info.contains(&wanted)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach {wanted} within {within:?}: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `REDIS_URL` naming every node, as a deployment lists its seeds.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = (self.nodes.iter())
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    /// Ports of the nodes still running.
    fn live_ports(&self) -> Vec<u16> {
        (self.nodes.iter())
            .filter(|n| n.proc.lock().unwrap().is_some())
            .map(|n| n.port)
            .collect()
    }

    /// One `redis-cli` command against the node on `port`.
    fn cli(&self, port: u16, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.cli)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || text.starts_with("ERR") || text.contains("Could not connect") {
            return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(text)
    }

    fn nodes_seen_by(&self, port: u16) -> Result<Vec<NodeLine>, String> {
        let text = self.cli(port, &["CLUSTER", "NODES"])?;
        Ok(text.lines().filter_map(parse_node_line).collect())
    }

    /// Every running node: `cluster_state:ok`, three masters owning every
    /// slot, each replica in sync with its master.
    fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.healthy() {
                Ok(()) => return,
                Err(why) => last = why,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the redis cluster was not healthy within {within:?}: {last}");
    }

    fn healthy(&self) -> Result<(), String> {
        for port in self.live_ports() {
            let info = self.cli(port, &["CLUSTER", "INFO"])?;
            if !info.contains("cluster_state:ok") {
                return Err(format!("node {port}: {info}"));
            }
            let replication = self.cli(port, &["INFO", "replication"])?;
            if replication.contains("role:slave") && !replication.contains("master_link_status:up")
            {
                return Err(format!("replica {port} not in sync: {replication}"));
            }
        }
        let port = self.live_ports()[0];
        let masters = (self.nodes_seen_by(port)?.into_iter())
            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
            .count();
        if masters != MASTERS {
            return Err(format!("{masters} masters with slots"));
        }
        Ok(())
    }

    /// The hash slot of `key` (its `{tag}` if it has one).
    pub fn slot(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let text = self
            .cli(port, &["CLUSTER", "KEYSLOT", key])
            .expect("CLUSTER KEYSLOT");
        text.trim().parse().expect("a slot number")
    }

    /// The port of the healthy master serving `slot`, as a running node
    /// sees the cluster.
    pub fn master_of(&self, slot: u16) -> Option<u16> {
        let port = *self.live_ports().first()?;
        let nodes = self.nodes_seen_by(port).ok()?;
        nodes
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
            })
            .map(|n| n.port)
    }

    /// `GET key` sent straight to the master serving its slot (no
    /// redirection followed): what that node itself stores.
    pub fn get_on_master(&self, key: &str) -> Option<String> {
        let port = self
            .master_of(self.slot(key))
            .expect("a master serves the slot");
        let value = self.cli(port, &["GET", key]).expect("GET on the master");
        Some(value.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// Kill (SIGKILL) the master serving `slot`; returns its port.
    pub fn kill_master_of(&self, slot: u16) -> u16 {
        let port = self.master_of(slot).expect("a master serves the slot");
        let node = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .expect("our node");
        if let Some(mut p) = node.proc.lock().unwrap().take() {
            p.kill();
        }
        port
    }

    /// Cut the replica of `slot`'s master off from it, once it has every
    /// write so far: the replica is stopped (SIGSTOP) and the master drops
    /// its link (`CLIENT KILL TYPE replica`), so the master's later writes
    /// reach no replica. Stopping alone is not enough: the master keeps
    /// writing into the stopped replica's socket buffer, and a replica
    /// continued after its master's death reads them all before it notices
    /// the link is gone. Returns the replica's port; dropping (or thawing)
    /// the `Frozen` continues it, and it then cannot sync again from a
    /// master that has died meanwhile.
    pub fn cut_off_replica_of(&self, slot: u16, within: Duration) -> (u16, Frozen) {
        let master = self.master_of(slot).expect("a master serves the slot");
        let nodes = self.nodes_seen_by(master).expect("CLUSTER NODES");
        let id = &nodes
            .iter()
            .find(|n| n.port == master)
            .expect("the master")
            .id;
        let replica = (nodes.iter())
            .find(|n| n.replicates.as_ref() == Some(id) && !n.failed)
            .expect("the master has a replica")
            .port;
        self.wait_replicated(master, within);
        let node = self.nodes.iter().find(|n| n.port == replica).expect("ours");
        let pid = node.proc.lock().unwrap().as_ref().expect("running").pid();
        let frozen = freeze_tree(pid);
        let dropped = self
            .cli(master, &["CLIENT", "KILL", "TYPE", "replica"])
            .expect("CLIENT KILL TYPE replica");
        assert_eq!(dropped.trim(), "1", "the master dropped its replica's link");
        (replica, frozen)
    }

    /// Wait until `master`'s replica has acknowledged every write so far.
    fn wait_replicated(&self, master: u16, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let info = self
                .cli(master, &["INFO", "replication"])
                .unwrap_or_default();
            let field = |line: &str, key: &str| {
                (line.split(',').find_map(|f| f.strip_prefix(key))).map(|v| v.trim().to_string())
            };
            let written = info.lines().find_map(|l| field(l, "master_repl_offset:"));
            let acked = (info.lines())
                .filter(|l| l.starts_with("slave0:"))
                .find_map(|l| field(l.trim_start_matches("slave0:"), "offset="));
            if written.is_some() && written == acked {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica of {master} did not catch up within {within:?}: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until a master other than `dead` serves `slot` on every running
    /// node's view and the cluster is `ok` again; returns the new master's
    /// port and how long it took from `since`.
    pub fn wait_promoted(
        &self,
        slot: u16,
        dead: u16,
        since: Instant,
        within: Duration,
    ) -> (u16, Duration) {
        let deadline = Instant::now() + within;
        loop {
            let promoted = self.master_of(slot).filter(|&p| p != dead);
            if let Some(port) = promoted {
                let everywhere = self.live_ports().into_iter().all(|p| {
                    self.cli(p, &["CLUSTER", "INFO"])
                        .is_ok_and(|i| i.contains("cluster_state:ok"))
                });
                if everywhere {
                    return (port, since.elapsed());
                }
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over slot {slot} from {dead} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slots…>`
fn parse_node_line(line: &str) -> Option<NodeLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    let port = fields[1]
        .split('@')
        .next()?
        .rsplit_once(':')?
        .1
        .parse()
        .ok()?;
    let flags = fields[2];
    let slots = fields[8..]
        .iter()
        // Slots being migrated show as `[slot->-id]`: none here.
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => s.parse().ok().map(|a| (a, a)),
        })
        .collect();
    Some(NodeLine {
        id: fields[0].to_string(),
        port,
        replicates: Some(fields[3].to_string()).filter(|m| m != "-"),
        master: flags.contains("master"),
        failed: flags.contains("fail"),
        slots,
    })
}

/// The cluster shared by a test binary's tests that do not kill nodes.
pub fn redis_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}
