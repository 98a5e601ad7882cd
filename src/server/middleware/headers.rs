//! Response headers every answer carries, and refusal of oversized requests.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use http_body_util::Limited;

use crate::{
    auth::{AppError, ErrorCode},
    server::state::AppState,
};

/// Largest request body anything here accepts: the JSON API and server
/// functions need well under 1 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Largest `Cookie` header we read. Ours need under 2 KiB.
const MAX_COOKIE_HEADER: usize = 8 * 1024;
/// Largest total of all request headers.
const MAX_HEADERS: usize = 32 * 1024;

/// For responses that did not set their own policy (JSON, redirects, errors):
/// nothing may load, nothing may frame. HTML pages set a nonce-based policy
/// in `app::shell`.
const FALLBACK_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds the security headers to every response, and refuses requests whose
/// headers or body are too large before anything reads them.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = match oversized(&request) {
        Some(error) => error.into_response(),
        None => next.run(limit_body(request)).await,
    };
    decorate(response, state.cookies.secure())
}

fn oversized(request: &Request) -> Option<AppError> {
    let headers = request.headers();
    let cookies: usize = headers
        .get_all(header::COOKIE)
        .iter()
        .map(|v| v.len())
        .sum();
    let total: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if cookies > MAX_COOKIE_HEADER || total > MAX_HEADERS {
        return Some(AppError::new(
            ErrorCode::HeadersTooLarge,
            "The request headers are too large.",
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared
        .filter(|&n| n > MAX_BODY_BYTES as u64)
        .map(|_| too_large())
}

pub fn too_large() -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "The request body is larger than {} KiB.",
            MAX_BODY_BYTES / 1024
        ),
    )
}

/// Caps bodies sent without a length (chunked) too; reading past the cap fails.
fn limit_body(request: Request) -> Request {
    request.map(|body| Body::new(Limited::new(body, MAX_BODY_BYTES)))
}

fn decorate(mut response: Response, secure: bool) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(header::CONTENT_SECURITY_POLICY, FALLBACK_CSP);
    // Anything that did not choose its own caching (static assets do) may be
    // personal: pages, API answers, redirects. Never store it.
    set(header::CACHE_CONTROL, "no-store");
    if secure {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    response
}
