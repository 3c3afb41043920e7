//! Network resources: hosts and ports.
//!
//! A connection is the resource `net:HOST:PORT`, with the host canonical
//! (lowercase, no trailing dot; IPv6 in brackets). Patterns name a host on
//! any port (`net:example.com`), one port of it (`net:example.com:443`),
//! the subdomains of a domain (`net:*.example.com`, not the domain itself),
//! or anything (`net:*`). The most specific decides: a host and port over
//! the host, the host over a domain, a deeper domain over a shallower one,
//! any of them over `*`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::PatternName;

/// The canonical form of a host name or address, or why it is not one.
pub fn host(text: &str) -> Result<String, String> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let ip: Ipv6Addr = inner.parse().map_err(|_| format!("`{text}` is not an IPv6 address"))?;
        return Ok(format!("[{ip}]"));
    }
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Err(format!("`{text}`: write an IPv6 address in brackets, e.g. [::1]"));
    }
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err(format!("`{}` is not a host name", crate::text::escape_line(text)));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("`{}` is not a host name", crate::text::escape_line(text)));
        }
    }
    Ok(name)
}

/// Splits `host[:port]` (IPv6 in brackets), canonicalising the host.
pub fn split(text: &str) -> Result<(String, Option<u16>), String> {
    let (h, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => (&text[..=end], text[end + 1..].strip_prefix(':')),
            None => return Err(format!("`{}` has no closing bracket", crate::text::escape_line(text))),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err(format!("`{}`: write an IPv6 address in brackets", crate::text::escape_line(text))),
            None => (text, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("`{}` is not a port (1 to 65535)", crate::text::escape_line(p))),
        },
    };
    Ok((host(h)?, port))
}

/// Parses what follows `net:` in a grant.
pub(super) fn pattern(rest: &str) -> Result<super::ResourcePattern, String> {
    let name = if rest.is_empty() {
        return Err(
            "no host after `net:` (e.g. `net:example.com`, `net:example.com:443`, `net:*.example.com`)".to_string()
        );
    } else if rest == "*" {
        PatternName::Any
    } else if let Some(domain) = rest.strip_prefix("*.") {
        let (domain, port) = split(domain)?;
        if port.is_some() {
            return Err("a domain pattern `*.DOMAIN` covers every port; name one host to limit its port".to_string());
        }
        if domain.starts_with('[') || domain.parse::<Ipv4Addr>().is_ok() {
            return Err(format!("`*.{domain}`: an address has no subdomains"));
        }
        PatternName::Subtree(domain)
    } else if rest.contains('*') {
        return Err("host patterns are a host, HOST:PORT, `*.DOMAIN` or `*`".to_string());
    } else {
        let (host, port) = split(rest)?;
        PatternName::Exact(match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        })
    };
    Ok(super::ResourcePattern { kind: super::ResourceKind::Net, name })
}

/// The host of a resource name `host:port`.
fn host_of(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((h, _)) if !h.is_empty() && (h.starts_with('[') || !h.contains(':')) => h,
        _ => name,
    }
}

fn has_port(exact: &str) -> bool {
    host_of(exact) != exact
}

fn subdomain_of(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

pub(super) fn matches(pattern: &PatternName, resource: &str) -> bool {
    match pattern {
        PatternName::Exact(n) if has_port(n) => n == resource,
        PatternName::Exact(n) => host_of(resource) == n,
        PatternName::Subtree(d) => subdomain_of(host_of(resource), d),
        PatternName::Any => true,
    }
}

pub(super) fn specificity(pattern: &PatternName) -> (u8, usize) {
    match pattern {
        PatternName::Exact(n) if has_port(n) => (3, 0),
        PatternName::Exact(_) => (2, 0),
        PatternName::Subtree(d) => (1, d.split('.').count()),
        PatternName::Any => (0, 0),
    }
}

pub(super) fn within(inner: &PatternName, outer: &PatternName) -> bool {
    match (inner, outer) {
        (_, PatternName::Any) => true,
        (PatternName::Any, _) => false,
        (PatternName::Exact(a), PatternName::Exact(b)) => a == b || (!has_port(b) && host_of(a) == b),
        (PatternName::Subtree(_), PatternName::Exact(_)) => false,
        (PatternName::Exact(a), PatternName::Subtree(d)) => subdomain_of(host_of(a), d),
        (PatternName::Subtree(a), PatternName::Subtree(d)) => a == d || subdomain_of(a, d),
    }
}

/// Whether a pattern names one host exactly (with or without a port): the
/// only kind of grant that reaches loopback, private and link-local
/// addresses (a wildcard is for the public network).
pub fn is_exact(pattern: &PatternName) -> bool {
    matches!(pattern, PatternName::Exact(_))
}
