//! Server functions, at stable endpoints under `/api`.
//!
//! Each is a thin adapter over `server::service::AuthService`: it gathers the
//! request context, calls the service, sets or clears cookies, and, when the
//! browser posted a plain form (JavaScript off), answers with a `303 See
//! Other` to the next page. With JavaScript the page navigates itself.
//!
//! Arguments arrive form-encoded and are named like the form fields, so the
//! same `ActionForm` works with and without WASM.

use leptos::prelude::*;

use super::{ActivityEntry, AppError, AuthStatus, LogoutScope, SessionUser, SessionsOverview};

#[cfg(feature = "ssr")]
use super::Notice;
#[cfg(feature = "ssr")]
use crate::server::{
    error::AuthError, fns::ServerFnContext, middleware::AuthState, passwords::Password,
    service::Principal,
};

/// Creates an account and signs it in on this device. `next`, as for
/// `login`, is where to go afterwards.
#[server(endpoint = "register")]
pub async fn register(
    email: String,
    password: String,
    password_confirm: String,
    next: Option<String>,
) -> Result<SessionUser, AppError> {
    let cx = ServerFnContext::get()?;
    let issued = cx
        .state
        .auth
        .register(
            &email,
            &Password::new(&password),
            &Password::new(&password_confirm),
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    cx.set_session_cookies(&issued);
    cx.redirect_plain_form(&next_or_home(next.as_deref()));
    Ok(session_user(&issued.principal))
}

/// Signs in. `next` is where to go afterwards; anything but a same-site path
/// is ignored.
#[server(endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<SessionUser, AppError> {
    let cx = ServerFnContext::get()?;
    let issued = cx
        .state
        .auth
        .login(&email, &Password::new(&password), &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    cx.set_session_cookies(&issued);
    cx.redirect_plain_form(&next_or_home(next.as_deref()));
    Ok(session_user(&issued.principal))
}

/// Signs out: ends the session in the database (its access token is refused
/// from the next request on, on every instance), expires both cookies and
/// asks the browser to clear what it cached. Idempotent: without cookies, or
/// with dead ones, it still clears them and succeeds.
#[server(endpoint = "logout")]
pub async fn logout(scope: Option<LogoutScope>) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let scope = scope.unwrap_or_default();
    cx.logout(scope).await?;
    cx.redirect_plain_form(match scope {
        LogoutScope::Others => Notice::OthersSignedOut.url(),
        _ => Notice::SignedOut.url(),
    });
    Ok(())
}

/// Changes the password. Needs the current one; ends every other session and
/// gives this one fresh tokens.
#[server(endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    new_password_confirm: String,
) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let issued = cx
        .state
        .auth
        .change_password(
            &principal,
            &Password::new(&current_password),
            &Password::new(&new_password),
            &Password::new(&new_password_confirm),
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    cx.set_session_cookies(&issued);
    cx.redirect_plain_form(Notice::PasswordChanged.url());
    Ok(())
}

/// Asks for a password-reset link. Answers the same whether or not the
/// address has an account (see `AuthService::forgot_password`).
#[server(endpoint = "forgot_password")]
pub async fn forgot_password(email: String) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    cx.state
        .auth
        .forgot_password(&email, &cx.client)
        .map_err(|e| cx.fail(e))?;
    cx.redirect_plain_form(Notice::ResetLinkSent.url());
    Ok(())
}

/// Sets a new password with the reset link this browser followed (its
/// token was moved from the URL to a cookie, see `middleware::links`), or
/// with `token` when a client sends it itself. Ends every session of the
/// account, this browser's included; the person then signs in.
#[server(endpoint = "reset_password")]
pub async fn reset_password(
    password: String,
    password_confirm: String,
    token: Option<String>,
) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let token = token
        .filter(|t| !t.is_empty())
        .or_else(|| cx.state.cookies.read_reset(&cx.cookies))
        .ok_or_else(|| cx.fail(AuthError::InvalidLink))?;
    cx.state
        .auth
        .reset_password(
            &token,
            &Password::new(&password),
            &Password::new(&password_confirm),
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    cx.state.cookies.clear_reset(&cx.cookies);
    cx.end_browser_session();
    cx.redirect_plain_form(Notice::PasswordReset.url());
    Ok(())
}

/// Who this browser is signed in as, if anyone.
#[server(endpoint = "current_user")]
pub async fn current_user() -> Result<AuthStatus, AppError> {
    let cx = ServerFnContext::get()?;
    match &cx.auth {
        AuthState::SignedIn(principal) => Ok(AuthStatus::SignedIn(session_user(principal))),
        AuthState::Ended => Ok(AuthStatus::SessionEnded),
        AuthState::Unavailable(fault) => Err(cx.fail(AuthError::Unavailable(fault.clone()))),
        AuthState::Anonymous | AuthState::BadBearer(_) | AuthState::Deferred => {
            Ok(AuthStatus::SignedOut)
        }
    }
}

/// The password rules this server enforces (its configured lengths).
#[server(endpoint = "password_rules")]
pub async fn password_rules() -> Result<super::PasswordLimits, AppError> {
    let cx = ServerFnContext::get()?;
    let policy = cx.state.auth.passwords().policy();
    Ok(super::PasswordLimits {
        min_chars: policy.min_chars,
        max_chars: policy.max_chars,
    })
}

/// This user's signed-in devices.
#[server(endpoint = "sessions")]
pub async fn list_sessions() -> Result<SessionsOverview, AppError> {
    use crate::server::client::describe_device;

    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let mut sessions = cx
        .state
        .auth
        .list_sessions(&principal)
        .await
        .map_err(|e| cx.fail(e))?;
    // This device first, then the others by most recent use.
    sessions.sort_by_key(|s| s.id != principal.session_id);
    Ok(SessionsOverview {
        reauth_required: cx.state.auth.needs_reauthentication(&principal),
        sessions: sessions
            .iter()
            .map(|s| super::DeviceSession {
                id: s.id.to_string(),
                device: describe_device(s.user_agent.as_deref()),
                ip: s.ip.clone(),
                created: moment(s.created_at),
                last_used: moment(s.last_used_at),
                current: s.id == principal.session_id,
            })
            .collect(),
    })
}

/// Ends one of this user's sessions (this one included). `password` is needed
/// unless this device signed in recently. Returns whether this device was
/// signed out.
#[server(endpoint = "revoke_session")]
pub async fn revoke_session(
    session_id: String,
    password: Option<String>,
) -> Result<bool, AppError> {
    use crate::server::db::SessionId;

    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let target = uuid::Uuid::parse_str(session_id.trim())
        .map(SessionId)
        .map_err(|_| cx.fail(AuthError::NotFound))?;
    let password = password
        .filter(|p| !p.is_empty())
        .map(|p| Password::new(&p));
    let ended_current = cx
        .state
        .auth
        .revoke_session(&principal, target, password.as_ref(), &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    if ended_current {
        cx.end_browser_session();
        cx.redirect_plain_form(Notice::SignedOut.url());
    } else {
        cx.redirect_plain_form(Notice::SessionRevoked.url());
    }
    Ok(ended_current)
}

/// This user's recent security events, newest first.
#[server(endpoint = "activity")]
pub async fn recent_activity() -> Result<Vec<ActivityEntry>, AppError> {
    use crate::server::client::describe_device;

    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    let events = cx
        .state
        .auth
        .recent_events(&principal, 20)
        .await
        .map_err(|e| cx.fail(e))?;
    Ok(events
        .iter()
        .map(|e| ActivityEntry {
            description: describe_event(e),
            at: moment(e.occurred_at),
            ip: e.ip.clone(),
            device: e.user_agent.as_deref().map(|ua| describe_device(Some(ua))),
        })
        .collect())
}

/// An audit event as its owner reads it on the account page.
#[cfg(feature = "ssr")]
fn describe_event(event: &crate::server::db::EventRecord) -> String {
    use crate::server::db::EventKind as K;
    let Some(kind) = K::parse(&event.kind) else {
        return event.kind.replace('_', " ");
    };
    let detail = event.detail.as_deref();
    match kind {
        K::Registered => "Account created".into(),
        K::LoginSucceeded => "Signed in".into(),
        K::LoginFailed => match detail {
            Some(d) if d.starts_with("throttled") => {
                "Sign-in attempt blocked (too many attempts)".into()
            }
            _ => "Failed sign-in attempt (wrong password)".into(),
        },
        K::Logout => match detail {
            Some("others") => "Signed out of all other devices".into(),
            Some("global") => "Signed out everywhere".into(),
            _ => "Signed out".into(),
        },
        K::TokenRefreshed => "Session renewed".into(),
        K::RefreshTokenReuseDetected => {
            "Stolen session token detected; that session was ended".into()
        }
        K::PasswordChanged => "Password changed; other sessions ended".into(),
        K::SessionRevoked => "A session was revoked".into(),
        K::LoadShed => "Sign-ins refused while the server was overloaded".into(),
        K::RegistrationRefused => "Registration refused (address already registered)".into(),
        K::ThrottleLocked => "Sign-in locked for a while after repeated failed attempts".into(),
        K::PasswordResetRequested => "Password reset link requested".into(),
        K::PasswordReset => "Password reset by email link; every session ended".into(),
    }
}

/// Where to go after signing in: `next` if it is a same-site path, else home.
#[cfg(feature = "ssr")]
fn next_or_home(next: Option<&str>) -> String {
    next.and_then(super::safe_next_path)
        .unwrap_or_else(|| "/".into())
}

#[cfg(feature = "ssr")]
fn session_user(principal: &Principal) -> SessionUser {
    SessionUser {
        id: principal.user_id.to_string(),
        email: principal.email.clone(),
    }
}

#[cfg(feature = "ssr")]
fn moment(t: crate::server::time::Timestamp) -> super::Moment {
    super::Moment {
        iso: t.to_rfc3339(),
        display: t.to_display(),
    }
}
