//! `WSGITrustedProxyHeaders` / `WSGITrustedProxies` with mod_wsgi 6's semantics: which
//! forwarded headers a front-end proxy may set, who counts as that proxy, and what they change
//! in the CGI variables. Pure: the handler calls [`apply`] on the request's variables.
//!
//! For every category with a declared header, every synonym is taken out of the environ
//! except the declared header that was applied: a peer that is not a trusted proxy gets
//! nothing applied, so none of them reach the application (the CVE-2022-2255 class: an
//! application must never see a spoofed `X-Forwarded-*` its admin declared trusted).
//! Declared headers are applied in directive order, so the last one present wins. Values are
//! used as sent, except X-Forwarded-For, whose chain is walked right to left over the trusted
//! proxies (empty elements skipped). Unlike mod_wsgi, no name in X-Forwarded-For is resolved
//! through DNS: an element that is not an IP address ends the walk.

use crate::environ::Environ;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Client,
    Host,
    Server,
    Port,
    ScriptName,
    Scheme,
}

const CATEGORIES: [Category; 6] = [
    Category::Client,
    Category::Host,
    Category::Server,
    Category::Port,
    Category::ScriptName,
    Category::Scheme,
];

#[derive(Debug, Clone, Copy)]
enum Effect {
    ForwardedFor,
    Set(&'static str),
    ScriptName,
    /// `http` / `https`.
    SchemeName,
    /// `on`/`true`/`1` / `off`/`false`/`0`.
    SchemeFlag,
}

/// The headers mod_wsgi knows, by CGI variable name.
const REGISTRY: &[(&str, Category, Effect)] = &[
    (
        "HTTP_X_FORWARDED_FOR",
        Category::Client,
        Effect::ForwardedFor,
    ),
    (
        "HTTP_X_CLIENT_IP",
        Category::Client,
        Effect::Set("REMOTE_ADDR"),
    ),
    (
        "HTTP_X_REAL_IP",
        Category::Client,
        Effect::Set("REMOTE_ADDR"),
    ),
    (
        "HTTP_X_FORWARDED_HOST",
        Category::Host,
        Effect::Set("HTTP_HOST"),
    ),
    ("HTTP_X_HOST", Category::Host, Effect::Set("HTTP_HOST")),
    (
        "HTTP_X_FORWARDED_SERVER",
        Category::Server,
        Effect::Set("SERVER_NAME"),
    ),
    (
        "HTTP_X_FORWARDED_PORT",
        Category::Port,
        Effect::Set("SERVER_PORT"),
    ),
    (
        "HTTP_X_SCRIPT_NAME",
        Category::ScriptName,
        Effect::ScriptName,
    ),
    (
        "HTTP_X_FORWARDED_SCRIPT_NAME",
        Category::ScriptName,
        Effect::ScriptName,
    ),
    (
        "HTTP_X_FORWARDED_PROTO",
        Category::Scheme,
        Effect::SchemeName,
    ),
    (
        "HTTP_X_FORWARDED_SCHEME",
        Category::Scheme,
        Effect::SchemeName,
    ),
    ("HTTP_X_SCHEME", Category::Scheme, Effect::SchemeName),
    (
        "HTTP_X_FORWARDED_HTTPS",
        Category::Scheme,
        Effect::SchemeFlag,
    ),
    ("HTTP_X_FORWARDED_SSL", Category::Scheme, Effect::SchemeFlag),
    ("HTTP_X_HTTPS", Category::Scheme, Effect::SchemeFlag),
];

/// The CGI variable of a header named in `WSGITrustedProxyHeaders` (`X-Forwarded-For` ->
/// `HTTP_X_FORWARDED_FOR`); a name that cannot be a header of the environ is an error.
pub fn header_key(name: &str) -> Result<String, String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!(
            "WSGITrustedProxyHeaders: '{name}' is not an HTTP header name (letters, digits and '-'; Apache drops headers with other characters)"
        ));
    }
    Ok(format!(
        "HTTP_{}",
        name.to_ascii_uppercase().replace('-', "_")
    ))
}

/// An address or network of `WSGITrustedProxies`: `10.0.0.1`, `10.1` (= 10.1.0.0/16),
/// `192.168.0.0/16`, `172.16.0.0/255.240.0.0`, `::1`, `fe80::/10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    net: IpAddr,
    prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let bad = || format!("Unable to parse trusted proxy IP address/subnet of \"{s}\".");
        let bad_mask = || {
            format!(
                "Unable to parse trusted proxy IP address/subnet of \"{s}\". The specified network mask is invalid."
            )
        };
        let (addr, mask) = match s.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (s, None),
        };
        if addr.contains(':') {
            let ip: Ipv6Addr = addr.parse().map_err(|_| bad())?;
            let prefix = match mask {
                None => 128,
                Some(m) => m
                    .parse::<u8>()
                    .ok()
                    .filter(|&p| p <= 128)
                    .ok_or_else(bad_mask)?,
            };
            return Ok(Subnet {
                net: IpAddr::V6(mask_v6(ip, prefix)),
                prefix,
            });
        }
        // IPv4, possibly partial ("10.1": the octets given make the network, as APR reads it)
        let octets: Vec<&str> = addr.split('.').collect();
        if octets.is_empty() || octets.len() > 4 {
            return Err(bad());
        }
        let mut b = [0u8; 4];
        for (i, o) in octets.iter().enumerate() {
            if o.is_empty() || o.len() > 3 || !o.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            b[i] = o.parse().map_err(|_| bad())?;
        }
        let given = (octets.len() * 8) as u8;
        let prefix = match mask {
            None => given,
            Some(m) if m.contains('.') => {
                let mask: Ipv4Addr = m.parse().map_err(|_| bad_mask())?;
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(bad_mask());
                }
                bits.leading_ones() as u8
            }
            Some(m) => m
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= 32)
                .ok_or_else(bad_mask)?,
        };
        Ok(Subnet {
            net: IpAddr::V4(mask_v4(Ipv4Addr::from(b), prefix)),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask_v4(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(a)) => mask_v6(a, self.prefix) == net,
            _ => false,
        }
    }
}

fn mask_v4(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(a) & m)
}

fn mask_v6(a: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(a) & m)
}

fn trusted(addr: &str, proxies: &[Subnet]) -> bool {
    addr.parse::<IpAddr>()
        .is_ok_and(|ip| proxies.iter().any(|s| s.contains(ip)))
}

/// What the forwarded headers did to the scheme: `Some(https)` when a scheme header was
/// applied (even with a value that changed nothing: then `https` is what the environ already
/// said), so the connection's own TLS is not consulted.
pub type SchemeApplied = Option<bool>;

/// Rewrites the CGI variables for the declared forwarded headers. `headers`: the declared
/// CGI names in directive order; `proxies`: `None` trusts every peer. `https`: whether the
/// request counts as HTTPS so far (TLS, `SetEnv HTTPS`).
pub fn apply(
    env: &mut Environ,
    headers: &[String],
    proxies: Option<&[Subnet]>,
    https: bool,
) -> SchemeApplied {
    let peer_trusted = match proxies {
        None => true,
        Some(list) => env
            .get("REMOTE_ADDR")
            .and_then(|a| std::str::from_utf8(a).ok())
            .is_some_and(|a| trusted(a, list)),
    };
    let mut matched = [false; CATEGORIES.len()];
    let mut winner: [Option<&'static str>; CATEGORIES.len()] = [None; CATEGORIES.len()];
    let mut scheme: SchemeApplied = None;
    for name in headers {
        let Some(&(key, category, effect)) = REGISTRY.iter().find(|(k, ..)| k == name) else {
            continue;
        };
        let c = category as usize;
        matched[c] = true;
        if !peer_trusted {
            continue;
        }
        let Some(value) = env.get(key).map(|v| v.to_vec()) else {
            continue;
        };
        let s = String::from_utf8_lossy(&value);
        match effect {
            Effect::ForwardedFor => forwarded_for(env, &s, proxies),
            Effect::Set(target) => env.set(target, &value),
            Effect::ScriptName => {
                env.set("mod_wsgi.mount_point", &value);
                env.set("SCRIPT_NAME", &value);
            }
            Effect::SchemeName => {
                let now = scheme.unwrap_or(https);
                scheme = Some(match s.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "http" => false,
                    _ => now,
                });
            }
            Effect::SchemeFlag => {
                let now = scheme.unwrap_or(https);
                scheme = Some(match s.to_ascii_lowercase().as_str() {
                    "on" | "true" | "1" => true,
                    "off" | "false" | "0" => false,
                    _ => now,
                });
            }
        }
        winner[c] = Some(key);
    }
    env.retain_keys(|k| {
        !REGISTRY.iter().any(|&(key, category, _)| {
            let c = category as usize;
            key == k && matched[c] && winner[c] != Some(key)
        })
    });
    scheme
}

/// X-Forwarded-For: with a proxy list, the client is the element before the leftmost of the
/// trusted proxies at the end of the chain (the header is cut to start there); without one,
/// the first element (the header is left as sent).
fn forwarded_for(env: &mut Environ, value: &str, proxies: Option<&[Subnet]>) {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .collect();
    if items.is_empty() {
        return;
    }
    let Some(proxies) = proxies else {
        env.set("REMOTE_ADDR", items[0].as_bytes());
        return;
    };
    let trusted_from = items
        .iter()
        .rposition(|i| !trusted(i, proxies))
        .map_or(0, |untrusted| untrusted + 1);
    let client = if trusted_from < items.len() {
        trusted_from.saturating_sub(1)
    } else {
        items.len() - 1
    };
    env.set("REMOTE_ADDR", items[client].as_bytes());
    env.set(
        "HTTP_X_FORWARDED_FOR",
        items[client..].join(", ").as_bytes(),
    );
}

#[cfg(test)]
mod tests;
