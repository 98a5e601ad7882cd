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

use super::{ActivityEntry, AppError, AuthStatus, LogoutScope, SessionsOverview, SignInStep};

#[cfg(feature = "ssr")]
use super::{Notice, SessionUser};
#[cfg(feature = "ssr")]
use crate::server::{
    error::AuthError, fns::ServerFnContext, middleware::AuthState, passwords::Password,
    service::Principal,
};

/// Creates an account and mails a link to confirm its address. Signs no one
/// in, and answers the same whether or not the address already had an
/// account (see `AuthService::register`). Returns the page to go to next:
/// the login page, with a notice, keeping `next` for after signing in.
#[server(endpoint = "register")]
pub async fn register(
    email: String,
    password: String,
    password_confirm: String,
    next: Option<String>,
) -> Result<String, AppError> {
    let cx = ServerFnContext::get()?;
    cx.state
        .auth
        .register(
            &email,
            &Password::new(&password),
            &Password::new(&password_confirm),
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    let to = match next.as_deref().and_then(super::safe_next_path) {
        Some(next) => format!(
            "{}&next={}",
            Notice::CheckEmail.url(),
            crate::components::encode_query_value(&next)
        ),
        None => Notice::CheckEmail.url().to_string(),
    };
    cx.redirect_plain_form(&to);
    Ok(to)
}

/// Signs in. `next` is where to go afterwards; anything but a same-site path
/// is ignored. For an account with two-factor sign-in, a right password
/// leaves a pending sign-in (an HttpOnly cookie, not a session) and the next
/// page is `/login/verify`.
#[server(endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<SignInStep, AppError> {
    use crate::server::service::SignIn;

    let cx = ServerFnContext::get()?;
    let signed_in = cx
        .state
        .auth
        .login(&email, &Password::new(&password), &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    match signed_in {
        SignIn::Complete(issued) => {
            cx.set_session_cookies(&issued);
            cx.redirect_plain_form(&next_or_home(next.as_deref()));
            Ok(SignInStep::Done(session_user(&issued.principal)))
        }
        SignIn::SecondFactor(pending) => {
            cx.state.cookies.set_pending(&cx.cookies, &pending);
            cx.redirect_plain_form(&super::verify_path(next.as_deref()));
            Ok(SignInStep::SecondFactor)
        }
    }
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
    use crate::server::db::LinkPurpose;

    let cx = ServerFnContext::get()?;
    let token = cx.link_token(token, LinkPurpose::PasswordReset)?;
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
    cx.state
        .cookies
        .clear_link(&cx.cookies, LinkPurpose::PasswordReset);
    cx.end_browser_session();
    cx.redirect_plain_form(Notice::PasswordReset.url());
    Ok(())
}

/// Confirms the account's address with the verification link this browser
/// followed (moved to a cookie, like a reset link's), or with `token`.
/// Returns the page to go to: the account page when this browser is signed
/// in, else the login page.
#[server(endpoint = "verify_email")]
pub async fn verify_email(token: Option<String>) -> Result<String, AppError> {
    use crate::server::db::LinkPurpose;

    let cx = ServerFnContext::get()?;
    let token = cx.link_token(token, LinkPurpose::VerifyEmail)?;
    cx.state
        .auth
        .verify_email(&token, &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    cx.state
        .cookies
        .clear_link(&cx.cookies, LinkPurpose::VerifyEmail);
    let to = match &cx.auth {
        AuthState::SignedIn(_) => Notice::AddressConfirmed.url(),
        _ => Notice::EmailVerified.url(),
    };
    cx.redirect_plain_form(to);
    Ok(to.to_string())
}

/// Mails a new verification link: to the signed-in account, or, for
/// someone who cannot sign in before confirming, to `email` (answered the
/// same whether or not it has an account that needs one).
#[server(endpoint = "resend_verification")]
pub async fn resend_verification(email: Option<String>) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    cx.state
        .auth
        .resend_verification(&cx.auth, email.as_deref(), &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    cx.redirect_plain_form(match &cx.auth {
        AuthState::SignedIn(_) => Notice::VerificationSent.url(),
        _ => Notice::VerificationResent.url(),
    });
    Ok(())
}

/// Asks to move the account to `new_email`; needs the password. The change
/// happens when the link mailed to the new address is followed.
#[server(endpoint = "change_email")]
pub async fn change_email(new_email: String, current_password: String) -> Result<(), AppError> {
    let cx = ServerFnContext::get()?;
    let principal = cx.principal()?;
    cx.state
        .auth
        .request_email_change(
            &principal,
            &new_email,
            &Password::new(&current_password),
            &cx.client,
        )
        .await
        .map_err(|e| cx.fail(e))?;
    cx.redirect_plain_form(Notice::EmailChangeSent.url());
    Ok(())
}

/// Confirms an email change with the link this browser followed (or
/// `token`). Every session but the one that asked ends; returns the page to
/// go to: the account page when this browser is that session, else the
/// login page.
#[server(endpoint = "confirm_email_change")]
pub async fn confirm_email_change(token: Option<String>) -> Result<String, AppError> {
    use crate::server::db::LinkPurpose;

    let cx = ServerFnContext::get()?;
    let token = cx.link_token(token, LinkPurpose::ChangeEmail)?;
    let changed = cx
        .state
        .auth
        .confirm_email_change(&token, &cx.client)
        .await
        .map_err(|e| cx.fail(e))?;
    cx.state
        .cookies
        .clear_link(&cx.cookies, LinkPurpose::ChangeEmail);
    let kept_here =
        matches!(&cx.auth, AuthState::SignedIn(p) if Some(p.session_id) == changed.kept);
    let to = if kept_here {
        Notice::EmailChanged.url()
    } else {
        if matches!(&cx.auth, AuthState::SignedIn(p) if p.user_id == changed.user_id) {
            cx.end_browser_session();
        }
        Notice::AddressChanged.url()
    };
    cx.redirect_plain_form(to);
    Ok(to.to_string())
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
        K::LoginSucceeded => match detail {
            Some("totp") => "Signed in with an authenticator code".into(),
            Some("recovery_code") => "Signed in with a recovery code".into(),
            Some("passkey") => "Signed in with a passkey".into(),
            _ => "Signed in".into(),
        },
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
        K::RegistrationRefused => "Someone tried to register an account with your address".into(),
        K::ThrottleLocked => "Sign-in locked for a while after repeated failed attempts".into(),
        K::PasswordResetRequested => "Password reset link requested".into(),
        K::PasswordReset => "Password reset by email link; every session ended".into(),
        K::VerificationSent => match detail {
            Some("throttled") => "Confirmation link not sent (too many requests)".into(),
            _ => "Email confirmation link sent".into(),
        },
        K::EmailVerified => "Email address confirmed".into(),
        K::EmailChangeRequested => "Email address change requested".into(),
        K::EmailChanged => "Email address changed; other sessions ended".into(),
        K::NewDeviceSignIn => "Signed in from a new kind of device; we sent you a notice".into(),
        K::AdminSignOut => "Signed out everywhere by an administrator".into(),
        K::AccountDisabled => "Account disabled by an administrator".into(),
        K::AccountEnabled => "Account enabled again by an administrator".into(),
        K::UserDeleted => "Account deleted by an administrator".into(),
        K::ApiKeyCreated => "Admin API key created".into(),
        K::ApiKeyRevoked => "Admin API key revoked".into(),
        K::SecondFactorRequired => "Password accepted; waiting for the authenticator code".into(),
        K::SecondFactorFailed => "Wrong or reused two-factor code".into(),
        K::TotpEnabled => "Two-factor sign-in turned on".into(),
        K::TotpDisabled => "Two-factor sign-in turned off; other sessions ended".into(),
        K::RecoveryCodeUsed => match detail {
            Some(left) => format!("Recovery code used ({left})"),
            None => "Recovery code used".into(),
        },
        K::RecoveryCodesRegenerated => {
            "New recovery codes made; the old ones no longer work".into()
        }
        K::PasskeyAdded => match detail.and_then(|d| d.strip_prefix("passkey ")) {
            Some(name) => format!("Passkey added: {name}"),
            None => "Passkey added".into(),
        },
        K::PasskeyRemoved => match detail.and_then(|d| d.strip_prefix("passkey ")) {
            Some(name) => format!("Passkey removed: {name}"),
            None => "Passkey removed".into(),
        },
    }
}

/// Where to go after signing in: `next` if it is a same-site path, else home.
#[cfg(feature = "ssr")]
pub(super) fn next_or_home(next: Option<&str>) -> String {
    next.and_then(super::safe_next_path)
        .unwrap_or_else(|| "/".into())
}

#[cfg(feature = "ssr")]
pub(super) fn session_user(principal: &Principal) -> SessionUser {
    SessionUser {
        id: principal.user_id.to_string(),
        email: principal.email.clone(),
        email_verified: principal.email_verified,
    }
}

#[cfg(feature = "ssr")]
pub(super) fn moment(t: crate::server::time::Timestamp) -> super::Moment {
    super::Moment {
        iso: t.to_rfc3339(),
        display: t.to_display(),
    }
}
