//! Two-factor sign-in's server functions: the second sign-in step, and the
//! account page's set-up, confirm, turn-off and new-recovery-codes forms.
//! Adapters over `service::second_factor`, like the others: each works as
//! a plain form (JavaScript off, answered with `303 See Other`) and as an
//! action.

use leptos::prelude::*;

use super::{AppError, SessionUser, TwoFactorOverview};

#[cfg(feature = "ssr")]
use super::Notice;
#[cfg(feature = "ssr")]
use crate::server::{error::AuthError, fns::ServerFnContext, passwords::Password};

/// The page that shows fresh recovery codes, once.
pub const RECOVERY_CODES_PATH: &str = "/account/recovery-codes";

/// The second step of signing in: a code from the authenticator app, or a
/// recovery code, for the pending sign-in this browser carries.
#[server(endpoint = "verify_sign_in")]
pub async fn verify_sign_in(code: String, next: Option<String>) -> Result<SessionUser, AppError> {
    let cx = ServerFnContext::get()?;
    let token = cx.state.cookies.read_pending(&cx.cookies);
    let issued = cx
        .state
        .auth
        .complete_sign_in(token.as_deref(), &code, &cx.client)
        .await
        .map_err(|error| {
            if matches!(error, AuthError::SignInExpired) {
                cx.state.cookies.clear_pending(&cx.cookies);
            }
            cx.fail(error)
        })?;
    cx.state.cookies.clear_pending(&cx.cookies);
    cx.set_session_cookies(&issued);
    cx.redirect_plain_form(&super::api::next_or_home(next.as_deref()));
    Ok(super::api::session_user(&issued.principal))
}

/// The account page's two-factor section.
#[server(endpoint = "two_factor")]
pub async fn two_factor_status() -> Result<TwoFactorOverview, AppError> {
    use crate::server::mfa::qr_svg;

    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let auth = &cx.state.auth;
    let status = auth.mfa_status(&principal).await.map_err(|e| cx.fail(e))?;
    let setup = match status.totp {
        true => None,
        false => auth
            .pending_totp(&principal)
            .await
            .map_err(|e| cx.fail(e))?
            .and_then(|setup| {
                Some(super::TotpSetupView {
                    qr_svg: qr_svg(&setup.otpauth_uri)?,
                    secret: grouped(&setup.secret),
                })
            }),
    };
    Ok(TwoFactorOverview {
        totp: status.totp,
        recovery_codes_left: status.recovery_codes_left,
        setup,
        reauth_required: auth.needs_reauthentication(&principal),
    })
}

/// Starts setting up an authenticator app (the password is needed without
/// a recent sign-in).
#[server(endpoint = "start_totp_setup")]
pub async fn start_totp_setup(password: Option<String>) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let password = Password::from_form(password);
    cx.state
        .auth
        .setup_totp(&principal, password.as_ref(), &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    cx.redirect_plain_form("/account#two-factor");
    Ok(())
}

/// Confirms the app with its current code: two-factor sign-in is on. The
/// recovery codes go to the page that shows them once.
#[server(endpoint = "confirm_totp")]
pub async fn confirm_totp(code: String) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let codes = cx
        .state
        .auth
        .enable_totp(&principal, &code, &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    show_codes(&cx, &principal, &codes);
    Ok(())
}

/// Turns two-factor sign-in off; every other session ends.
#[server(endpoint = "disable_totp")]
pub async fn disable_totp(current_password: String, code: String) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    cx.state
        .auth
        .disable_totp(
            &principal,
            &Password::new(&current_password),
            &code,
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    cx.redirect_plain_form(Notice::TwoFactorOff.url());
    Ok(())
}

/// New recovery codes; the old ones stop working.
#[server(endpoint = "new_recovery_codes")]
pub async fn new_recovery_codes(current_password: String, code: String) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let codes = cx
        .state
        .auth
        .regenerate_recovery_codes(
            &principal,
            &Password::new(&current_password),
            &code,
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    show_codes(&cx, &principal, &codes);
    Ok(())
}

/// The recovery codes just made in this session, for their page; none once
/// they were put away (or ten minutes later).
#[server(endpoint = "shown_recovery_codes")]
pub async fn shown_recovery_codes() -> Result<Vec<String>, AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    Ok(cx
        .state
        .cookies
        .read_shown_codes(&cx.cookies)
        .and_then(|sealed| cx.state.auth.open_shown_codes(&principal, &sealed))
        .unwrap_or_default())
}

/// "I have saved them": the codes are not shown again.
#[server(endpoint = "forget_recovery_codes")]
pub async fn forget_recovery_codes() -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    cx.state.cookies.clear_shown_codes(&cx.cookies);
    cx.redirect_plain_form(Notice::RecoveryCodesSaved.url());
    Ok(())
}

/// Hands fresh codes to their page: sealed in a short-lived cookie, never
/// stored readable.
#[cfg(feature = "ssr")]
fn show_codes(
    cx: &ServerFnContext,
    principal: &crate::server::service::Principal,
    codes: &[String],
) {
    let sealed = cx.state.auth.seal_shown_codes(principal, codes);
    cx.state.cookies.set_shown_codes(&cx.cookies, sealed);
    cx.redirect_plain_form(RECOVERY_CODES_PATH);
}

/// A base32 secret in groups of four, as authenticator apps show them.
#[cfg(feature = "ssr")]
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
