//! Who the client is behind a load balancer: `TRUSTED_PROXIES` lists the
//! addresses (or networks) whose `X-Forwarded-For` is believed. From any
//! other peer the header is ignored, so a client cannot choose the address
//! it is counted under (the booking look-up limit counts per client).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::ConfigError;

/// The proxies whose `X-Forwarded-For` names the client. Empty (the
/// default): the client is the peer of the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustedProxies(Vec<IpNet>);

impl TryFrom<String> for TrustedProxies {
    type Error = ConfigError;

    fn try_from(list: String) -> Result<Self, ConfigError> {
        Self::parse(&list)
    }
}

/// The list as `TRUSTED_PROXIES` takes it: networks, comma-separated.
impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

impl TrustedProxies {
    /// `TRUSTED_PROXIES`: addresses or CIDR networks, separated by commas
    /// or spaces (`10.0.0.0/8, 127.0.0.1`).
    pub fn parse(list: &str) -> Result<TrustedProxies, ConfigError> {
        let nets = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "TRUSTED_PROXIES: {item:?} is neither an IP address nor a network \
                             (like 10.0.0.0/8)"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies(nets))
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client of a request that arrived from `peer` carrying these
    /// `X-Forwarded-For` values (in header order). Each trusted proxy
    /// appends the address it was reached from, so the client is the
    /// rightmost address no trusted proxy stands for; anything left of it
    /// was written by the client and proves nothing. A malformed entry ends
    /// the walk at the last address a trusted proxy vouched for.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(addr) => {
                    client = addr.to_canonical();
                    if !self.trusts(client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(trusted: &str, peer: &str, xff: &[&str]) -> IpAddr {
        TrustedProxies::parse(trusted)
            .unwrap()
            .client(ip(peer), xff.iter().copied())
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(
            client("", "203.0.113.9", &["198.51.100.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_name_another_client() {
        assert_eq!(
            client("10.0.0.0/8", "203.0.113.9", &["198.51.100.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        assert_eq!(
            client("10.0.0.0/8", "10.1.2.3", &["198.51.100.1"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        // The client wrote 192.0.2.66 itself; the first proxy (10.0.0.5)
        // appended 198.51.100.1; the last appended 10.0.0.5.
        assert_eq!(
            client(
                "10.0.0.0/8, 127.0.0.1",
                "127.0.0.1",
                &["192.0.2.66, 198.51.100.1", "10.0.0.5"]
            ),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_missing_or_malformed_header_leaves_the_last_trusted_address() {
        assert_eq!(client("127.0.0.1", "127.0.0.1", &[]), ip("127.0.0.1"));
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.1", &["junk, 10.0.0.7"]),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        assert_eq!(
            client("127.0.0.1", "::ffff:127.0.0.1", &["2001:db8::1"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        let err = TrustedProxies::parse("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(err.to_string().contains("\"proxy.local\""), "{err}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert_eq!(
            TrustedProxies::parse(" ").unwrap(),
            TrustedProxies::default()
        );
    }

    #[test]
    fn the_list_shows_as_it_parses() {
        let list = TrustedProxies::parse("10.0.0.0/8 127.0.0.1").unwrap();
        assert_eq!(list.to_string(), "10.0.0.0/8,127.0.0.1/32");
        assert_eq!(TrustedProxies::parse(&list.to_string()).unwrap(), list);
    }
}
