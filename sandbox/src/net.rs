//! Reaching the network on an agent's behalf: which addresses a granted
//! host may lead to, and the gate that decides each connection.
//!
//! The decision itself (which grants a process holds) is the caller's: the
//! sandbox asks a [`NetGate`] for every destination a program names, then
//! resolves the name itself and connects only to the addresses it resolved
//! to. Loopback, private, link-local and other special addresses are
//! reached only when the grant that allowed the host names it exactly: a
//! wildcard (`net:*`, `net:*.example.com`) is for the public network, so a
//! public name that resolves inward (DNS rebinding) leads nowhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// What a connection is for, which decides the right it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A request that only reads (`GET`, `HEAD`): needs `read`.
    Read,
    /// Anything that may send data (a tunnel, `POST`, ...): needs `write`.
    Write,
}

/// How far an allowed destination may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only (the grant was a wildcard).
    Public,
    /// Any address the host resolves to (a grant names this host exactly).
    Any,
}

/// Decides connections for one process. Called from the sandbox's proxy
/// threads while a program runs.
pub trait NetGate: Send + Sync + std::fmt::Debug {
    /// Whether `host` (canonical: lowercase, IPv6 in brackets) on `port`
    /// may be reached for `use_`; the error is the reason, for the program
    /// and the audit.
    fn decide(&self, host: &str, port: u16, use_: Use) -> Result<Reach, String>;

    /// How far the grant that decides `host` on `port` for `use_` reaches,
    /// whatever its effect, spending nothing: for a connection whose
    /// authority was already decided (a call a human approved, which an
    /// `ask` grant decided). An error when no grant decides it any more, or
    /// one denies it now. Without an implementation: public addresses only.
    fn reach(&self, host: &str, port: u16, use_: Use) -> Result<Reach, String> {
        let _ = (host, port, use_);
        Ok(Reach::Public)
    }
}

/// Whether an address is outside the public network: loopback, private,
/// link-local, shared, unspecified, multicast, broadcast, documentation,
/// benchmarking or reserved ranges (and their IPv4-mapped IPv6 forms).
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (embeds IPv4)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0) // IPv4-compatible
        }
    }
}

fn special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Resolves `host` (canonical) and keeps the addresses `reach` allows, in
/// the resolver's order; an error says why none is left.
pub fn resolve(host: &str, port: u16, reach: Reach) -> Result<Vec<SocketAddr>, String> {
    let name = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let literal: Option<IpAddr> =
        name.parse::<Ipv4Addr>().map(IpAddr::V4).ok().or_else(|| name.parse::<Ipv6Addr>().map(IpAddr::V6).ok());
    let all: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => (name, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect(),
    };
    if all.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    match reach {
        Reach::Any => Ok(all),
        Reach::Public => {
            let public: Vec<SocketAddr> = all.iter().copied().filter(|a| !is_special(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to {}, which is not a public address: only a grant naming {host} exactly reaches it",
                    all[0].ip()
                ));
            }
            Ok(public)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_are_the_non_public_ranges() {
        let special = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ];
        let public = ["1.1.1.1", "93.184.216.34", "2606:4700::1111", "::ffff:1.1.1.1"];
        for s in special {
            assert!(is_special(s.parse().unwrap()), "{s} should be special");
        }
        for p in public {
            assert!(!is_special(p.parse().unwrap()), "{p} should be public");
        }
    }

    #[test]
    fn a_wildcard_reaches_no_loopback_name_and_an_exact_grant_does() {
        assert_eq!(
            resolve("127.0.0.1", 80, Reach::Public),
            Err("127.0.0.1 resolves to 127.0.0.1, which is not a public address: only a grant naming 127.0.0.1 exactly reaches it".to_string())
        );
        assert!(resolve("localhost", 80, Reach::Public).is_err());
        assert_eq!(resolve("127.0.0.1", 80, Reach::Any), Ok(vec!["127.0.0.1:80".parse().unwrap()]));
        assert_eq!(resolve("[::1]", 80, Reach::Any), Ok(vec!["[::1]:80".parse().unwrap()]));
    }
}
