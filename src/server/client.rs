//! Who is asking: client IP and user agent, as recorded on sessions and
//! audit events.

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{Extensions, HeaderMap, header::USER_AGENT, request::Parts},
};
use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
};

/// Longest user agent we store; real ones are a few hundred bytes.
const MAX_USER_AGENT: usize = 512;

#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The socket peer, or, when `trust_forwarded_for` is set, the last hop of
    /// `X-Forwarded-For` (the one our own proxy appended).
    pub fn from_request(
        headers: &HeaderMap,
        extensions: &Extensions,
        trust_forwarded_for: bool,
    ) -> Self {
        let forwarded = trust_forwarded_for
            .then(|| {
                headers
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .rsplit(',')
                    .next()?
                    .trim()
                    .parse::<IpAddr>()
                    .ok()
            })
            .flatten();
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let user_agent = headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| truncate(ua.trim(), MAX_USER_AGENT))
            .filter(|ua| !ua.is_empty());
        ClientInfo {
            ip: forwarded.or(peer).map(|ip| ip.to_canonical().to_string()),
            user_agent,
        }
    }

    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
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
    fn forwarded_for_is_used_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
        assert_eq!(
            ClientInfo::from_request(&headers, &ext, true).ip(),
            Some("198.51.100.7")
        );
        assert_eq!(
            ClientInfo::from_request(&headers, &ext, false).ip(),
            Some("127.0.0.1")
        );
    }

    #[test]
    fn long_user_agents_are_cut_and_non_ascii_ones_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, "a".repeat(2000).parse().unwrap());
        let ua = ClientInfo::from_request(&headers, &Extensions::new(), false)
            .user_agent
            .unwrap();
        assert_eq!(ua.len(), MAX_USER_AGENT);
        headers.insert(
            USER_AGENT,
            axum::http::HeaderValue::from_bytes("é".repeat(10).as_bytes()).unwrap(),
        );
        assert!(
            ClientInfo::from_request(&headers, &Extensions::new(), false)
                .user_agent
                .is_none()
        );
        assert_eq!(truncate("ééé", 3), "é");
    }
}
