//! Pure: a `real=` line's own request that is a whole URL (ldirectord's
//! per-real URL), read into where the http(s) check goes.

use core::net::IpAddr;

/// Where a per-real full URL sends an http(s) check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealUrl {
    /// The URL's host, an address.
    pub addr: IpAddr,
    /// Its port (80 or 443 when not written).
    pub port: u16,
    /// Its path and query, with the leading `/`.
    pub path: String,
}

/// A per-real URL lvsd cannot check: its host is not an address (or its
/// port is 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the real's request `{request}` is a URL, which ldirectord fetches instead of the real; lvsd needs its host to be an address (and a port other than 0), not `{host}`"
)]
pub struct UrlError {
    /// The request as written.
    pub request: String,
    /// Its host and port as written.
    pub host: String,
}

/// ldirectord's per-real URL: a `real=` line's own request that is a whole
/// URL of the check's scheme (`"http://10.0.0.5:8080/alive"` for http,
/// `https://` for https) is fetched from that URL's host and port instead
/// of the real's address and check port (ld_setup: `$$r{url} = $uri` when
/// the request matches `$schema://`; the man page: "If the request string
/// starts with http://... the IP-address and port of the real server is
/// overridden"). `None`: not a URL, a path; `Some(Err)`: a URL lvsd cannot
/// check (its host must be an address), with why.
pub fn real_url(tls: bool, request: &str) -> Option<Result<RealUrl, UrlError>> {
    let scheme = if tls { "https://" } else { "http://" };
    let rest = request
        .strip_prefix('/')
        .unwrap_or(request)
        .strip_prefix(scheme)?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    let default = if tls { 443 } else { 80 };
    let parsed = if let Ok(sa) = authority.parse::<core::net::SocketAddr>() {
        Some((sa.ip(), sa.port()))
    } else if let Some(v6) = authority
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
    {
        v6.parse::<IpAddr>().ok().map(|a| (a, default))
    } else {
        authority
            .parse::<core::net::Ipv4Addr>()
            .ok()
            .map(|a| (IpAddr::V4(a), default))
    };
    Some(match parsed {
        Some((addr, port)) if port != 0 => Ok(RealUrl { addr, port, path }),
        _ => Err(UrlError {
            request: request.strip_prefix('/').unwrap_or(request).to_owned(),
            host: authority.to_owned(),
        }),
    })
}
