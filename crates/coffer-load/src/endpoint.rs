//! Endpoint parsing and the loopback guard: a load tool pointed at someone else's server by a typo
//! is a denial-of-service tool, so non-loopback targets need `--allow-remote`.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};

/// Where requests go, and the strings the signer needs.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host[:port]` exactly as sent in the Host header (and signed).
    pub authority: String,
    pub addr: SocketAddr,
}

/// The parts of an endpoint URL before name resolution.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedEndpoint {
    pub authority: String,
    /// Host without IPv6 brackets, ready for resolution.
    pub host: String,
    pub port: u16,
}

/// Accepts `http://host[:port]` with an empty or `/` path; TLS is out of scope (the server's HTTP
/// ceiling is what we measure).
pub fn parse(endpoint: &str) -> anyhow::Result<ParsedEndpoint> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("invalid endpoint URL {endpoint:?}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => bail!("https endpoints are not supported; use http://"),
        _ => bail!("endpoint must start with http://"),
    }
    let Some(authority) = uri.authority() else {
        bail!("endpoint has no host");
    };
    if authority.as_str().contains('@') {
        bail!("endpoint must not carry user information");
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        bail!("endpoint must not have a path or query (requests go to /)");
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        bail!("endpoint has no host");
    }
    Ok(ParsedEndpoint {
        authority: authority.as_str().to_owned(),
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(80),
    })
}

/// Whether a host name or literal is loopback before resolution; `localhost` counts (its resolved
/// addresses are checked again afterwards).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| is_loopback_ip(&ip))
}

/// 127.0.0.0/8, ::1, and IPv4-mapped loopback (::ffff:127.x.y.z).
pub fn is_loopback_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Parses, resolves and applies the loopback guard; the first resolved address is used.
pub async fn resolve(endpoint: &str, allow_remote: bool) -> anyhow::Result<Endpoint> {
    let parsed = parse(endpoint)?;
    if !allow_remote && !is_loopback_host(&parsed.host) {
        bail!(
            "refusing non-loopback endpoint {endpoint:?}: pass --allow-remote to load a remote server"
        );
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((parsed.host.as_str(), parsed.port))
        .await
        .with_context(|| format!("cannot resolve {}", parsed.host))?
        .collect();
    // A name that looks local but resolves elsewhere (a hosts-file entry) is still remote.
    if !allow_remote && addrs.iter().any(|a| !is_loopback_ip(&a.ip())) {
        bail!(
            "{} resolves to a non-loopback address; pass --allow-remote",
            parsed.host
        );
    }
    let Some(addr) = addrs.first().copied() else {
        bail!("{} resolved to no address", parsed.host);
    };
    Ok(Endpoint {
        authority: parsed.authority,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_endpoint() {
        let p = parse("http://127.0.0.1:4700").unwrap();
        assert_eq!(
            p,
            ParsedEndpoint {
                authority: "127.0.0.1:4700".into(),
                host: "127.0.0.1".into(),
                port: 4700
            }
        );
        assert_eq!(parse("http://localhost/").unwrap().port, 80);
        assert_eq!(parse("http://[::1]:9000").unwrap().host, "::1");
    }

    #[test]
    fn rejects_bad_endpoints() {
        for bad in [
            "https://127.0.0.1:4700",
            "127.0.0.1:4700",
            "ftp://127.0.0.1",
            "http://127.0.0.1:4700/prefix",
            "http://127.0.0.1:4700/?a=b",
            "http://user:pw@127.0.0.1:4700",
            "not a url",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn loopback_classification() {
        for host in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "localhost",
            "LOCALHOST",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(host), "{host} should be loopback");
        }
        for host in [
            "10.0.0.1",
            "0.0.0.0",
            "192.168.1.1",
            "::",
            "example.com",
            "localhost.example.com",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback_host(host), "{host} should not be loopback");
        }
    }

    #[tokio::test]
    async fn resolve_applies_the_guard() {
        let e = resolve("http://127.0.0.1:4700", false).await.unwrap();
        assert_eq!(e.authority, "127.0.0.1:4700");
        assert!(e.addr.ip().is_loopback());
        let err = resolve("http://10.1.2.3:4700", false).await.unwrap_err();
        assert!(err.to_string().contains("--allow-remote"));
        // Allowed explicitly: an IP literal resolves without any network traffic.
        let e = resolve("http://10.1.2.3:4700", true).await.unwrap();
        assert_eq!(e.addr.port(), 4700);
    }
}
