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
    middleware::AuthState,
    service::{Issued, Principal},
    state::AppState,
};
use crate::auth::{AppError, ErrorCode};

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

    pub fn clear_session_cookies(&self) {
        self.state.cookies.clear(&self.cookies);
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
