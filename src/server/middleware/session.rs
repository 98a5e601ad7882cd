//! Who is making this request, decided once, before any handler or page
//! renders.
//!
//! An `Authorization: Bearer` header is used alone when present. Otherwise
//! the cookies: a valid access token whose session is live signs the request
//! in; an expired one is renewed from the refresh token, here, before
//! rendering, so the new `Set-Cookie` headers are never lost to a streamed
//! response (leptos#3147). Cookies naming a session that is over are cleared,
//! and the request is marked `Ended` so pages can say "your session ended".

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, header::AUTHORIZATION, request::Parts},
    middleware::Next,
    response::Response,
};
use tower_cookies::Cookies;

use crate::server::{
    client::ClientInfo,
    cookies::CookieCredentials,
    db::MfaStatus,
    error::{AuthError, Fault},
    service::{Checked, Principal},
    state::AppState,
    tokens::TokenError,
};

/// Whether the handler of `path` reads credentials itself: the logout
/// server function (its path comes from its own declaration), the JSON
/// endpoints listed with their router, and the admin API.
fn resolved_by_handler(path: &str) -> bool {
    path == <crate::auth::Logout as server_fn::ServerFn>::PATH
        || crate::server::api::RESOLVED_BY_HANDLER.contains(&path)
        // The admin API reads only its key, never a session or a cookie.
        || path.starts_with(crate::server::api::ADMIN_PREFIX)
}

#[derive(Clone, Debug)]
pub enum AuthState {
    SignedIn(Principal),
    /// No credentials.
    Anonymous,
    /// Credentials named a session that is over.
    Ended,
    /// An `Authorization` header that is not a usable bearer token.
    BadBearer(TokenError),
    /// The database could not be asked; cookies were left alone. The fault
    /// is logged once: by whoever answers with it, or after the response.
    Unavailable(Fault),
    /// Not resolved: the handler reads credentials itself.
    Deferred,
}

impl AuthState {
    /// The signed-in principal, or the error a protected action answers with.
    pub fn require(&self) -> Result<&Principal, AuthError> {
        match self {
            AuthState::SignedIn(principal) => Ok(principal),
            AuthState::Ended => Err(AuthError::SessionEnded),
            AuthState::BadBearer(kind) => Err(AuthError::InvalidToken(*kind)),
            AuthState::Unavailable(fault) => Err(AuthError::Unavailable(fault.clone())),
            AuthState::Anonymous | AuthState::Deferred => Err(AuthError::Unauthenticated),
        }
    }

    /// A request authenticated by a well-formed `Authorization: Bearer`.
    /// Browsers never add one by themselves (unlike Basic, Digest or
    /// Negotiate credentials, which they replay on their own, cross-site
    /// too), so only these are exempt from the cross-site check, and they
    /// never act on cookies.
    pub fn is_bearer_request(headers: &HeaderMap) -> bool {
        matches!(bearer_token(headers), Some(Ok(_)))
    }
}

/// The bearer token of the `Authorization` header. `None` without one, or
/// with another scheme: Basic, Digest or Negotiate credentials belong to a
/// proxy in front of us, not to us, and are ignored. `Some(Err)` for the
/// Bearer scheme with an empty or malformed token (RFC 6750 `b64token`).
pub fn bearer_token(headers: &HeaderMap) -> Option<Result<&str, TokenError>> {
    let value = headers.get(AUTHORIZATION)?;
    let Ok(text) = value.to_str() else {
        return Some(Err(TokenError::Malformed));
    };
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    Some(if is_b64token(token) {
        Ok(token)
    } else {
        Err(TokenError::Malformed)
    })
}

/// RFC 6750: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c))
}

pub async fn resolve_session(
    State(state): State<AppState>,
    cookies: Cookies,
    mut request: Request,
    next: Next,
) -> Response {
    let mut client = ClientInfo::from_request(
        request.headers(),
        request.extensions(),
        &state.settings.proxies,
    );
    client.device = state.cookies.read_device(&cookies);
    let (auth, second_factors) = if resolved_by_handler(request.uri().path()) {
        (AuthState::Deferred, None)
    } else {
        resolve(&state, request.headers(), &cookies, &client).await
    };
    // A page that did not need the user (the login page during an outage)
    // never reports the fault; it is still worth one line, after the answer.
    let unreported = match &auth {
        AuthState::Unavailable(fault) => Some(fault.clone()),
        _ => None,
    };
    request.extensions_mut().insert(client);
    request.extensions_mut().insert(auth);
    if let Some(second_factors) = second_factors {
        request.extensions_mut().insert(second_factors);
    }
    let response = next.run(request).await;
    if let Some(fault) = unreported {
        fault.log_once("session check failed");
    }
    response
}

/// The request's sign-in state, and the account's second factors when the
/// access token's check read them (not after a renewal).
async fn resolve(
    state: &AppState,
    headers: &HeaderMap,
    cookies: &Cookies,
    client: &ClientInfo,
) -> (AuthState, Option<MfaStatus>) {
    if let Some(bearer) = bearer_token(headers) {
        return match bearer {
            Ok(token) => checked(from_result(state.auth.authenticate(token).await)),
            Err(kind) => (AuthState::BadBearer(kind), None),
        };
    }
    let credentials = state.cookies.read(cookies);
    if credentials.is_empty() {
        return (AuthState::Anonymous, None);
    }
    if let Some(access) = &credentials.access {
        match state.auth.authenticate(access).await {
            Ok(found) => return checked(Ok(found)),
            // Expired or unreadable: the refresh token decides below.
            Err(AuthError::InvalidToken(_)) => {}
            Err(error) => return (ended_or_unavailable(state, cookies, error), None),
        }
    }
    (renew(state, cookies, client, &credentials).await, None)
}

fn checked(result: Result<Checked, AuthState>) -> (AuthState, Option<MfaStatus>) {
    match result {
        Ok(Checked {
            principal,
            second_factors,
        }) => (AuthState::SignedIn(principal), Some(second_factors)),
        Err(state) => (state, None),
    }
}

/// An access token that is missing or expired: the refresh token decides.
async fn renew(
    state: &AppState,
    cookies: &Cookies,
    client: &ClientInfo,
    credentials: &CookieCredentials,
) -> AuthState {
    let Some(refresh) = &credentials.refresh else {
        return ended_or_unavailable(state, cookies, AuthError::SessionEnded);
    };
    match state.auth.refresh(refresh, client).await {
        Ok(issued) => {
            state.cookies.set(cookies, &issued);
            AuthState::SignedIn(issued.principal)
        }
        // A concurrent password change replaced the token; the response
        // that carried the new cookies must not be undone by this one.
        Err(AuthError::RefreshSuperseded) => AuthState::Anonymous,
        Err(error) => ended_or_unavailable(state, cookies, error),
    }
}

/// A bearer token's check, as the request's state when it failed.
fn from_result(result: Result<Checked, AuthError>) -> Result<Checked, AuthState> {
    result.map_err(|error| match error {
        AuthError::InvalidToken(kind) => AuthState::BadBearer(kind),
        AuthError::SessionEnded => AuthState::Ended,
        AuthError::Unavailable(fault) | AuthError::Unexpected(fault) => {
            AuthState::Unavailable(fault)
        }
        other => AuthState::Unavailable(Fault::new(anyhow::anyhow!(
            "the session check failed: {other}"
        ))),
    })
}

/// A database fault must not sign anyone out; anything else means the
/// cookies are dead, so the browser is told to drop them.
fn ended_or_unavailable(state: &AppState, cookies: &Cookies, error: AuthError) -> AuthState {
    match error {
        AuthError::Unavailable(fault) | AuthError::Unexpected(fault) => {
            AuthState::Unavailable(fault)
        }
        _ => {
            state.cookies.clear(cookies);
            AuthState::Ended
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthState {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<AuthState>()
            .cloned()
            .unwrap_or(AuthState::Anonymous))
    }
}

/// Extractor for handlers that need a signed-in user.
pub struct SignedIn(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let state = parts
            .extensions
            .get::<AuthState>()
            .cloned()
            .unwrap_or(AuthState::Anonymous);
        state.require().cloned().map(SignedIn)
    }
}

/// Extractor for handlers that serve signed-in and signed-out clients
/// alike: whatever the request's credentials amount to.
pub struct Credentials(pub AuthState);

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Credentials(
            parts
                .extensions
                .get::<AuthState>()
                .cloned()
                .unwrap_or(AuthState::Anonymous),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_bearer_scheme_is_ours() {
        assert_eq!(
            bearer_token(&authorization("Bearer abc.DEF-_~+/x==")),
            Some(Ok("abc.DEF-_~+/x=="))
        );
        assert_eq!(
            bearer_token(&authorization("bearer  abc ")),
            Some(Ok("abc"))
        );
        for proxy in [
            "Basic dXNlcjpwYXNz",
            "Negotiate YIIGhgYGKwYBBQUCoII=",
            "Digest username=\"u\"",
            "NTLM TlRMTVNTUAAB",
        ] {
            assert_eq!(bearer_token(&authorization(proxy)), None, "{proxy}");
            assert!(
                !AuthState::is_bearer_request(&authorization(proxy)),
                "{proxy}"
            );
        }
        for malformed in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer ===",
            "Bearer a\"b",
        ] {
            assert_eq!(
                bearer_token(&authorization(malformed)),
                Some(Err(TokenError::Malformed)),
                "{malformed}"
            );
            assert!(
                !AuthState::is_bearer_request(&authorization(malformed)),
                "{malformed}"
            );
        }
        assert!(AuthState::is_bearer_request(&authorization("Bearer abc")));
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn logout_and_refresh_are_left_to_their_handlers_and_nothing_else_is() {
        assert!(resolved_by_handler("/api/logout"));
        assert!(resolved_by_handler("/auth/logout"));
        assert!(resolved_by_handler("/auth/refresh"));
        for other in [
            "/api/login",
            "/auth/me",
            "/account",
            "/api/logout/x",
            "/auth/logout/",
        ] {
            assert!(!resolved_by_handler(other), "{other}");
        }
    }
}
