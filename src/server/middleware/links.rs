//! Emailed links arrive with their token in the URL. `GET
//! /reset-password?token=…` (and `/verify-email`, `/confirm-email`) is
//! answered with a redirect to the same page without it that moves the token
//! into a short-lived HttpOnly cookie, before any page renders: the address bar, the history and any later `Referer` never hold
//! it. That redirect, the one answer whose request held the token, says
//! `Referrer-Policy: no-referrer`; the page itself keeps the site's
//! `same-origin` policy (no `Referer` ever leaves the site, and its address
//! holds no token), because under `no-referrer` browsers send `Origin: null`
//! with the form post, which the cross-site check rightly refuses. Both are
//! `Cache-Control: no-store`.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_cookies::Cookies;

use crate::server::{db::LinkPurpose, state::AppState};

/// The pages emailed links open, and what each link is for.
pub const LINK_PAGES: [(&str, LinkPurpose); 3] = [
    ("/reset-password", LinkPurpose::PasswordReset),
    ("/verify-email", LinkPurpose::VerifyEmail),
    ("/confirm-email", LinkPurpose::ChangeEmail),
];

pub async fn take_link_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(&(page, purpose)) = LINK_PAGES
        .iter()
        .find(|(page, _)| *page == request.uri().path())
    else {
        return next.run(request).await;
    };
    let token = (request.method() == Method::GET)
        .then(|| query_token(request.uri().query()))
        .flatten();
    let Some((token, cookies)) = token.zip(request.extensions().get::<Cookies>().cloned()) else {
        // The page and its form post: `security_headers` adds `no-store`.
        return next.run(request).await;
    };
    // Whatever its value: a bad token is refused when it is used, with the
    // same message as an expired one.
    if !token.is_empty() && token.len() <= 256 {
        let mail = &state.settings.mail;
        let ttl = match purpose {
            LinkPurpose::PasswordReset => mail.reset_ttl,
            LinkPurpose::VerifyEmail | LinkPurpose::ChangeEmail => mail.verify_ttl,
        };
        state.cookies.set_link(&cookies, purpose, &token, ttl);
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, page)]).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `token` parameter of a query string, percent-decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_query_whatever_else_it_holds() {
        assert_eq!(query_token(Some("token=abc")).as_deref(), Some("abc"));
        assert_eq!(query_token(Some("x=1&token=a%2Db")).as_deref(), Some("a-b"));
        assert_eq!(query_token(Some("x=1")), None);
        assert_eq!(query_token(Some("token=")).as_deref(), Some(""));
        assert_eq!(query_token(None), None);
    }
}
