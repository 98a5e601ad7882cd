//! `/auth` endpoint handlers.

use axum::{
    Extension, Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tower_cookies::Cookies;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiJson, OptionalJson};
use crate::{
    auth::{AppError, ErrorCode, LogoutScope},
    server::{
        client::{ClientInfo, describe_device},
        db::{MfaStatus, SessionId},
        error::AuthError,
        middleware::session::{AuthState, Credentials, SignedIn, bearer_token},
        passwords::Password,
        service::{Issued, LogoutCredentials, SignIn},
        state::AppState,
        time::Timestamp,
    },
};

/// Where a login puts the tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenDelivery {
    /// HttpOnly cookies (browsers). The body carries no token.
    #[default]
    Cookie,
    /// In the JSON body (scripts, apps, services). No cookie is set.
    Body,
}

// The length limits, patterns and formats of these bodies are added when the
// router is built (`super::contract`), from the running configuration.

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(example = "violet kettle anthem 42")]
    password: String,
    /// Defaults to `password`; must equal it.
    password_confirm: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(example = "violet kettle anthem 42")]
    password: String,
    #[serde(default)]
    token_delivery: TokenDelivery,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token, for clients that hold it themselves. Without it the
    /// refresh-token cookie is used.
    refresh_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
    /// Defaults to `new_password`; must equal it.
    new_password_confirm: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ForgotPasswordRequest {
    #[schema(example = "ada@example.com")]
    email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    /// The `token` of the emailed link (`/reset-password?token=…`).
    token: String,
    password: String,
    /// Defaults to `password`; must equal it.
    password_confirm: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyEmailRequest {
    /// The `token` of the emailed link (`/verify-email?token=…`).
    token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResendVerificationRequest {
    /// Where to send it, for a client that is not signed in (an account
    /// that must confirm its address before it may sign in). Ignored when
    /// signed in: the link goes to the account's own address.
    #[schema(example = "ada@example.com")]
    email: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangeEmailRequest {
    #[schema(example = "ada@new.example.com")]
    new_email: String,
    /// The current password.
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmEmailChangeRequest {
    /// The `token` of the link mailed to the new address
    /// (`/confirm-email?token=…`).
    token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RevokeSessionRequest {
    /// Needed unless this device signed in within the re-authentication
    /// window (and ignored then). An empty or over-long one counts as none.
    password: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogoutParams {
    /// `local` (this device, the default), `others` (every other device) or
    /// `global` (everywhere).
    #[param(value_type = LogoutScopeParam, inline, required = false)]
    scope: Option<String>,
}

/// The values of `scope`, for the document: the handler parses the string
/// itself (`LogoutScope::from_str`) to answer an unknown one with its own
/// message.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum LogoutScopeParam {
    Local,
    Others,
    Global,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: String,
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    access_token: String,
    refresh_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Seconds until the refresh token expires.
    refresh_expires_in: u64,
}

#[derive(Serialize, ToSchema)]
pub struct AuthResponse {
    user: UserView,
    /// Present only with `"token_delivery": "body"` or a body refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<TokenPair>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    #[schema(example = "Logged out successfully")]
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<TokenPair>,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    id: String,
    email: String,
    /// Whether the address was confirmed through its emailed link.
    email_verified: bool,
    session_id: String,
    mfa: MfaView,
}

#[derive(Serialize, ToSchema)]
pub struct MfaView {
    /// Whether signing in asks for a code from an authenticator app.
    totp: bool,
    /// Unused recovery codes.
    recovery_codes_left: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: String,
    device: String,
    ip: Option<String>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; updated when the session's tokens are renewed.
    last_used_at: String,
    current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionsResponse {
    sessions: Vec<SessionView>,
}

/// The error body of every endpoint.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    #[schema(example = "Incorrect email or password.")]
    error: String,
    #[schema(example = "invalid_credentials")]
    code: String,
    field: Option<String>,
    retry_after: Option<u64>,
}

pub(super) fn message(text: &str) -> MessageResponse {
    MessageResponse {
        message: text.to_string(),
        tokens: None,
    }
}

fn token_pair(issued: &Issued) -> TokenPair {
    let now = Timestamp::now();
    TokenPair {
        access_token: issued.access_token.clone(),
        refresh_token: issued.refresh_token.expose().to_string(),
        token_type: "Bearer",
        expires_in: now.until(issued.access_expires_at).as_secs(),
        refresh_expires_in: now.until(issued.refresh_expires_at).as_secs(),
    }
}

/// Hands tokens over the way the client asked: cookies or body, never both.
pub(super) fn deliver(
    state: &AppState,
    cookies: &Cookies,
    issued: &Issued,
    delivery: TokenDelivery,
) -> AuthResponse {
    let user = UserView {
        id: issued.principal.user_id.to_string(),
        email: issued.principal.email.clone(),
    };
    match delivery {
        TokenDelivery::Cookie => {
            state.cookies.set(cookies, issued);
            AuthResponse { user, tokens: None }
        }
        TokenDelivery::Body => AuthResponse {
            user,
            tokens: Some(token_pair(issued)),
        },
    }
}

/// Create an account. Mails a link to confirm the address, and signs no one
/// in: sign in with `POST /auth/login`. The answer is the same, after the
/// same work, when the address already has an account (its owner is mailed
/// that someone tried, and nothing else happens).
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 202, body = MessageResponse, description = "Accepted: if the address was free, the account exists now and a \
            confirmation link is on its way"),
        (status = 422, body = ErrorResponse, description = "`weak_password` (a common, breached or guessable password), \
            `password_mismatch` (`password_confirm` differs), or `invalid_input` (a body the schema refuses; a password whose \
            NFKC-normalised length is outside the limits), or an address that is not a plain `local@domain` at a dotted domain \
            (a display name, an IP literal, mixed scripts or a look-alike)"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many registrations from this address, or of this email; \
            see `Retry-After`"),
        (status = 503, body = ErrorResponse, description = "`busy`: too many password checks at once, nothing was done; see `Retry-After`. \
            Or `unavailable`: the database cannot be reached"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<MessageResponse>), AuthError> {
    let password = Password::new(&body.password);
    let confirmation = Password::new(body.password_confirm.as_deref().unwrap_or(&body.password));
    state
        .auth
        .register(&body.email, &password, &confirmation, &client)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(message(
            "Check your email: we sent a link to confirm the address. Then sign in.",
        )),
    ))
}

/// Sign in. For an account with two-factor sign-in, a right password starts
/// no session: the answer is 401 `mfa_required`, with a pending sign-in
/// (`mfa_token` in the body for `"token_delivery": "body"`, else an HttpOnly
/// cookie) to finish with `POST /auth/login/mfa`.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = AuthResponse, description = "Signed in"),
        (status = 401, body = super::mfa::LoginRefusedResponse, description = "`invalid_credentials` (unknown email and wrong password alike); \
            or `mfa_required`: the password was right, the second factor is next (`mfa_token`, `expires_in`)"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: a body the schema refuses (no email address, \
            an empty password, one longer than the limit once NFKC-normalised)"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many failed sign-ins for this account or from this address; \
            see `Retry-After`"),
        (status = 503, body = ErrorResponse, description = "`busy`: too many password checks at once, nothing was done; see `Retry-After`. \
            Or `unavailable`: the database cannot be reached"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    cookies: Cookies,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, AuthError> {
    let signed_in = state
        .auth
        .login(&body.email, &Password::new(&body.password), &client)
        .await?;
    Ok(match signed_in {
        SignIn::Complete(issued) => {
            Json(deliver(&state, &cookies, &issued, body.token_delivery)).into_response()
        }
        SignIn::SecondFactor(pending) => {
            super::mfa::second_factor_required(&state, &cookies, &pending, body.token_delivery)
        }
    })
}

/// Exchange a refresh token for new tokens. The old refresh token is retired;
/// presenting it again later ends the session.
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body(content = RefreshRequest, description = "Optional: omit the body (or send `{}`) to use the refresh-token cookie. \
        A bearer client must send its refresh token here."),
    responses(
        (status = 200, body = AuthResponse, description = "Renewed"),
        (status = 401, body = ErrorResponse, description = "`session_ended`: unknown, retired, revoked or expired refresh token; \
            `unauthenticated`: none presented"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: a body that is not a `RefreshRequest` object"),
        (status = 429, body = ErrorResponse, description = "`throttled`: this session rotated its refresh token too often this minute \
            (`PORTCULLIS_REFRESH_MAX_PER_MINUTE`); nothing changed, the token stays valid; see `Retry-After`"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    cookies: Cookies,
    client: ClientInfo,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<Json<AuthResponse>, AuthError> {
    let from_body = body.and_then(|b| b.refresh_token);
    let (token, delivery) = match from_body {
        Some(token) => (token, TokenDelivery::Body),
        // A bearer client never acts on cookies: only the body counts.
        None if bearer_token(&headers).is_some() => return Err(AuthError::Unauthenticated),
        None => (
            state
                .cookies
                .read(&cookies)
                .refresh
                .ok_or(AuthError::Unauthenticated)?,
            TokenDelivery::Cookie,
        ),
    };
    match state.auth.refresh(&token, &client).await {
        Ok(issued) => Ok(Json(deliver(&state, &cookies, &issued, delivery))),
        Err(error) => {
            if delivery == TokenDelivery::Cookie && !error.is_unavailable() {
                state.cookies.clear(&cookies);
            }
            Err(error)
        }
    }
}

/// Sign out. Ends the session in the database (its access token stops working
/// at once, on every instance), and expires both cookies. Idempotent: without
/// credentials, or with dead ones, it still clears the cookies and answers 200.
/// The body is ignored; `{}` with `Content-Type: application/json` is the
/// documented form.
#[utoipa::path(method(post, delete), path = "/logout", tag = "auth", params(LogoutParams),
    responses(
        (status = 200, body = MessageResponse, description = "`{\"message\":\"Logged out successfully\"}`"),
        (status = 400, body = ErrorResponse, description = "`invalid_token`: an explicit bearer token that is malformed or not ours"),
        (status = 401, body = ErrorResponse, description = "`others`/`global` scope without a live session"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: an unknown or repeated `scope`"),
        (status = 500, body = ErrorResponse, description = "`logout_failed`: `{\"error\":\"Error logging out\"}`; cookies are still cleared"),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    cookies: Cookies,
    client: ClientInfo,
    headers: HeaderMap,
    params: Result<Query<LogoutParams>, QueryRejection>,
) -> Response {
    // axum's own rejection is plain text; this API answers with its error
    // body (a repeated `scope`, say), as documented.
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => {
            let reason = rejection.body_text();
            let reason = reason
                .strip_prefix("Failed to deserialize query string: ")
                .unwrap_or(&reason);
            return AppError::new(
                ErrorCode::InvalidInput,
                format!("Invalid query string: {reason}."),
            )
            .on_field("scope")
            .into_response();
        }
    };
    let scope = match params
        .scope
        .as_deref()
        .map(str::parse::<LogoutScope>)
        .transpose()
    {
        Ok(scope) => scope.unwrap_or_default(),
        Err(message) => {
            return AppError::new(ErrorCode::InvalidInput, message)
                .on_field("scope")
                .into_response();
        }
    };
    let cookie_credentials = state.cookies.read(&cookies);
    let site_data = scope
        .ends_current()
        .then(|| state.cookies.end_browser_session(&cookies));
    let credentials = LogoutCredentials {
        bearer: bearer_token(&headers),
        cookies: &cookie_credentials,
    };
    match state.auth.end_session(credentials, scope, &client).await {
        Ok(_) => with_header(Json(message("Logged out successfully")), site_data),
        Err(failure) => with_header(failure, site_data),
    }
}

/// `response` with `header` added, if there is one.
fn with_header(
    response: impl IntoResponse,
    header: Option<(http::HeaderName, http::HeaderValue)>,
) -> Response {
    let mut response = response.into_response();
    if let Some((name, value)) = header {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Change the password. Needs the current password; ends every other session
/// and gives this one fresh tokens (in cookies, or in the body for bearer
/// clients).
#[utoipa::path(put, path = "/password", tag = "auth", request_body = ChangePasswordRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = MessageResponse, description = "Changed"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated` or `session_ended`"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, `weak_password`, `password_mismatch`, `same_password`, `invalid_input`"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong current passwords; see `Retry-After`"),
        (status = 503, body = ErrorResponse, description = "`busy`: too many password checks at once, nothing was done; see `Retry-After`. \
            Or `unavailable`: the database cannot be reached"),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    cookies: Cookies,
    client: ClientInfo,
    headers: HeaderMap,
    SignedIn(principal): SignedIn,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<Json<MessageResponse>, AuthError> {
    let current = Password::new(&body.current_password);
    let new = Password::new(&body.new_password);
    let confirmation = Password::new(
        body.new_password_confirm
            .as_deref()
            .unwrap_or(&body.new_password),
    );
    let issued = state
        .auth
        .change_password(&principal, &current, &new, &confirmation, &client)
        .await?;
    let mut response = message("Password changed. Other sessions have been signed out.");
    if AuthState::is_bearer_request(&headers) {
        response.tokens = Some(token_pair(&issued));
    } else {
        state.cookies.set(&cookies, &issued);
    }
    Ok(Json(response))
}

/// Ask for a password-reset link. The answer is the same, and as quick,
/// whether or not the address has an account, and whether or not a limit
/// on such mails held this one back; a link is mailed only to an account's
/// address.
#[utoipa::path(post, path = "/password/forgot", tag = "auth", request_body = ForgotPasswordRequest,
    responses(
        (status = 202, body = MessageResponse, description = "Accepted: if the address has an account, a link is on its way"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: not an email address"),
    ))]
pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<MessageResponse>), AuthError> {
    state.auth.forgot_password(&body.email, &client)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(message(
            "If an account exists for that address, we sent it a link to reset the password.",
        )),
    ))
}

/// Set a new password with an emailed reset link. Ends every session of the
/// account, on every instance; signs no one in.
#[utoipa::path(post, path = "/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 200, body = MessageResponse, description = "Password reset; every session ended"),
        (status = 400, body = ErrorResponse, description = "`invalid_token`: the link is malformed, unknown, used, superseded by a newer one or a password change, or expired"),
        (status = 422, body = ErrorResponse, description = "`weak_password`, `password_mismatch` or `invalid_input`"),
        (status = 503, body = ErrorResponse, description = "`busy`: too many password hashes at once, nothing was done; see `Retry-After`. \
            Or `unavailable`: the database cannot be reached"),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> Result<Json<MessageResponse>, AuthError> {
    let password = Password::new(&body.password);
    let confirmation = Password::new(body.password_confirm.as_deref().unwrap_or(&body.password));
    state
        .auth
        .reset_password(&body.token, &password, &confirmation, &client)
        .await?;
    Ok(Json(message(
        "Password reset. Every session has been signed out; sign in with the new password.",
    )))
}

/// Confirm the account's address with its emailed link.
#[utoipa::path(post, path = "/email/verify", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 200, body = MessageResponse, description = "Confirmed"),
        (status = 400, body = ErrorResponse, description = "`invalid_token`: the link is malformed, unknown, used, superseded by a newer one, or expired"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: a body the schema refuses"),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<VerifyEmailRequest>,
) -> Result<Json<MessageResponse>, AuthError> {
    state.auth.verify_email(&body.token, &client).await?;
    Ok(Json(message("Email address confirmed.")))
}

/// Send a new link to confirm the address: the signed-in account's own, or,
/// without a session, `email`'s. The answer is the same whether or not the
/// address has an account that needs one, and whether or not a limit on
/// such mails held this one back.
#[utoipa::path(post, path = "/email/verify/resend", tag = "auth",
    request_body(content = ResendVerificationRequest, description = "Optional when signed in"),
    responses(
        (status = 202, body = MessageResponse, description = "Accepted: if the address needs confirming, a link is on its way"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`: neither signed in nor an `email` given; \
            `session_ended`, `invalid_token`: credentials that no longer work"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: not an email address, or a body the schema refuses"),
    ))]
pub async fn resend_verification(
    State(state): State<AppState>,
    client: ClientInfo,
    Credentials(auth): Credentials,
    OptionalJson(body): OptionalJson<ResendVerificationRequest>,
) -> Result<(StatusCode, Json<MessageResponse>), AuthError> {
    let email = body.and_then(|b| b.email);
    state
        .auth
        .resend_verification(&auth, email.as_deref(), &client)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(message(
            "If the address still needs confirming, we sent it a new link.",
        )),
    ))
}

/// Ask to move the account to a new address; needs the password. A link is
/// mailed to the new address (the change happens when it is followed, see
/// `POST /auth/email/change/confirm`) and a notice to the current one. The
/// answer is the same when the new address has an account (its owner is
/// told instead) or a limit on such mails held the link back.
#[utoipa::path(post, path = "/email/change", tag = "auth", request_body = ChangeEmailRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 202, body = MessageResponse, description = "Accepted: a confirmation link is on its way to the new address"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, or `invalid_input`: not an email address, \
            the account's own address, or a body the schema refuses"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong passwords; see `Retry-After`"),
        (status = 503, body = ErrorResponse, description = "`busy`: too many password checks at once, nothing was done; see `Retry-After`. \
            Or `unavailable`: the database cannot be reached"),
    ))]
pub async fn change_email(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    ApiJson(body): ApiJson<ChangeEmailRequest>,
) -> Result<(StatusCode, Json<MessageResponse>), AuthError> {
    state
        .auth
        .request_email_change(
            &principal,
            &body.new_email,
            &Password::new(&body.password),
            &client,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(message(
            "We sent a link to the new address. The address changes when it is followed.",
        )),
    ))
}

/// Confirm an email change with the link mailed to the new address. Every
/// session of the account but the one that asked for the change ends, on
/// every instance.
#[utoipa::path(post, path = "/email/change/confirm", tag = "auth", request_body = ConfirmEmailChangeRequest,
    responses(
        (status = 200, body = MessageResponse, description = "Changed; other sessions ended"),
        (status = 400, body = ErrorResponse, description = "`invalid_token`: the link is malformed, unknown, used, superseded, or expired"),
        (status = 409, body = ErrorResponse, description = "`email_taken`: another account took the address after the link was sent; \
            nothing changed"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: a body the schema refuses"),
    ))]
pub async fn confirm_email_change(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ConfirmEmailChangeRequest>,
) -> Result<Json<MessageResponse>, AuthError> {
    state
        .auth
        .confirm_email_change(&body.token, &client)
        .await?;
    Ok(Json(message(
        "Email address changed. Other sessions have been signed out.",
    )))
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = MeResponse),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
    ))]
pub async fn me(
    State(state): State<AppState>,
    SignedIn(principal): SignedIn,
    checked: Option<Extension<MfaStatus>>,
) -> Result<Json<MeResponse>, AuthError> {
    // Read by this request's session check, unless it renewed the tokens.
    let mfa = match checked {
        Some(Extension(mfa)) => mfa,
        None => state.auth.mfa_status(&principal).await?,
    };
    Ok(Json(MeResponse {
        id: principal.user_id.to_string(),
        email: principal.email,
        email_verified: principal.email_verified,
        session_id: principal.session_id.to_string(),
        mfa: MfaView {
            totp: mfa.totp,
            recovery_codes_left: mfa.recovery_codes_left,
        },
    }))
}

/// Live sign-out: a Server-Sent Events stream of this session. It sends
/// `ready` once listening, then exactly one of `ended` (`{"reason"}`, the
/// reasons of the `session.revoked` webhook: go to the login page),
/// `renew` (it has lasted an access token's lifetime: reconnect, which
/// renews the cookies) or `closing` (this instance is shutting down:
/// reconnect), and closes. Comment lines keep it open meanwhile. It carries
/// no token and nothing personal.
#[utoipa::path(get, path = "/events", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", description = "The stream: `event: ready`, then one of \
            `event: ended` with `data: {\"reason\": …}`, `event: renew` or `event: closing`"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 429, body = ErrorResponse, description = "`too_many_streams`: the account already holds \
            `PORTCULLIS_LIVE_MAX_STREAMS_PER_USER` streams on this instance; see `Retry-After`"),
        (status = 503, body = ErrorResponse, description = "`unavailable`: the database cannot be reached"),
    ))]
pub async fn events(
    State(state): State<AppState>,
    SignedIn(principal): SignedIn,
) -> Result<Response, AuthError> {
    state.live.open(&state.store, &principal).await
}

/// The user's active sessions, most recently used first.
#[utoipa::path(get, path = "/sessions", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = SessionsResponse),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    SignedIn(principal): SignedIn,
) -> Result<Json<SessionsResponse>, AuthError> {
    let sessions = state.auth.list_sessions(&principal).await?;
    Ok(Json(SessionsResponse {
        sessions: sessions
            .iter()
            .map(|s| SessionView {
                id: s.id.to_string(),
                device: describe_device(s.user_agent.as_deref()),
                ip: s.ip.clone(),
                created_at: s.created_at.to_rfc3339(),
                last_used_at: s.last_used_at.to_rfc3339(),
                current: s.id == principal.session_id,
            })
            .collect(),
    }))
}

/// End one of your sessions, this one included. Needs `{"password": …}` unless
/// this device signed in within the re-authentication window.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Session id, as listed by `GET /auth/sessions`")),
    request_body(content = RevokeSessionRequest, description = "Optional: needed only outside the re-authentication window"),
    responses(
        (status = 200, body = MessageResponse, description = "Revoked"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 403, body = ErrorResponse, description = "`reauth_required`: enter the password again; \
            or `cross_site_request`"),
        (status = 404, body = ErrorResponse, description = "`not_found`: no such session among yours"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, or `invalid_input`: a body that is not a \
            `RevokeSessionRequest` object"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong passwords; see `Retry-After`"),
        (status = 503, body = ErrorResponse, description = "`busy`: too many password checks at once, nothing was done; see `Retry-After`. \
            Or `unavailable`: the database cannot be reached"),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    cookies: Cookies,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RevokeSessionRequest>,
) -> Result<Response, AuthError> {
    let target = Uuid::parse_str(&id)
        .map(SessionId)
        .map_err(|_| AuthError::NotFound)?;
    let password = body.and_then(|b| b.password).map(|p| Password::new(&p));
    let ended_current = state
        .auth
        .revoke_session(&principal, target, password.as_ref(), &client)
        .await?;
    let site_data = ended_current.then(|| state.cookies.end_browser_session(&cookies));
    Ok(with_header(Json(message("Session revoked")), site_data))
}
