//! Capabilities: host powers a component may use only when granted. Today: outbound HTTP.
//!
//! Default deny. A pack *requests* destinations in `pack.yaml` (`capabilities: {http: [...]}`),
//! the operator *grants* destinations per pack in `squall.toml` (`[packs.<pack>] http_allow`),
//! and the host allows a request only when both a request and a grant match it. Names that
//! resolve to loopback, private, link-local or otherwise non-public addresses are refused unless
//! an operator grant names that address (or a network containing it) explicitly, so an allowed
//! name cannot become a route to `169.254.169.254` or `127.0.0.1`.
//!
//! Pattern syntax ([`HostPattern`]): `host[:port]`, where `host` is `*` (any name), `*.suffix`
//! (any subdomain of `suffix`, not `suffix` itself), a DNS name, an IPv4 address, an IPv6 address
//! in brackets, or a network in CIDR form (`10.0.0.0/8`, `[fd00::/8]`); `port` is a number or `*`;
//! without a port only 80 and 443 match.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One allowed destination pattern; see the module docs for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: PortMatch,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Suffix(String),
    Name(String),
    Net { addr: IpAddr, prefix: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    Any,
    Default,
    Port(u16),
}

/// Why a pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| PatternError {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(err("empty"));
        }
        if t.contains("://") {
            return Err(err("write host[:port] without a scheme or path"));
        }
        // Split host and port; IPv6 must be bracketed.
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| err("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| err("expected ':' after ']'"))?,
                ),
            };
            (inside, port)
        } else {
            match t.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (t, None),
            }
        };
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(p) => PortMatch::Port(p.parse().map_err(|_| err("port must be 1-65535 or *"))?),
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            valid_name(suffix).map_err(|r| err(&r))?;
            HostMatch::Suffix(suffix.to_ascii_lowercase())
        } else if let Some((addr, prefix)) = host.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| err("network address is not an IP"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| err("network prefix out of range"))?;
            HostMatch::Net { addr, prefix }
        } else if let Ok(addr) = host.parse::<IpAddr>() {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            HostMatch::Net { addr, prefix }
        } else {
            valid_name(host).map_err(|r| err(&r))?;
            HostMatch::Name(host.to_ascii_lowercase())
        };
        Ok(HostPattern {
            host,
            port,
            text: t.to_string(),
        })
    }
}

fn valid_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a host name"))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (canonical(ip), net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// An IPv6 address that carries an IPv4 address counts as that IPv4 address: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`
/// with the address in the last 32 bits) and 6to4 (`2002:AABB:CCDD::/48`).
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let seg = v6.segments();
    let low32 = std::net::Ipv4Addr::from(u128::from(v6) as u32);
    let tail = |from: usize| {
        std::net::Ipv4Addr::new(
            (seg[from] >> 8) as u8,
            seg[from] as u8,
            (seg[from + 1] >> 8) as u8,
            seg[from + 1] as u8,
        )
    };
    if seg[..6].iter().all(|s| *s == 0) && !v6.is_loopback() && !v6.is_unspecified() {
        return IpAddr::V4(low32); // IPv4-compatible (deprecated)
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b && (seg[2..6].iter().all(|s| *s == 0) || seg[2] == 1) {
        return IpAddr::V4(tail(6)); // NAT64 well-known / local-use prefix
    }
    if seg[0] == 0x2002 {
        return IpAddr::V4(tail(1)); // 6to4
    }
    ip
}

impl HostPattern {
    /// Whether the destination `host` (a name or an IP literal, as in a URL) and `port` match.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matches_with_default(host, port, &[80, 443])
    }

    /// [`HostPattern::matches`] for an SSH destination: a pattern without a port matches port 22
    /// only (`[packs.<pack>] ssh_hosts`).
    pub fn matches_ssh(&self, host: &str, port: u16) -> bool {
        self.matches_with_default(host, port, &[22])
    }

    fn matches_with_default(&self, host: &str, port: u16, default_ports: &[u16]) -> bool {
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Default => default_ports.contains(&port),
            PortMatch::Port(p) => p == port,
        };
        if !port_ok {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Suffix(s) => {
                let h = host.to_ascii_lowercase();
                h.len() > s.len()
                    && h.ends_with(s.as_str())
                    && h[..h.len() - s.len()].ends_with('.')
            }
            HostMatch::Name(n) => host.eq_ignore_ascii_case(n),
            HostMatch::Net { addr, prefix } => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_net(ip, *addr, *prefix)),
        }
    }

    /// Whether this pattern names `ip` (at `port`) explicitly: an address or network pattern
    /// containing it. Names and wildcards never name an address.
    pub fn names_address(&self, ip: IpAddr, port: u16) -> bool {
        match &self.host {
            HostMatch::Net { addr, prefix } => {
                in_net(ip, *addr, *prefix) && self.matches(&canonical(ip).to_string(), port)
            }
            _ => false,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What kind of non-public address an IP is, if any (the reason an explicit grant is needed).
pub fn special_address_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() {
                Some("unspecified")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("shared (CGNAT)")
            } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
                Some("IETF protocol assignments")
            } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
                Some("benchmarking")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("multicast/broadcast")
            } else if o[0] == 0 || o[0] >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

/// The outbound HTTP rule for one pack: what it requested and what the operator granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    /// The pack's name, for messages.
    pub pack: String,
    /// Patterns from the pack's `pack.yaml` `capabilities.http`.
    pub requested: Vec<HostPattern>,
    /// Patterns from the operator's `[packs.<pack>] http_allow`.
    pub granted: Vec<HostPattern>,
}

impl HttpPolicy {
    /// Checks a destination by name (before resolving it).
    ///
    /// # Errors
    /// A message naming the destination and the missing grant or request.
    pub fn check_destination(&self, host: &str, port: u16) -> Result<(), String> {
        let pack = &self.pack;
        if !self.granted.iter().any(|p| p.matches(host, port)) {
            return Err(format!(
                "outbound HTTP to {host}:{port} is not granted to pack {pack} \
                 (squall.toml [packs.{pack}] http_allow = {:?})",
                self.granted
                    .iter()
                    .map(HostPattern::as_str)
                    .collect::<Vec<_>>()
            ));
        }
        if !self.requested.iter().any(|p| p.matches(host, port)) {
            return Err(format!(
                "outbound HTTP to {host}:{port} is not requested by pack {pack} \
                 (pack.yaml capabilities.http = {:?})",
                self.requested
                    .iter()
                    .map(HostPattern::as_str)
                    .collect::<Vec<_>>()
            ));
        }
        Ok(())
    }

    /// Checks one address that `host` resolved to.
    ///
    /// # Errors
    /// A message naming the host, the address and why it is refused.
    pub fn check_address(&self, host: &str, port: u16, ip: IpAddr) -> Result<(), String> {
        match special_address_kind(ip) {
            None => Ok(()),
            Some(_) if self.granted.iter().any(|p| p.names_address(ip, port)) => Ok(()),
            Some(kind) => {
                let ip = canonical(ip);
                let shown = if ip.is_ipv6() {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                Err(format!(
                    "outbound HTTP to {host}:{port} refused: it resolves to {ip}, a {kind} \
                     address, which pack {} is not granted explicitly \
                     (grant \"{shown}:{port}\" in [packs.{}] http_allow to allow it)",
                    self.pack, self.pack
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_as_documented() {
        for (pattern, host, port, want) in [
            ("api.example.com", "api.example.com", 443, true),
            ("api.example.com", "API.example.com", 80, true),
            ("api.example.com", "api.example.com", 8080, false),
            ("api.example.com:8080", "api.example.com", 8080, true),
            ("api.example.com:*", "api.example.com", 1, true),
            ("*.example.com", "a.b.example.com", 443, true),
            ("*.example.com", "example.com", 443, false),
            ("*.example.com", "badexample.com", 443, false),
            ("*", "anything.io", 443, true),
            ("*", "anything.io", 22, false),
            ("*:*", "anything.io", 22, true),
            ("127.0.0.1:*", "127.0.0.1", 8080, true),
            ("127.0.0.1:*", "localhost", 8080, false),
            ("10.0.0.0/8:*", "10.1.2.3", 9000, true),
            ("10.0.0.0/8:*", "11.1.2.3", 9000, false),
            ("[::1]:8080", "[::1]", 8080, true),
            ("[fd00::/8]:*", "fd12::1", 1, true),
        ] {
            assert_eq!(
                p(pattern).matches(host, port),
                want,
                "{pattern} vs {host}:{port}"
            );
        }
    }

    #[test]
    fn bad_patterns_are_rejected_with_the_pattern_named() {
        for bad in [
            "",
            "http://x.com",
            "x.com:http",
            "[::1",
            "10.0.0.0/33",
            "a..b",
            "x.com/path",
        ] {
            let err = bad.parse::<HostPattern>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn special_addresses_are_classified() {
        for (ip, want) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.1.1", Some("private")),
            ("192.168.0.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("64:ff9b::a00:5", Some("private")),
            ("64:ff9b:1::7f00:1", Some("loopback")),
            ("2002:a9fe:a9fe::1", Some("link-local")),
            ("::a00:1", Some("private")),
            ("192.0.0.8", Some("IETF protocol assignments")),
            ("198.18.0.1", Some("benchmarking")),
            ("64:ff9b::5db8:d822", None),
            ("93.184.216.34", None),
            ("2606:2800:220:1::", None),
        ] {
            assert_eq!(special_address_kind(ip.parse().unwrap()), want, "{ip}");
        }
    }

    fn policy(granted: &[&str]) -> HttpPolicy {
        HttpPolicy {
            pack: "core".into(),
            requested: vec![p("*:*")],
            granted: granted.iter().map(|s| p(s)).collect(),
        }
    }

    #[test]
    fn destination_needs_grant_and_request() {
        let pol = policy(&["api.example.com"]);
        assert!(pol.check_destination("api.example.com", 443).is_ok());
        let err = pol.check_destination("evil.com", 443).unwrap_err();
        assert!(
            err.contains("evil.com:443") && err.contains("[packs.core]"),
            "{err}"
        );
        let unrequested = HttpPolicy {
            requested: vec![],
            ..pol
        };
        let err = unrequested
            .check_destination("api.example.com", 443)
            .unwrap_err();
        assert!(err.contains("not requested by pack core"), "{err}");
    }

    #[test]
    fn private_addresses_need_an_explicit_address_grant() {
        let by_name = policy(&["internal.example.com", "*"]);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let err = by_name
            .check_address("internal.example.com", 443, ip)
            .unwrap_err();
        assert!(err.contains("10.0.0.5") && err.contains("private"), "{err}");
        let by_net = policy(&["internal.example.com", "10.0.0.0/8:*"]);
        assert!(
            by_net
                .check_address("internal.example.com", 443, ip)
                .is_ok()
        );
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        assert!(by_net.check_address("x", 80, metadata).is_err());
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        assert!(
            by_name
                .check_address("internal.example.com", 443, public)
                .is_ok()
        );
    }
}
