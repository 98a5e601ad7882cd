//! Property tests for the parsers that face attackers: `next` validation,
//! refresh and access tokens, and cookie reading.

use portcullis::{
    auth::safe_next_path,
    server::{
        config::{JwtKeySpec, JwtSettings},
        cookies::SessionCookies,
        db::{SessionId, UserId},
        time::Timestamp,
        tokens::{RefreshToken, TokenIssuer, new_rotation_key},
    },
};
use proptest::prelude::*;
use std::{sync::OnceLock, time::Duration};

fn issuer() -> &'static TokenIssuer {
    static ISSUER: OnceLock<TokenIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        TokenIssuer::new(
            &[JwtKeySpec {
                kid: "k1".into(),
                secret: vec![9u8; 32].into(),
            }],
            &JwtSettings {
                keys: None,
                issuer: "portcullis".into(),
                audience: "portcullis".into(),
                access_ttl: Duration::from_secs(900),
                leeway: Duration::from_secs(5),
            },
        )
        .expect("an issuer")
    })
}

fn genuine_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        issuer()
            .issue_access(UserId::random(), SessionId::random(), Timestamp::now())
            .expect("a token")
            .0
    })
}

/// Reads the session cookies from a raw `Cookie` header exactly as the server
/// does: through tower-cookies' layer, then `SessionCookies::read`.
/// The (access, refresh) values read from a request.
type Read = (Option<String>, Option<String>);

fn read_cookie_header(header: &str) -> Option<Read> {
    use std::sync::{Arc, Mutex};
    use tower::{Layer, Service, ServiceExt};
    let value = axum::http::HeaderValue::from_str(header).ok()?;
    let request = axum::http::Request::builder()
        .header("cookie", value)
        .body(axum::body::Body::empty())
        .ok()?;
    let seen: Arc<Mutex<Option<Read>>> = Arc::default();
    let runtime = tokio::runtime::Builder::new_current_thread().build().ok()?;
    let sink = seen.clone();
    runtime.block_on(async move {
        let mut service = tower_cookies::CookieManagerLayer::new().layer(tower::service_fn(
            move |request: axum::http::Request<axum::body::Body>| {
                let sink = sink.clone();
                async move {
                    let cookies = request
                        .extensions()
                        .get::<tower_cookies::Cookies>()
                        .cloned()
                        .expect("the layer adds the jar");
                    let read = SessionCookies::new(false).read(&cookies);
                    *sink.lock().unwrap() = Some((read.access, read.refresh));
                    Ok::<_, std::convert::Infallible>(axum::http::Response::new(
                        axum::body::Body::empty(),
                    ))
                }
            },
        ));
        let _ = service.ready().await.ok()?.call(request).await;
        Some(())
    })?;
    seen.lock().unwrap().take()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn an_accepted_next_path_never_leaves_the_site(raw in any::<String>()) {
        if let Some(path) = safe_next_path(&raw) {
            prop_assert_eq!(&path, &raw);
            let base = url::Url::parse("https://app.example/base/").unwrap();
            let resolved = base.join(&path).expect("a path resolves");
            prop_assert_eq!(resolved.host_str(), Some("app.example"));
            prop_assert_eq!(resolved.scheme(), "https");
        }
    }

    #[test]
    fn tricky_next_values_never_leave_the_site(
        prefix in prop::sample::select(vec!["//", "/\\", "\\\\", "https:", "javascript:", "/%2f/", "/%5c", "/\t/", " /", "%2F%2F"]),
        host in "[a-z]{1,12}\\.example",
    ) {
        prop_assert_eq!(safe_next_path(&format!("{prefix}{host}")), None);
    }

    #[test]
    fn plain_site_paths_are_kept(path in "(/[a-z0-9_-]{1,12}){1,5}(\\?[a-z]{1,5}=[a-z0-9]{1,5})?") {
        prop_assert_eq!(safe_next_path(&path), Some(path.clone()));
    }

    #[test]
    fn refresh_token_parsing_accepts_exactly_its_own_shape(raw in any::<String>()) {
        if let Some(token) = RefreshToken::parse(&raw) {
            prop_assert_eq!(token.expose(), raw.as_str());
            prop_assert!(raw.len() == 43 || raw.len() == 66, "{}", raw.len());
            prop_assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
            prop_assert_eq!(token.hash(), RefreshToken::parse(&raw).unwrap().hash());
        }
    }

    #[test]
    fn successors_are_valid_tokens_and_differ_per_session(_seed in any::<u64>()) {
        let session = SessionId::random();
        let token = RefreshToken::generate(session);
        let (key_a, key_b) = (new_rotation_key(), new_rotation_key());
        let next = token.successor(&key_a, session);
        prop_assert!(RefreshToken::parse(next.expose()).is_some());
        let (again, other) = (token.successor(&key_a, session), token.successor(&key_b, session));
        prop_assert_eq!(next.expose(), again.expose());
        prop_assert_ne!(next.expose(), other.expose());
        prop_assert_ne!(next.expose(), token.expose());
    }

    #[test]
    fn arbitrary_strings_never_verify_as_access_tokens(raw in any::<String>()) {
        prop_assert!(issuer().verify_access(&raw).is_err());
        prop_assert!(issuer().verify_access_ignoring_expiry(&raw).is_err());
    }

    #[test]
    fn any_change_to_a_genuine_access_token_makes_it_fail(position in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.=-]") {
        let genuine = genuine_token();
        prop_assert!(issuer().verify_access(genuine).is_ok());
        let index = position.index(genuine.len());
        let mut tampered = genuine.to_string();
        tampered.replace_range(index..index + 1, &replacement);
        if tampered != genuine {
            prop_assert!(issuer().verify_access(&tampered).is_err(), "{} verified", tampered);
        }
    }

    #[test]
    fn cookie_reading_returns_only_what_was_sent_and_never_panics(header in "[ -~]{0,300}") {
        if let Some((access, refresh)) = read_cookie_header(&header) {
            for value in [access, refresh].into_iter().flatten() {
                prop_assert!(!value.is_empty() && value.len() <= 4096);
                prop_assert!(header.contains(&value));
            }
        }
    }

    #[test]
    fn our_cookies_are_found_among_any_others(
        others in prop::collection::vec(("[a-z]{1,8}", "[A-Za-z0-9]{0,12}"), 0..20),
        access in "[A-Za-z0-9._-]{1,200}",
        refresh in "[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}",
    ) {
        let mut pairs: Vec<String> = others.iter().filter(|(k, _)| !k.starts_with("portcullis")).map(|(k, v)| format!("{k}={v}")).collect();
        pairs.insert(pairs.len() / 2, format!("portcullis_access={access}"));
        pairs.push(format!("portcullis_refresh={refresh}"));
        let read = read_cookie_header(&pairs.join("; ")).expect("a valid header");
        prop_assert_eq!(read, (Some(access), Some(refresh)));
    }
}
