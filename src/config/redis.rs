//! Where Redis is: `REDIS_URL` when set (a single node or a Redis Cluster),
//! else `REDIS_ADDR` and `REDIS_DB`. The password is `REDIS_PASSWORD` in
//! every case, so no URL that is logged or shown carries it.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// Where Redis is and how this program uses it, parsed once at load.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RedisSource")]
pub struct RedisSettings {
    /// `REDIS_URL` when set: `redis://host:port[/db]` (one server) or
    /// `redis-cluster://h1:p1,h2:p2,…` (Redis Cluster); else `REDIS_ADDR`
    /// and `REDIS_DB`.
    pub target: RedisTarget,
    pub password: Secret,
    /// Prefix of every key this program writes (tests give each run its own).
    pub key_prefix: String,
}

/// The Redis settings as the layers give them, before they are checked.
#[derive(Deserialize)]
struct RedisSource {
    #[serde(default)]
    url: String,
    addr: String,
    password: Secret,
    db: u8,
    key_prefix: String,
}

impl TryFrom<RedisSource> for RedisSettings {
    type Error = ConfigError;

    fn try_from(source: RedisSource) -> Result<Self, ConfigError> {
        Ok(Self {
            target: source.target()?,
            password: source.password,
            key_prefix: source.key_prefix,
        })
    }
}

/// The Redis deployment the seat holds live in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://host:port[/db]`, or `REDIS_ADDR` + `REDIS_DB`).
    Single { host: String, port: u16, db: u8 },
    /// A Redis Cluster (`redis-cluster://h1:p1,h2:p2,…`): the nodes the
    /// client starts discovery from. One reachable node is enough; listing
    /// several lets a process start while one of them is down.
    Cluster { nodes: Vec<(String, u16)> },
}

const SINGLE: &str = "redis://";
const CLUSTER: &str = "redis-cluster://";
const DEFAULT_PORT: u16 = 6379;

impl RedisSource {
    /// The deployment these settings name, checked: a bad value is an error
    /// naming the setting (never showing a password).
    fn target(&self) -> Result<RedisTarget, ConfigError> {
        let url = self.url.trim();
        if url.is_empty() {
            let (host, port) = node(&self.addr).map_err(|reason| invalid("REDIS_ADDR", reason))?;
            return Ok(RedisTarget::Single {
                host,
                port,
                db: self.db,
            });
        }
        let target: RedisTarget = url.parse()?;
        if matches!(target, RedisTarget::Cluster { .. }) && self.db != 0 {
            return Err(ConfigError::Invalid(format!(
                "REDIS_DB={} does not apply to Redis Cluster, which has database 0 only",
                self.db
            )));
        }
        Ok(target)
    }
}

fn invalid(setting: &str, reason: String) -> ConfigError {
    ConfigError::Invalid(format!("{setting} {reason}"))
}

impl FromStr for RedisTarget {
    type Err = ConfigError;

    /// `redis://host[:port][/db]` or `redis-cluster://host[:port],host[:port],…`.
    fn from_str(url: &str) -> Result<Self, ConfigError> {
        parse_url(url)
    }
}

fn parse_url(url: &str) -> Result<RedisTarget, ConfigError> {
    let bad = |reason: String| invalid("REDIS_URL", reason);
    let (cluster, rest) = if let Some(rest) = url.strip_prefix(CLUSTER) {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix(SINGLE) {
        (false, rest)
    } else {
        // Not shown: a URL of another form may carry a password.
        return Err(bad(format!(
            "must start with {SINGLE} (one server) or {CLUSTER} (Redis Cluster)"
        )));
    };
    if rest.contains('@') {
        return Err(bad(
            "must not carry credentials: give the password in REDIS_PASSWORD".into(),
        ));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(bad(format!("={url:?} takes no query or fragment")));
    }
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    let db = match path {
        "" => 0,
        db => db.parse::<u8>().map_err(|_| {
            bad(format!(
                "={url:?}: the database after the / must be a number (0-255)"
            ))
        })?,
    };
    if cluster {
        if db != 0 {
            return Err(bad(format!("={url:?}: Redis Cluster has database 0 only")));
        }
        let nodes = hosts
            .split(',')
            .map(|n| node(n).map_err(|reason| bad(format!("={url:?}: node {reason}"))))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(RedisTarget::Cluster { nodes });
    }
    if hosts.contains(',') {
        return Err(bad(format!(
            "={url:?} names several servers: a cluster is {CLUSTER}h1:p1,h2:p2"
        )));
    }
    let (host, port) = node(hosts).map_err(|reason| bad(format!("={url:?}: {reason}")))?;
    Ok(RedisTarget::Single { host, port, db })
}

/// `host:port`, `host` (port 6379) or `[v6]:port`.
fn node(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{text:?} has no closing ]"))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || (host.contains(':') && !text.starts_with('[')) {
        return Err(format!("{text:?} must be host:port"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{text:?} has no valid port")),
            Ok(port) => port,
        },
    };
    Ok((host.to_string(), port))
}

impl fmt::Display for RedisTarget {
    /// Where Redis is, for logs and errors (no password: it is never in
    /// the target).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |f: &mut fmt::Formatter<'_>, host: &str, port: u16| {
            if host.contains(':') {
                write!(f, "[{host}]:{port}")
            } else {
                write!(f, "{host}:{port}")
            }
        };
        match self {
            RedisTarget::Single { host, port, db } => {
                show(f, host, *port)?;
                write!(f, " (db {db})")
            }
            RedisTarget::Cluster { nodes } => {
                f.write_str("cluster ")?;
                for (i, (host, port)) in nodes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    show(f, host, *port)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(addr: &str, db: u8, url: &str) -> RedisSource {
        RedisSource {
            addr: addr.into(),
            password: Secret::new("pw"),
            db,
            url: url.into(),
            key_prefix: "p".into(),
        }
    }

    fn target(url: &str) -> Result<RedisTarget, String> {
        settings("localhost:6379", 0, url)
            .target()
            .map_err(|e| e.to_string())
    }

    fn single(host: &str, port: u16, db: u8) -> RedisTarget {
        RedisTarget::Single {
            host: host.into(),
            port,
            db,
        }
    }

    #[test]
    fn without_a_url_the_address_and_database_name_one_server() {
        assert_eq!(
            settings("cache:6380", 3, "").target().unwrap(),
            single("cache", 6380, 3)
        );
        assert_eq!(
            settings("[::1]:7000", 0, " ").target().unwrap(),
            single("::1", 7000, 0)
        );
        let err = settings("cache:port", 0, "").target().unwrap_err();
        assert!(err.to_string().contains("REDIS_ADDR"), "{err}");
    }

    #[test]
    fn a_redis_url_names_one_server_and_wins_over_the_address() {
        assert_eq!(target("redis://h:6380/2").unwrap(), single("h", 6380, 2));
        assert_eq!(target("redis://h").unwrap(), single("h", 6379, 0));
        assert_eq!(target("redis://h:7/").unwrap(), single("h", 7, 0));
    }

    #[test]
    fn a_cluster_url_lists_its_nodes() {
        let nodes = |list: &[(&str, u16)]| RedisTarget::Cluster {
            nodes: list.iter().map(|(h, p)| (h.to_string(), *p)).collect(),
        };
        assert_eq!(
            target("redis-cluster://10.0.0.1:7000,10.0.0.2:7001,r3").unwrap(),
            nodes(&[("10.0.0.1", 7000), ("10.0.0.2", 7001), ("r3", 6379)])
        );
        assert_eq!(
            target("redis-cluster://[fd00::1]:7000").unwrap(),
            nodes(&[("fd00::1", 7000)])
        );
        assert_eq!(
            target("redis-cluster://a:1,b:2").unwrap().to_string(),
            "cluster a:1,b:2"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, reason) in [
            ("rediss://h:6379", "must start with redis://"),
            ("h:6379", "must start with redis://"),
            ("redis://h:port", "no valid port"),
            ("redis://h:0", "no valid port"),
            ("redis://:6379", "must be host:port"),
            ("redis://h:1/x", "database after the /"),
            ("redis://h:1,g:2", "names several servers"),
            ("redis://h:1?timeout=3", "no query"),
            ("redis-cluster://a:1,,b:2", "must be host:port"),
            ("redis-cluster://a:1,b:x", "node \"b:x\" has no valid port"),
            ("redis-cluster://a:1/2", "database 0 only"),
            ("redis-cluster://", "must be host:port"),
        ] {
            let err = target(url).expect_err(url);
            assert!(err.contains("REDIS_URL"), "{url}: {err}");
            assert!(err.contains(reason), "{url}: {err}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_showing_it() {
        for url in [
            "redis://:hunter2@h:6379",
            "redis-cluster://user:hunter2@a:1,b:2",
            "https://user:hunter2@h",
        ] {
            let err = target(url).expect_err(url);
            assert!(!err.contains("hunter2"), "{err}");
        }
        assert!(
            target("redis://:hunter2@h:6379")
                .unwrap_err()
                .contains("REDIS_PASSWORD")
        );
    }

    #[test]
    fn a_cluster_refuses_a_database_other_than_0() {
        let err = settings("localhost:6379", 3, "redis-cluster://a:1")
            .target()
            .unwrap_err();
        assert!(err.to_string().contains("REDIS_DB=3"), "{err}");
        assert_eq!(
            settings("localhost:6379", 3, "redis://a:1")
                .target()
                .unwrap(),
            single("a", 1, 0),
            "a single server's URL wins over REDIS_DB, as DATABASE_URL wins over its parts"
        );
    }
}
