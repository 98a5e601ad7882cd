//! `/auth` endpoints of two-factor sign-in: the second sign-in step, and
//! setting up, confirming and turning off an authenticator app. Adapters
//! over `service::second_factor`, like every handler.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tower_cookies::Cookies;
use utoipa::ToSchema;

use super::{
    extract::{ApiJson, OptionalJson},
    handlers::{AuthResponse, ErrorResponse, TokenDelivery, deliver},
};
use crate::{
    auth::ErrorCode,
    server::{
        client::ClientInfo, error::AuthError, mfa::Code, middleware::session::SignedIn,
        passwords::Password, service::PendingSignIn, state::AppState, time::Timestamp,
        tokens::LinkToken,
    },
};

#[derive(Deserialize, ToSchema)]
pub struct LoginMfaRequest {
    /// The `mfa_token` of the `mfa_required` answer, for a client that asked
    /// for `"token_delivery": "body"`. Without it the pending sign-in's
    /// HttpOnly cookie is used.
    mfa_token: Option<String>,
    /// Six digits from the authenticator app, or an unused recovery code.
    #[schema(example = "123456")]
    code: String,
    /// Defaults to `body` with an `mfa_token`, else `cookie`.
    token_delivery: Option<TokenDelivery>,
}

#[derive(Deserialize, ToSchema)]
pub struct TotpSetupRequest {
    /// Needed unless this device signed in within the re-authentication
    /// window (and ignored then).
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TotpSetupResponse {
    /// The secret in base32, to type into an app instead of scanning.
    secret: String,
    /// `otpauth://totp/Portcullis:<email>?secret=…&issuer=Portcullis`, for a
    /// QR code.
    otpauth_uri: String,
}

#[derive(Deserialize, ToSchema)]
pub struct TotpEnableRequest {
    /// The current code of the app being set up.
    #[schema(example = "123456")]
    code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct TotpConfirmRequest {
    /// The account's password.
    password: String,
    /// The current code of the app, or an unused recovery code.
    #[schema(example = "123456")]
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten one-time codes, shown this once: each signs in once in place of
    /// an app code.
    recovery_codes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TotpDisabledResponse {
    #[schema(example = "Two-factor sign-in is off. Other sessions have been signed out.")]
    message: String,
    /// How many other sessions were ended.
    sessions_ended: u64,
}

/// The 401 of `POST /auth/login`: an error body, and for `mfa_required` the
/// pending sign-in.
#[derive(Serialize, ToSchema)]
pub struct LoginRefusedResponse {
    #[schema(example = "Enter the code from your authenticator app to finish signing in.")]
    error: String,
    #[schema(example = "mfa_required")]
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    /// With `mfa_required` and `"token_delivery": "body"`: the pending
    /// sign-in, for `POST /auth/login/mfa`. It is not a session token and
    /// opens nothing else. Browsers get it as an HttpOnly cookie instead.
    mfa_token: Option<String>,
    /// With `mfa_required`: seconds the pending sign-in waits.
    expires_in: Option<u64>,
}

/// The `mfa_required` answer of a login: the pending sign-in in the body or
/// in its cookie, as the client asked, never both.
pub(super) fn second_factor_required(
    state: &AppState,
    cookies: &Cookies,
    pending: &PendingSignIn,
    delivery: TokenDelivery,
) -> Response {
    let error = AuthError::MfaRequired.to_app_error();
    let mfa_token = match delivery {
        TokenDelivery::Cookie => {
            state.cookies.set_pending(cookies, pending);
            None
        }
        TokenDelivery::Body => Some(pending.token.expose().to_string()),
    };
    let body = LoginRefusedResponse {
        error: error.message,
        code: error.code.as_str().to_string(),
        field: None,
        retry_after: None,
        mfa_token,
        expires_in: Some(Timestamp::now().until(pending.expires_at).as_secs()),
    };
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// Finish signing in to an account with two-factor sign-in: the code from
/// the authenticator app, or an unused recovery code, for the pending
/// sign-in a `mfa_required` login answer left. The answer is a login's.
#[utoipa::path(post, path = "/login/mfa", tag = "auth", request_body = LoginMfaRequest,
    responses(
        (status = 200, body = AuthResponse, description = "Signed in"),
        (status = 401, body = ErrorResponse, description = "`mfa_expired`: no pending sign-in, or it expired (after 5 minutes), \
            was used, or ran out of attempts (5): sign in with the password again"),
        (status = 403, body = ErrorResponse, description = "`account_disabled`: an operator disabled the account meanwhile"),
        (status = 422, body = ErrorResponse, description = "`invalid_code`: not the current code, one used already, not an \
            unused recovery code, or not a code at all; or `invalid_input`: a body the schema refuses"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong codes for this account; see `Retry-After`"),
    ))]
pub async fn login_mfa(
    State(state): State<AppState>,
    cookies: Cookies,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginMfaRequest>,
) -> Result<Json<AuthResponse>, AuthError> {
    let delivery = body.token_delivery.unwrap_or(match body.mfa_token {
        Some(_) => TokenDelivery::Body,
        None => TokenDelivery::Cookie,
    });
    if body
        .mfa_token
        .as_deref()
        .is_some_and(|token| LinkToken::parse(token).is_none())
        && Code::parse(&body.code).is_some()
    {
        return Err(AuthError::invalid(
            "mfa_token",
            "This is not the mfa_token of a sign-in: sign in with the password again.",
        ));
    }
    let token = body
        .mfa_token
        .or_else(|| state.cookies.read_pending(&cookies));
    let issued = state
        .auth
        .complete_sign_in(token.as_deref(), &body.code, &client)
        .await?;
    state.cookies.clear_pending(&cookies);
    Ok(Json(deliver(&state, &cookies, &issued, delivery)))
}

/// Start setting up an authenticator app: a new secret, not in force until
/// `POST /auth/mfa/totp/enable` confirms it with a code (within 15 minutes).
/// Starting again replaces a secret not yet confirmed.
#[utoipa::path(post, path = "/mfa/totp/setup", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    request_body(content = TotpSetupRequest, description = "Optional: needed only outside the re-authentication window"),
    responses(
        (status = 200, body = TotpSetupResponse, description = "The secret, to scan or type into the app"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 403, body = ErrorResponse, description = "`reauth_required`: enter the password again; or `cross_site_request`"),
        (status = 409, body = ErrorResponse, description = "`mfa_already_enabled`: turn it off first to use another app"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, or `invalid_input`: a body the schema refuses"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong passwords; see `Retry-After`"),
    ))]
pub async fn totp_setup(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    OptionalJson(body): OptionalJson<TotpSetupRequest>,
) -> Result<Json<TotpSetupResponse>, AuthError> {
    let password = body.and_then(|b| b.password).map(|p| Password::new(&p));
    let setup = state
        .auth
        .setup_totp(&principal, password.as_ref(), &client)
        .await?;
    Ok(Json(TotpSetupResponse {
        secret: setup.secret,
        otpauth_uri: setup.otpauth_uri,
    }))
}

/// Confirm the app being set up with its current code: two-factor sign-in is
/// on from now. The answer carries the ten recovery codes, shown this once.
#[utoipa::path(post, path = "/mfa/totp/enable", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    request_body = TotpEnableRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse, description = "On; keep the recovery codes somewhere safe"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 409, body = ErrorResponse, description = "`mfa_setup_required`: no set-up started, or it expired; \
            `mfa_already_enabled`"),
        (status = 422, body = ErrorResponse, description = "`invalid_code`: not the app's current code; or `invalid_input`"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong codes; see `Retry-After`"),
    ))]
pub async fn totp_enable(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    ApiJson(body): ApiJson<TotpEnableRequest>,
) -> Result<Json<RecoveryCodesResponse>, AuthError> {
    let codes = state
        .auth
        .enable_totp(&principal, &body.code, &client)
        .await?;
    Ok(Json(RecoveryCodesResponse {
        recovery_codes: codes,
    }))
}

/// Turn two-factor sign-in off, with the password and a code (from the app,
/// or a recovery code). Every other session is ended.
#[utoipa::path(post, path = "/mfa/totp/disable", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    request_body = TotpConfirmRequest,
    responses(
        (status = 200, body = TotpDisabledResponse, description = "Off; the other sessions ended"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 409, body = ErrorResponse, description = "`mfa_not_enabled`"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, `invalid_code`, or `invalid_input`"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong passwords or codes; see `Retry-After`"),
    ))]
pub async fn totp_disable(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    ApiJson(body): ApiJson<TotpConfirmRequest>,
) -> Result<Json<TotpDisabledResponse>, AuthError> {
    let ended = state
        .auth
        .disable_totp(
            &principal,
            &Password::new(&body.password),
            &body.code,
            &client,
        )
        .await?;
    Ok(Json(TotpDisabledResponse {
        message: "Two-factor sign-in is off. Other sessions have been signed out.".into(),
        sessions_ended: ended,
    }))
}

/// New recovery codes, with the password and a code (from the app, or a
/// recovery code); the old ones stop working.
#[utoipa::path(post, path = "/mfa/recovery-codes", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    request_body = TotpConfirmRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse, description = "The new codes, shown this once"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 409, body = ErrorResponse, description = "`mfa_not_enabled`"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, `invalid_code`, or `invalid_input`"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong passwords or codes; see `Retry-After`"),
    ))]
pub async fn recovery_codes(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    ApiJson(body): ApiJson<TotpConfirmRequest>,
) -> Result<Json<RecoveryCodesResponse>, AuthError> {
    let codes = state
        .auth
        .regenerate_recovery_codes(
            &principal,
            &Password::new(&body.password),
            &body.code,
            &client,
        )
        .await?;
    Ok(Json(RecoveryCodesResponse {
        recovery_codes: codes,
    }))
}

/// `GET /account/recovery-codes.txt`: the recovery codes just made in this
/// session, as a file to keep (the page's "Download as .txt", which works
/// without JavaScript). Only while their page can show them.
pub async fn recovery_codes_file(
    State(state): State<AppState>,
    cookies: Cookies,
    SignedIn(principal): SignedIn,
) -> Response {
    let codes = state
        .cookies
        .read_shown_codes(&cookies)
        .and_then(|sealed| state.auth.open_shown_codes(&principal, &sealed));
    let Some(codes) = codes else {
        return crate::auth::AppError::new(
            ErrorCode::NotFound,
            "There are no new recovery codes to download: they can be shown only just after they are made.",
        )
        .into_response();
    };
    let body = format!(
        "Portcullis recovery codes for {}\n\
         Each code signs you in once, in place of a code from your authenticator app.\n\
         Keep them somewhere safe.\n\n{}\n",
        principal.email,
        codes.join("\n")
    );
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"portcullis-recovery-codes.txt\"",
            ),
        ],
        body,
    )
        .into_response()
}
