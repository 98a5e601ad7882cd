//! Who is asking: client IP and user agent, as recorded on sessions and
//! audit events.

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{
        Extensions, HeaderMap, HeaderName,
        header::{FORWARDED, USER_AGENT},
        request::Parts,
    },
};
use std::{
    convert::Infallible,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::atomic::{AtomicBool, Ordering},
};

pub use crate::server::config::{ForwardedHeader, ProxySettings};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Longest user agent we store; real ones are a few hundred bytes.
const MAX_USER_AGENT: usize = 512;

#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The device cookie this browser sent, if any (unverified).
    pub device: Option<DeviceCookie>,
}

/// A device cookie's raw value. Not printed: it is a proof of past sign-ins.
#[derive(Clone, Default)]
pub struct DeviceCookie(pub String);

impl std::fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCookie(..)")
    }
}

impl ClientInfo {
    /// The client's address (see [`client_address`]) and its user agent.
    pub fn from_request(
        headers: &HeaderMap,
        extensions: &Extensions,
        proxies: &ProxySettings,
    ) -> Self {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let user_agent = headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| truncate(ua.trim(), MAX_USER_AGENT))
            .filter(|ua| !ua.is_empty());
        ClientInfo {
            ip: client_address(headers, peer, proxies).map(|ip| ip.to_canonical().to_string()),
            user_agent,
            device: None,
        }
    }

    /// The throttle bucket of the client's address: the address itself for
    /// IPv4, its /64 network for IPv6, because one subscriber is routinely
    /// given a whole /64 and could otherwise guess from 2^64 addresses.
    pub fn network(&self) -> Option<String> {
        let ip = self.ip()?.parse::<IpAddr>().ok()?;
        Some(match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        })
    }

    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
}

/// The client's address. Without trusted proxies it is the socket peer.
/// Behind `proxies.trusted_hops` proxies, each of which appends the address
/// it received the request from, it is the entry that many hops from the
/// right of the forwarding header, all of its lines read as one list:
/// everything left of it was written by the client and proves nothing. A
/// list shorter than that is read from its leftmost entry (fewer proxies
/// than configured were crossed). An entry that is not an address (`unknown`,
/// an obfuscated name) falls back to the peer.
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    proxies: &ProxySettings,
) -> Option<IpAddr> {
    let hops = usize::from(proxies.trusted_hops);
    if hops == 0 {
        if headers.contains_key(&X_FORWARDED_FOR) || headers.contains_key(FORWARDED) {
            warn_untrusted_proxy();
        }
        return peer;
    }
    let entries = forwarded_entries(headers, proxies.header);
    if entries.is_empty() {
        return peer;
    }
    let index = entries.len().saturating_sub(hops);
    parse_node(&entries[index]).or(peer)
}

/// Every address entry of the forwarding header, across all its lines, in
/// order (leftmost is furthest from us).
fn forwarded_entries(headers: &HeaderMap, header: ForwardedHeader) -> Vec<String> {
    let lines = headers
        .get_all(match header {
            ForwardedHeader::XForwardedFor => X_FORWARDED_FOR,
            ForwardedHeader::Forwarded => FORWARDED,
        })
        .iter()
        // A line that is not text is one unusable entry, not nothing: it
        // still counts as a hop.
        .map(|line| line.to_str().unwrap_or("unknown"));
    let mut entries = Vec::new();
    for line in lines {
        for element in line.split(',') {
            match header {
                ForwardedHeader::XForwardedFor => entries.push(element.trim().to_string()),
                // RFC 7239: `for=192.0.2.43;proto=https`, `for="[2001:db8::1]:4711"`.
                ForwardedHeader::Forwarded => {
                    let node = element
                        .split(';')
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                        .map_or("unknown", |(_, value)| value.trim());
                    entries.push(node.trim_matches('"').to_string());
                }
            }
        }
    }
    entries
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// Forwarding headers on requests while no proxy is trusted: either clients
/// send them (harmless, ignored) or the server sits behind a proxy it was
/// not told about, and every client shares the proxy's throttle bucket.
/// Said once per process.
fn warn_untrusted_proxy() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a request carries X-Forwarded-For or Forwarded, but PORTCULLIS_TRUSTED_PROXIES \
             is 0: client addresses are the socket peer's. Behind a reverse proxy, set it to \
             the number of proxies in front of this server"
        );
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Set by the session middleware on every dynamic request.
impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .unwrap_or_default())
    }
}

/// "Firefox 128 on Linux", from a User-Agent header.
pub fn describe_device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown device".into();
    };
    match woothee::parser::Parser::new().parse(ua) {
        Some(result) if result.name != "UNKNOWN" => {
            let version = result.version.split('.').next().unwrap_or_default();
            let browser = if version.is_empty() || version == "UNKNOWN" {
                result.name.to_string()
            } else {
                format!("{} {}", result.name, version)
            };
            if result.os == "UNKNOWN" {
                browser
            } else {
                format!("{browser} on {}", result.os)
            }
        }
        _ => {
            let short: String = ua.chars().take(40).collect();
            if short.is_empty() {
                "Unknown device".into()
            } else {
                short
            }
        }
    }
}

/// The kind of device a user agent names: browser and system without their
/// versions ("Chrome on Linux"), so an update is not a new device. Unknown
/// agents are their own kind.
pub fn device_family(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
        return "Unknown device".into();
    };
    match woothee::parser::Parser::new().parse(ua) {
        Some(result) if result.name != "UNKNOWN" => format!("{} on {}", result.name, result.os),
        _ => ua.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_described_from_the_user_agent() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(describe_device(Some(chrome)), "Chrome 156 on Linux");
        assert!(describe_device(Some("curl/8.5.0")).contains("curl"));
        assert_eq!(describe_device(Some("zz")), "zz");
        assert_eq!(describe_device(None), "Unknown device");
    }

    #[test]
    fn a_browser_update_is_the_same_kind_of_device_and_another_browser_is_not() {
        let chrome = |v: &str| {
            format!(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36"
            )
        };
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";
        assert_eq!(device_family(Some(&chrome("156.0.0.0"))), "Chrome on Linux");
        assert_eq!(
            device_family(Some(&chrome("155.0.1.2"))),
            device_family(Some(&chrome("156.0.0.0")))
        );
        assert_ne!(
            device_family(Some(firefox)),
            device_family(Some(&chrome("156.0.0.0")))
        );
        assert_eq!(device_family(None), device_family(Some("")));
    }

    const PEER: [u8; 4] = [10, 0, 0, 1];

    fn address(lines: &[&str], header: ForwardedHeader, trusted_hops: u8) -> Option<String> {
        let name = match header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(name, line.parse().unwrap());
        }
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from((PEER, 4000))));
        let proxies = ProxySettings {
            trusted_hops,
            header,
        };
        ClientInfo::from_request(&headers, &ext, &proxies).ip
    }

    fn xff(lines: &[&str], hops: u8) -> Option<String> {
        address(lines, ForwardedHeader::XForwardedFor, hops)
    }

    #[test]
    fn forwarding_headers_are_ignored_without_trusted_proxies() {
        assert_eq!(
            xff(&["203.0.113.9, 198.51.100.7"], 0).as_deref(),
            Some("10.0.0.1")
        );
    }

    #[test]
    fn the_client_is_the_entry_as_many_hops_from_the_right_as_there_are_proxies() {
        assert_eq!(
            xff(&["203.0.113.9, 198.51.100.7"], 1).as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            xff(&["203.0.113.9, 198.51.100.7"], 2).as_deref(),
            Some("203.0.113.9")
        );
        // Fewer entries than proxies: the leftmost.
        assert_eq!(xff(&["198.51.100.7"], 3).as_deref(), Some("198.51.100.7"));
    }

    #[test]
    fn every_header_line_is_read_so_a_client_line_in_front_changes_nothing() {
        // HAProxy's `option forwardfor` appends a line of its own.
        assert_eq!(
            xff(&["6.6.6.6", "198.51.100.7"], 1).as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            xff(&["6.6.6.6, 7.7.7.7", "198.51.100.7, 192.0.2.5"], 2).as_deref(),
            Some("198.51.100.7")
        );
    }

    #[test]
    fn addresses_with_ports_and_brackets_are_understood() {
        assert_eq!(
            xff(&["198.51.100.7:4711"], 1).as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            xff(&["[2001:db8::1]:4711"], 1).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(xff(&["[2001:db8::1]"], 1).as_deref(), Some("2001:db8::1"));
        assert_eq!(xff(&["2001:db8::1"], 1).as_deref(), Some("2001:db8::1"));
        assert_eq!(xff(&["::ffff:192.0.2.1"], 1).as_deref(), Some("192.0.2.1"));
        // Not an address at the trusted position: the peer, never a guess.
        assert_eq!(xff(&["unknown"], 1).as_deref(), Some("10.0.0.1"));
        assert_eq!(
            xff(&["198.51.100.7, garbage"], 1).as_deref(),
            Some("10.0.0.1")
        );
    }

    #[test]
    fn the_standard_forwarded_header_is_read_when_configured() {
        let fwd = |lines: &[&str], hops| address(lines, ForwardedHeader::Forwarded, hops);
        assert_eq!(
            fwd(
                &["for=6.6.6.6", "for=198.51.100.7;proto=https;by=203.0.113.1"],
                1
            )
            .as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            fwd(&[r#"for="[2001:db8:cafe::17]:4711", For=192.0.2.60"#], 2).as_deref(),
            Some("2001:db8:cafe::17")
        );
        assert_eq!(fwd(&["for=_hidden"], 1).as_deref(), Some("10.0.0.1"));
        assert_eq!(fwd(&["proto=https"], 1).as_deref(), Some("10.0.0.1"));
        // The other header is not the configured one.
        assert_eq!(xff(&[], 1).as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn ipv6_clients_share_the_bucket_of_their_64() {
        let info = |ip: &str| ClientInfo {
            ip: Some(ip.into()),
            ..ClientInfo::default()
        };
        assert_eq!(
            info("2001:db8:1:2::1").network().as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(
            info("2001:db8:1:2:ffff:ffff:ffff:ffff").network(),
            info("2001:db8:1:2::8").network()
        );
        assert_ne!(
            info("2001:db8:1:3::1").network(),
            info("2001:db8:1:2::1").network()
        );
        assert_eq!(info("192.0.2.1").network().as_deref(), Some("192.0.2.1"));
        assert_eq!(
            info("::ffff:192.0.2.1").network().as_deref(),
            Some("192.0.2.1")
        );
    }

    #[test]
    fn long_user_agents_are_cut_and_non_ascii_ones_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, "a".repeat(2000).parse().unwrap());
        let ua = ClientInfo::from_request(&headers, &Extensions::new(), &ProxySettings::default())
            .user_agent
            .unwrap();
        assert_eq!(ua.len(), MAX_USER_AGENT);
        headers.insert(
            USER_AGENT,
            axum::http::HeaderValue::from_bytes("é".repeat(10).as_bytes()).unwrap(),
        );
        assert!(
            ClientInfo::from_request(&headers, &Extensions::new(), &ProxySettings::default())
                .user_agent
                .is_none()
        );
        assert_eq!(truncate("ééé", 3), "é");
    }
}
