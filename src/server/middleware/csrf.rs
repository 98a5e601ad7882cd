//! Refuses cross-site state-changing requests.
//!
//! Cookies are `SameSite=Lax`, which already keeps them off cross-site POSTs
//! in current browsers; this is the second, browser-independent layer the
//! OWASP CSRF cheat sheet recommends. Every unsafe request must carry an
//! `Origin` we serve, or, without `Origin`, a `Sec-Fetch-Site` of
//! `same-origin`, `same-site` or `none` (typed URL, bookmark). Requests that
//! carry neither header are not from a browser (curl, scripts) and cannot
//! carry a victim's cookies by accident, so they pass. Requests with a
//! well-formed `Authorization: Bearer` are exempt: a browser never adds one by
//! itself, and such a request never acts on cookies. Other schemes (Basic,
//! Digest, Negotiate) are exactly what browsers do replay on their own, so
//! they exempt nothing.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, header::ORIGIN},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    auth::{AppError, ErrorCode},
    server::{middleware::session::AuthState, state::AppState},
};

pub async fn refuse_cross_site(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if is_safe(request.method())
        || AuthState::is_bearer_request(request.headers())
        || is_same_origin(request.headers(), &state.allowed_origins)
    {
        return next.run(request).await;
    }
    tracing::warn!(method = %request.method(), path = request.uri().path(), "cross-site request refused");
    AppError::new(
        ErrorCode::CrossSiteRequest,
        "This request came from another site and was refused.",
    )
    .into_response()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_same_origin(headers: &HeaderMap, allowed: &[String]) -> bool {
    if let Some(origin) = headers.get(ORIGIN) {
        return origin
            .to_str()
            .is_ok_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)));
    }
    match headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("cross-site"))
    {
        Some(site) => matches!(site, "same-origin" | "same-site" | "none"),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn origin_decides_when_present() {
        let allowed = vec!["http://127.0.0.1:3000".to_string()];
        assert!(is_same_origin(
            &headers(&[("origin", "http://127.0.0.1:3000")]),
            &allowed
        ));
        assert!(!is_same_origin(
            &headers(&[("origin", "https://evil.example")]),
            &allowed
        ));
        assert!(!is_same_origin(&headers(&[("origin", "null")]), &allowed));
        // Origin wins over a forged-looking Sec-Fetch-Site.
        assert!(!is_same_origin(
            &headers(&[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin")
            ]),
            &allowed
        ));
    }

    #[test]
    fn fetch_metadata_decides_without_origin() {
        let allowed = vec!["http://127.0.0.1:3000".to_string()];
        for ok in ["same-origin", "same-site", "none"] {
            assert!(
                is_same_origin(&headers(&[("sec-fetch-site", ok)]), &allowed),
                "{ok}"
            );
        }
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            &allowed
        ));
        assert!(
            is_same_origin(&headers(&[]), &allowed),
            "non-browser clients pass"
        );
    }
}
