//! `/auth/passkeys` endpoints: adding a passkey, signing in with one, the
//! list, removing one. Adapters over `service::passkeys`. The WebAuthn
//! options and answers are the protocol's JSON (webauthn-rs's types), as
//! `navigator.credentials.create/get` take and give them.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};
use tower_cookies::Cookies;
use utoipa::ToSchema;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use super::{
    extract::{ApiJson, OptionalJson},
    handlers::{AuthResponse, ErrorResponse, MessageResponse, TokenDelivery, deliver, message},
};
use crate::server::{
    client::ClientInfo, db::PasskeyRecord, error::AuthError, middleware::session::SignedIn,
    passwords::Password, service::CeremonyStart, state::AppState,
};

#[derive(Deserialize, ToSchema)]
pub struct PasskeyReauthRequest {
    /// Needed unless this device signed in within the re-authentication
    /// window (and ignored then).
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyCreationStart {
    /// Send it back with the answer; it works once, for 5 minutes.
    ceremony: String,
    /// `PublicKeyCredentialCreationOptions` as JSON, under `publicKey`: for
    /// `navigator.credentials.create` (`PublicKeyCredential.parseCreationOptionsFromJSON`).
    #[schema(value_type = Object)]
    options: CreationChallengeResponse,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyRequestStart {
    /// Send it back with the answer; it works once, for 5 minutes.
    ceremony: String,
    /// `PublicKeyCredentialRequestOptions` as JSON, under `publicKey`, with
    /// no allowed credentials (a discoverable sign-in): for
    /// `navigator.credentials.get`.
    #[schema(value_type = Object)]
    options: RequestChallengeResponse,
}

#[derive(Deserialize, ToSchema)]
pub struct PasskeyRegistrationFinish {
    ceremony: String,
    /// What `navigator.credentials.create` answered, as JSON (`toJSON()`).
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
    /// 1 to 64 characters; defaults to the device ("Firefox on Linux").
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct PasskeySignInFinish {
    ceremony: String,
    /// What `navigator.credentials.get` answered, as JSON (`toJSON()`).
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
    #[serde(default)]
    token_delivery: TokenDelivery,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    id: String,
    name: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; `null` until it first signs in.
    last_used_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeysResponse {
    passkeys: Vec<PasskeyView>,
}

fn view(record: &PasskeyRecord) -> PasskeyView {
    PasskeyView {
        id: record.id.to_string(),
        name: record.name.clone(),
        created_at: record.created_at.to_rfc3339(),
        last_used_at: record.last_used_at.map(|t| t.to_rfc3339()),
    }
}

/// Start adding a passkey to this account.
#[utoipa::path(post, path = "/passkeys/register/start", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    request_body(content = PasskeyReauthRequest, description = "Optional: needed only outside the re-authentication window"),
    responses(
        (status = 200, body = PasskeyCreationStart, description = "The options for the browser's passkey prompt"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 403, body = ErrorResponse, description = "`reauth_required`: enter the password again; or `cross_site_request`"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, or `invalid_input`"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong passwords; see `Retry-After`"),
    ))]
pub async fn register_start(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    OptionalJson(body): OptionalJson<PasskeyReauthRequest>,
) -> Result<Json<PasskeyCreationStart>, AuthError> {
    let password = body.and_then(|b| b.password).map(|p| Password::new(&p));
    let CeremonyStart { id, options } = state
        .auth
        .start_passkey_registration(&principal, password.as_ref(), &client)
        .await?;
    Ok(Json(PasskeyCreationStart {
        ceremony: id.expose().to_string(),
        options,
    }))
}

/// Finish adding a passkey with the browser's answer.
#[utoipa::path(post, path = "/passkeys/register/finish", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    request_body = PasskeyRegistrationFinish,
    responses(
        (status = 200, body = PasskeyView, description = "Added"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 409, body = ErrorResponse, description = "`ceremony_expired`: unknown, answered already, expired, or another \
            account's; `passkey_exists`: registered already"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: an answer that does not verify (challenge, origin, \
            relying party, user verification), a name that is too long, or a body the schema refuses"),
    ))]
pub async fn register_finish(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    ApiJson(body): ApiJson<PasskeyRegistrationFinish>,
) -> Result<Json<PasskeyView>, AuthError> {
    let record = state
        .auth
        .finish_passkey_registration(
            &principal,
            &body.ceremony,
            &body.credential,
            body.name.as_deref(),
            &client,
        )
        .await?;
    Ok(Json(view(&record)))
}

/// Start signing in with a passkey: no email, no password.
#[utoipa::path(post, path = "/passkeys/login/start", tag = "passkeys",
    responses(
        (status = 200, body = PasskeyRequestStart, description = "The options for the browser's passkey prompt"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many unfinished passkey sign-ins from this network; see `Retry-After`"),
    ))]
pub async fn login_start(
    State(state): State<AppState>,
    client: ClientInfo,
) -> Result<Json<PasskeyRequestStart>, AuthError> {
    let CeremonyStart { id, options } = state.auth.start_passkey_sign_in(&client).await?;
    Ok(Json(PasskeyRequestStart {
        ceremony: id.expose().to_string(),
        options,
    }))
}

/// Finish signing in with a passkey: the answer is a login's.
#[utoipa::path(post, path = "/passkeys/login/finish", tag = "passkeys",
    request_body = PasskeySignInFinish,
    responses(
        (status = 200, body = AuthResponse, description = "Signed in"),
        (status = 401, body = ErrorResponse, description = "`passkey_refused`: the answer does not verify, or its passkey is not \
            (or no longer) registered"),
        (status = 403, body = ErrorResponse, description = "`account_disabled`, or `email_not_verified`"),
        (status = 409, body = ErrorResponse, description = "`ceremony_expired`: unknown, answered already or expired"),
        (status = 422, body = ErrorResponse, description = "`invalid_input`: a body the schema refuses"),
    ))]
pub async fn login_finish(
    State(state): State<AppState>,
    cookies: Cookies,
    client: ClientInfo,
    ApiJson(body): ApiJson<PasskeySignInFinish>,
) -> Result<Json<AuthResponse>, AuthError> {
    let issued = state
        .auth
        .finish_passkey_sign_in(&body.ceremony, &body.credential, &client)
        .await?;
    Ok(Json(deliver(
        &state,
        &cookies,
        &issued,
        body.token_delivery,
    )))
}

/// This account's passkeys.
#[utoipa::path(get, path = "/passkeys", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = PasskeysResponse),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    SignedIn(principal): SignedIn,
) -> Result<Json<PasskeysResponse>, AuthError> {
    let passkeys = state.auth.list_passkeys(&principal).await?;
    Ok(Json(PasskeysResponse {
        passkeys: passkeys.iter().map(view).collect(),
    }))
}

/// Remove one of this account's passkeys. Needs `{"password": …}` unless this
/// device signed in within the re-authentication window.
#[utoipa::path(delete, path = "/passkeys/{id}", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "A passkey's id, as listed by `GET /auth/passkeys`")),
    request_body(content = PasskeyReauthRequest, description = "Optional: needed only outside the re-authentication window"),
    responses(
        (status = 200, body = MessageResponse, description = "Removed: it signs in no more"),
        (status = 401, body = ErrorResponse, description = "`unauthenticated`, `session_ended` or `invalid_token`"),
        (status = 403, body = ErrorResponse, description = "`reauth_required`: enter the password again; or `cross_site_request`"),
        (status = 404, body = ErrorResponse, description = "`not_found`: no such passkey among yours"),
        (status = 422, body = ErrorResponse, description = "`invalid_current_password`, or `invalid_input`"),
        (status = 429, body = ErrorResponse, description = "`throttled`: too many wrong passwords; see `Retry-After`"),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    client: ClientInfo,
    SignedIn(principal): SignedIn,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<PasskeyReauthRequest>,
) -> Result<Json<MessageResponse>, AuthError> {
    let password = body.and_then(|b| b.password).map(|p| Password::new(&p));
    state
        .auth
        .remove_passkey(&principal, &id, password.as_ref(), &client)
        .await?;
    Ok(Json(message("Passkey removed")))
}
