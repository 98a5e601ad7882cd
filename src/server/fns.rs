//! What every server function needs from the request, gathered in one call.
//!
//! Server functions run inside the same middleware as everything else, so
//! the session is already resolved (and renewed) when they start; they read
//! it from the request extensions instead of parsing cookies again.

use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;
use tower_cookies::Cookies;

use super::{
    client::ClientInfo,
    error::AuthError,
    middleware::{AuthState, bearer_token},
    service::{Issued, LogoutCredentials, Principal},
    state::AppState,
};
use crate::auth::{AppError, ErrorCode, LogoutScope};

pub struct ServerFnContext {
    pub state: AppState,
    pub cookies: Cookies,
    pub auth: AuthState,
    pub client: ClientInfo,
    parts: Parts,
    response: ResponseOptions,
}

impl ServerFnContext {
    pub fn get() -> Result<Self, AppError> {
        let missing = || AppError::new(ErrorCode::Internal, "Something went wrong on our side.");
        let state = use_context::<AppState>().ok_or_else(missing)?;
        let parts = use_context::<Parts>().ok_or_else(missing)?;
        let response = use_context::<ResponseOptions>().ok_or_else(missing)?;
        let cookies = parts
            .extensions
            .get::<Cookies>()
            .cloned()
            .ok_or_else(missing)?;
        let auth = parts
            .extensions
            .get::<AuthState>()
            .cloned()
            .unwrap_or(AuthState::Anonymous);
        let client = parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .unwrap_or_default();
        Ok(ServerFnContext {
            state,
            cookies,
            auth,
            client,
            parts,
            response,
        })
    }

    pub fn principal(&self) -> Result<Principal, AppError> {
        self.auth.require().cloned().map_err(|e| self.fail(e))
    }

    /// The error the browser is shown. Its status is set from its code by
    /// `middleware::server_fn_status`.
    pub fn fail(&self, error: AuthError) -> AppError {
        error.to_app_error()
    }

    pub fn set_session_cookies(&self, issued: &Issued) {
        self.state.cookies.set(&self.cookies, issued);
    }

    /// Expires both cookies and sends `Clear-Site-Data` with the answer.
    pub fn end_browser_session(&self) {
        let (name, value) = self.state.cookies.end_browser_session(&self.cookies);
        self.response.insert_header(name, value);
    }

    /// Logs out with whatever this request carried (see
    /// `AuthService::end_session`), ending the browser's side first when the
    /// scope includes this device.
    pub async fn logout(&self, scope: LogoutScope) -> Result<u64, AppError> {
        let cookies = self.state.cookies.read(&self.cookies);
        if scope.ends_current() {
            self.end_browser_session();
        }
        let credentials = LogoutCredentials {
            bearer: bearer_token(&self.parts.headers),
            cookies: &cookies,
        };
        self.state
            .auth
            .end_session(credentials, scope, &self.client)
            .await
            .map_err(|failure| failure.to_app_error())
    }

    /// The token of an emailed link: `token` when the client sent it, else
    /// the one this browser carries since it followed the link.
    pub fn link_token(
        &self,
        token: Option<String>,
        purpose: crate::server::db::LinkPurpose,
    ) -> Result<String, AppError> {
        token
            .filter(|t| !t.is_empty())
            .or_else(|| self.state.cookies.read_link(&self.cookies, purpose))
            .ok_or_else(|| self.fail(AuthError::InvalidLink))
    }

    pub fn insert_header(&self, name: header::HeaderName, value: HeaderValue) {
        self.response.insert_header(name, value);
    }

    /// A plain HTML form post, i.e. JavaScript is off.
    pub fn is_plain_form(&self) -> bool {
        self.parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    }

    /// Without JavaScript, answer a successful form post with `303 See Other`
    /// to `to`. With JavaScript the page navigates itself, so nothing is set.
    pub fn redirect_plain_form(&self, to: &str) {
        if self.is_plain_form()
            && let Ok(location) = HeaderValue::from_str(to)
        {
            self.response.set_status(StatusCode::SEE_OTHER);
            self.response.insert_header(header::LOCATION, location);
        }
    }
}
