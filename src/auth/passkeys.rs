//! Passkeys' server functions: the account page's Passkeys section and the
//! login page's "Sign in with a passkey". The WebAuthn options and answers
//! travel as the protocol's JSON text, exactly what the browser's
//! `PublicKeyCredential.parse…FromJSON` and `toJSON()` read and write, and
//! the server parses them into webauthn-rs's types; the WASM side never
//! decodes them, which keeps it small. Passkeys need JavaScript, so these
//! are called from actions only, never as plain forms.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{AppError, Moment, SessionUser};

#[cfg(feature = "ssr")]
use crate::server::{error::AuthError, fns::ServerFnContext, passwords::Password};

/// A passkey prompt begun: its ceremony id and the options, as JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyPrompt {
    pub ceremony: String,
    pub options: String,
}

/// One of the account's passkeys, for its list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyEntry {
    pub id: String,
    pub name: String,
    pub created: Moment,
    pub last_used: Option<Moment>,
}

/// The account page's Passkeys section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeysOverview {
    pub passkeys: Vec<PasskeyEntry>,
    /// Whether adding or removing one needs the password (no recent sign-in).
    pub reauth_required: bool,
}

#[server(endpoint = "passkeys")]
pub async fn passkeys_status() -> Result<PasskeysOverview, AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let auth = &cx.state.auth;
    let passkeys = auth
        .list_passkeys(&principal)
        .await
        .map_err(|e| cx.fail(e))?;
    Ok(PasskeysOverview {
        passkeys: passkeys
            .into_iter()
            .map(|record| PasskeyEntry {
                id: record.id.to_string(),
                name: record.name,
                created: super::api::moment(record.created_at),
                last_used: record.last_used_at.map(super::api::moment),
            })
            .collect(),
        reauth_required: auth.needs_reauthentication(&principal),
    })
}

/// Starts adding a passkey (the password is needed without a recent sign-in).
#[server(endpoint = "passkey_registration")]
pub async fn passkey_registration(password: Option<String>) -> Result<PasskeyPrompt, AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let password = Password::from_form(password);
    let start = cx
        .state
        .auth
        .start_passkey_registration(&principal, password.as_ref(), &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    prompt(&cx, start.id.expose(), &start.options)
}

/// Finishes adding a passkey with the browser's answer (`toJSON()` text).
#[server(endpoint = "add_passkey")]
pub async fn add_passkey(
    ceremony: String,
    credential: String,
    name: Option<String>,
) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let credential = serde_json::from_str(&credential).map_err(|_| cx.fail(not_an_answer()))?;
    cx.state
        .auth
        .finish_passkey_registration(
            &principal,
            &ceremony,
            &credential,
            name.as_deref(),
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    Ok(())
}

/// Starts a passkey sign-in.
#[server(endpoint = "passkey_sign_in_options")]
pub async fn passkey_sign_in_options() -> Result<PasskeyPrompt, AppError> {
    let cx = ServerFnContext::get()?;
    let start = cx
        .state
        .auth
        .start_passkey_sign_in(&cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    prompt(&cx, start.id.expose(), &start.options)
}

/// Finishes a passkey sign-in with the browser's answer; sets the cookies.
#[server(endpoint = "sign_in_with_passkey")]
pub async fn sign_in_with_passkey(
    ceremony: String,
    credential: String,
) -> Result<SessionUser, AppError> {
    let cx = ServerFnContext::get()?;
    let credential = serde_json::from_str(&credential).map_err(|_| cx.fail(not_an_answer()))?;
    let issued = cx
        .state
        .auth
        .finish_passkey_sign_in(&ceremony, &credential, &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    cx.set_session_cookies(&issued);
    Ok(super::api::session_user(&issued.principal))
}

/// Starts a passkey as the second step of this browser's pending sign-in.
#[server(endpoint = "passkey_second_step_options")]
pub async fn passkey_second_step_options() -> Result<PasskeyPrompt, AppError> {
    let cx = ServerFnContext::get()?;
    let token = cx.state.cookies.read_pending(&cx.cookies);
    let start = cx
        .state
        .auth
        .start_passkey_second_step(token.as_deref())
        .await
        .map_err(|e| cx.fail(e))?;
    prompt(&cx, start.id.expose(), &start.options)
}

/// Finishes this browser's pending sign-in with a passkey; sets the cookies.
#[server(endpoint = "verify_with_passkey")]
pub async fn verify_with_passkey(
    ceremony: String,
    credential: String,
) -> Result<SessionUser, AppError> {
    let cx = ServerFnContext::get()?;
    let credential = serde_json::from_str(&credential).map_err(|_| cx.fail(not_an_answer()))?;
    let token = cx.state.cookies.read_pending(&cx.cookies);
    let issued = cx
        .state
        .auth
        .finish_passkey_second_step(token.as_deref(), &ceremony, &credential, &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    cx.state.cookies.clear_pending(&cx.cookies);
    cx.set_session_cookies(&issued);
    Ok(super::api::session_user(&issued.principal))
}

/// Removes one of the account's passkeys.
#[server(endpoint = "remove_passkey")]
pub async fn remove_passkey(id: String, password: Option<String>) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let password = Password::from_form(password);
    cx.state
        .auth
        .remove_passkey(&principal, &id, password.as_ref(), &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    Ok(())
}

#[cfg(feature = "ssr")]
fn prompt(
    cx: &ServerFnContext,
    ceremony: &str,
    options: &impl Serialize,
) -> Result<PasskeyPrompt, AppError> {
    let options = serde_json::to_string(options).map_err(|error| {
        cx.fail(anyhow::anyhow!("serialising WebAuthn options: {error}").into())
    })?;
    Ok(PasskeyPrompt {
        ceremony: ceremony.to_string(),
        options,
    })
}

#[cfg(feature = "ssr")]
fn not_an_answer() -> AuthError {
    AuthError::invalid(
        "credential",
        "The browser's passkey answer could not be read. Try again.",
    )
}
