//! The session cookies: the one place that names, sets, reads and clears them.
//!
//! Both are `HttpOnly` (no script can read a token), `SameSite=Lax` (not sent
//! on cross-site subrequests or POSTs; still sent when following a link here)
//! and `Path=/`. Outside local development they are `Secure` and use the
//! `__Host-` prefix, which the browser enforces: Secure, no Domain, Path=/, so
//! no subdomain can plant or shadow them.

use axum::http::{HeaderName, HeaderValue};
use tower_cookies::{
    Cookie, Cookies,
    cookie::{
        SameSite,
        time::{Duration as CookieDuration, OffsetDateTime},
    },
};

use super::{
    client::DeviceCookie,
    db::LinkPurpose,
    service::{Issued, PendingSignIn},
    time::Timestamp,
};

/// Longest cookie value we look at; ours are well under 1 KiB.
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Clone, Debug)]
pub struct SessionCookies {
    secure: bool,
    access_name: &'static str,
    refresh_name: &'static str,
    device_name: &'static str,
}

/// How long fresh recovery codes can be shown again (a reload, a download).
const SHOWN_CODES_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How long a device cookie lasts (browsers cap cookies at 400 days).
const DEVICE_COOKIE_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// The raw tokens a request carried in cookies.
#[derive(Clone, Debug, Default)]
pub struct CookieCredentials {
    pub access: Option<String>,
    pub refresh: Option<String>,
}

impl CookieCredentials {
    pub fn is_empty(&self) -> bool {
        self.access.is_none() && self.refresh.is_none()
    }
}

impl SessionCookies {
    pub fn new(secure: bool) -> Self {
        if secure {
            SessionCookies {
                secure,
                access_name: "__Host-portcullis_access",
                refresh_name: "__Host-portcullis_refresh",
                device_name: "__Host-portcullis_device",
            }
        } else {
            SessionCookies {
                secure,
                access_name: "portcullis_access",
                refresh_name: "portcullis_refresh",
                device_name: "portcullis_device",
            }
        }
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    pub fn access_name(&self) -> &'static str {
        self.access_name
    }

    pub fn refresh_name(&self) -> &'static str {
        self.refresh_name
    }

    pub fn device_name(&self) -> &'static str {
        self.device_name
    }

    /// The device cookie (see `TokenIssuer::issue_device`), unverified.
    pub fn read_device(&self, cookies: &Cookies) -> Option<DeviceCookie> {
        read_value(cookies, self.device_name).map(DeviceCookie)
    }

    pub fn read(&self, cookies: &Cookies) -> CookieCredentials {
        CookieCredentials {
            access: read_value(cookies, self.access_name),
            refresh: read_value(cookies, self.refresh_name),
        }
    }

    /// Sets both cookies. Each expires with its token, so the browser stops
    /// sending an access token the moment it is useless.
    pub fn set(&self, cookies: &Cookies, issued: &Issued) {
        let now = Timestamp::now();
        cookies.add(self.build(
            self.access_name,
            issued.access_token.clone(),
            now.until(issued.access_expires_at),
        ));
        cookies.add(self.build(
            self.refresh_name,
            issued.refresh_token.expose().to_string(),
            now.until(issued.refresh_expires_at),
        ));
        if let Some(device) = &issued.device_cookie {
            cookies.add(self.build(self.device_name, device.clone(), DEVICE_COOKIE_TTL));
        }
    }

    /// The token of the emailed link of `purpose` this browser followed
    /// (see `middleware::links`).
    pub fn read_link(&self, cookies: &Cookies, purpose: LinkPurpose) -> Option<String> {
        read_value(cookies, self.link_name(purpose))
    }

    /// Moves an emailed link's token out of the URL into a cookie: HttpOnly,
    /// `SameSite=Strict` (only this site's own form posts send it back) and
    /// short-lived. The page then renders without the token in its address,
    /// history or any `Referer`.
    pub fn set_link(
        &self,
        cookies: &Cookies,
        purpose: LinkPurpose,
        token: &str,
        max_age: std::time::Duration,
    ) {
        self.set_strict(cookies, self.link_name(purpose), token.to_string(), max_age);
    }

    pub fn clear_link(&self, cookies: &Cookies, purpose: LinkPurpose) {
        self.clear_strict(cookies, self.link_name(purpose));
    }

    pub fn link_name(&self, purpose: LinkPurpose) -> &'static str {
        match (purpose, self.secure) {
            (LinkPurpose::PasswordReset, true) => "__Host-portcullis_reset",
            (LinkPurpose::PasswordReset, false) => "portcullis_reset",
            (LinkPurpose::VerifyEmail, true) => "__Host-portcullis_verify",
            (LinkPurpose::VerifyEmail, false) => "portcullis_verify",
            (LinkPurpose::ChangeEmail, true) => "__Host-portcullis_email_change",
            (LinkPurpose::ChangeEmail, false) => "portcullis_email_change",
        }
    }

    /// The pending sign-in of an account with a second factor (see
    /// `service::second_factor`): HttpOnly, `SameSite=Strict` (only this
    /// site's own verify form sends it back), and gone with the sign-in. It
    /// is read by the second step only: no session, page or server function
    /// takes it for a session.
    pub fn set_pending(&self, cookies: &Cookies, pending: &PendingSignIn) {
        self.set_strict(
            cookies,
            self.pending_name(),
            pending.token.expose().to_string(),
            Timestamp::now().until(pending.expires_at),
        );
    }

    pub fn read_pending(&self, cookies: &Cookies) -> Option<String> {
        read_value(cookies, self.pending_name())
    }

    pub fn clear_pending(&self, cookies: &Cookies) {
        self.clear_strict(cookies, self.pending_name());
    }

    /// Recovery codes just made, sealed (see `SecondFactors::seal_shown_codes`),
    /// for the page that shows them: HttpOnly, `SameSite=Strict`, ten minutes.
    pub fn set_shown_codes(&self, cookies: &Cookies, sealed: String) {
        self.set_strict(cookies, self.shown_codes_name(), sealed, SHOWN_CODES_TTL);
    }

    pub fn read_shown_codes(&self, cookies: &Cookies) -> Option<String> {
        read_value(cookies, self.shown_codes_name())
    }

    pub fn clear_shown_codes(&self, cookies: &Cookies) {
        self.clear_strict(cookies, self.shown_codes_name());
    }

    fn shown_codes_name(&self) -> &'static str {
        if self.secure {
            "__Host-portcullis_codes"
        } else {
            "portcullis_codes"
        }
    }

    pub fn pending_name(&self) -> &'static str {
        if self.secure {
            "__Host-portcullis_mfa"
        } else {
            "portcullis_mfa"
        }
    }

    /// Expires both session cookies: empty value, `Max-Age=0` and an
    /// `Expires` in 1970. The device cookie stays: it outlives sign-out, or an
    /// owner who signed out would be locked out like a stranger.
    pub fn clear(&self, cookies: &Cookies) {
        for name in [self.access_name, self.refresh_name] {
            let mut cookie = self.build(name, String::new(), std::time::Duration::ZERO);
            cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
            cookies.add(cookie);
        }
    }

    /// A short-lived cookie that only this site's own requests send back.
    fn set_strict(
        &self,
        cookies: &Cookies,
        name: &'static str,
        value: String,
        max_age: std::time::Duration,
    ) {
        let mut cookie = self.build(name, value, max_age);
        cookie.set_same_site(SameSite::Strict);
        cookies.add(cookie);
    }

    fn clear_strict(&self, cookies: &Cookies, name: &'static str) {
        let mut cookie = self.build(name, String::new(), std::time::Duration::ZERO);
        cookie.set_same_site(SameSite::Strict);
        cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
        cookies.add(cookie);
    }

    fn build(
        &self,
        name: &'static str,
        value: String,
        max_age: std::time::Duration,
    ) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(CookieDuration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build()
    }
}

impl SessionCookies {
    /// Ends this browser's session on its side, the one way every transport
    /// does it: expires both cookies and returns the `Clear-Site-Data`
    /// header the answer must carry.
    #[must_use = "the answer must carry the Clear-Site-Data header"]
    pub fn end_browser_session(&self, cookies: &Cookies) -> (HeaderName, HeaderValue) {
        self.clear(cookies);
        clear_site_data()
    }
}

/// A cookie's value, if it is one we could have set.
fn read_value(cookies: &Cookies, name: &str) -> Option<String> {
    cookies
        .get(name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= MAX_TOKEN_LEN)
}

/// The header sent with every answer that ends this device's session: the
/// browser drops its HTTP cache (so Back cannot show a private page) and its
/// storage. Not `"cookies"`: that would clear every cookie of the site and
/// its sibling subdomains, the device cookie included; the session cookies
/// are expired by name instead.
fn clear_site_data() -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\", \"storage\""),
    )
}
