//! `/admin/v1`: the operators' HTTP API, for automation (support tools, a
//! SIEM playbook, a user-deletion job). Thin adapters over `service::Admin`,
//! like the command line.
//!
//! Authenticated only by `Authorization: Bearer <admin API key>`: cookies
//! are never read here (the session middleware leaves these paths alone), so
//! a browser cannot be made to call it. A missing, wrong or revoked key gets
//! the same 401, and failures are throttled per client network.

use axum::{
    Json,
    extract::{FromRequestParts, Path, Query, State, rejection::QueryRejection},
    http::request::Parts,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::OptionalJson;
use crate::{
    auth::{AppError, ErrorCode},
    server::{
        client::{ClientInfo, describe_device},
        db::{AdminSession, SessionId, UserId, UserSummary},
        error::AuthError,
        middleware::bearer_token,
        service::{Actor, UserRef},
        state::AppState,
        time::Timestamp,
    },
};

/// The caller, authenticated by an admin API key.
pub struct AdminKey(pub Actor);

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let client = parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .unwrap_or_default();
        let presented = bearer_token(&parts.headers).and_then(Result::ok);
        state
            .admin
            .authenticate(presented, &client)
            .await
            .map(AdminKey)
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only addresses containing this text (any case).
    search: Option<String>,
    /// At most this many (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
pub struct DisableRequest {
    /// Why, for the audit trail (one line, at most 500 characters).
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminUser {
    id: String,
    email: String,
    /// RFC 3339.
    created_at: String,
    last_sign_in: Option<String>,
    live_sessions: i64,
    email_verified: bool,
    disabled: bool,
    disabled_reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    users: Vec<AdminUser>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminSessionView {
    id: String,
    device: String,
    ip: Option<String>,
    created_at: String,
    last_used_at: String,
    live: bool,
    /// `live`, or `ended: <reason>`.
    state: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    id: String,
    email: String,
    email_verified: bool,
    disabled: bool,
    sessions: Vec<AdminSessionView>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminActionResponse {
    /// Whether anything changed (a second disable changes nothing).
    changed: bool,
    /// Sessions this action ended.
    sessions_ended: u64,
}

fn user_view(u: &UserSummary) -> AdminUser {
    AdminUser {
        id: u.id.to_string(),
        email: u.email.clone(),
        created_at: u.created_at.to_rfc3339(),
        last_sign_in: u.last_sign_in.map(|t| t.to_rfc3339()),
        live_sessions: u.live_sessions,
        email_verified: u.email_verified,
        disabled: u.disabled_at.is_some(),
        disabled_reason: u.disabled_reason.clone(),
    }
}

fn session_view(s: &AdminSession) -> AdminSessionView {
    let now = Timestamp::now();
    AdminSessionView {
        id: s.id.to_string(),
        device: describe_device(s.user_agent.as_deref()),
        ip: s.ip.clone(),
        created_at: s.created_at.to_rfc3339(),
        last_used_at: s.last_used_at.to_rfc3339(),
        live: s.is_live(now),
        state: s.state(now),
    }
}

/// The query string, or the API's 422 for one axum could not parse.
fn query_params<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, AppError> {
    params.map(|Query(params)| params).map_err(|rejection| {
        AppError::new(
            ErrorCode::InvalidInput,
            format!("Invalid query string: {}.", rejection.body_text()),
        )
    })
}

/// A path id that is not a UUID names no user.
fn user_id(raw: &str) -> Result<UserId, AuthError> {
    Uuid::parse_str(raw)
        .map(UserId)
        .map_err(|_| AuthError::UnknownUser)
}

/// List users, oldest first, a page at a time.
#[utoipa::path(get, path = "/users", operation_id = "admin_list_users", tag = "admin", params(ListParams),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = UserPage),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 422, body = super::ErrorResponse, description = "`invalid_input`: a `limit` out of 1–1000, a malformed `cursor`"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network; see `Retry-After`"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    AdminKey(_): AdminKey,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<UserPage>, AppError> {
    let params = query_params(params)?;
    let limit = params.limit.unwrap_or(50);
    let users = state
        .admin
        .users(params.search.as_deref(), params.cursor.map(UserId), limit)
        .await
        .map_err(|e| e.to_app_error())?;
    let next_cursor = (users.len() == limit as usize)
        .then(|| users.last().map(|u| u.id.to_string()))
        .flatten();
    Ok(Json(UserPage {
        users: users.iter().map(user_view).collect(),
        next_cursor,
    }))
}

/// One user, with every session kept for them.
#[utoipa::path(get, path = "/users/{id}", operation_id = "admin_get_user", tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = UserDetail),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 404, body = super::ErrorResponse, description = "`not_found`: no such user"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    AdminKey(_): AdminKey,
    Path(id): Path<String>,
) -> Result<Json<UserDetail>, AuthError> {
    let found = state.admin.sessions(UserRef::Id(user_id(&id)?)).await?;
    Ok(Json(UserDetail {
        id: found.user.id.to_string(),
        email: found.user.email.clone(),
        email_verified: found.user.email_verified,
        disabled: found.user.disabled,
        sessions: found.sessions.iter().map(session_view).collect(),
    }))
}

/// End every session of the user, at once, on every instance.
#[utoipa::path(post, path = "/users/{id}/sign-out", operation_id = "admin_sign_out_user", tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = AdminActionResponse),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 404, body = super::ErrorResponse, description = "`not_found`: no such user"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn sign_out_user(
    State(state): State<AppState>,
    AdminKey(actor): AdminKey,
    Path(id): Path<String>,
) -> Result<Json<AdminActionResponse>, AuthError> {
    let ended = state
        .admin
        .sign_out(UserRef::Id(user_id(&id)?), &actor)
        .await?;
    Ok(Json(AdminActionResponse {
        changed: ended > 0,
        sessions_ended: ended,
    }))
}

/// Disable the account: every session ends, and sign-in, refresh and
/// recovery are refused until it is enabled.
#[utoipa::path(post, path = "/users/{id}/disable", operation_id = "admin_disable_user", tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body(content = DisableRequest, description = "Optional"),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = AdminActionResponse),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 404, body = super::ErrorResponse, description = "`not_found`: no such user"),
        (status = 422, body = super::ErrorResponse, description = "`invalid_input`: a reason over 500 characters or with control characters"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn disable_user(
    State(state): State<AppState>,
    AdminKey(actor): AdminKey,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DisableRequest>,
) -> Result<Json<AdminActionResponse>, AuthError> {
    let id = user_id(&id)?;
    let reason = body.and_then(|b| b.reason);
    let ended = state
        .admin
        .disable(UserRef::Id(id), reason.as_deref(), &actor)
        .await?;
    Ok(Json(AdminActionResponse {
        changed: ended.is_some(),
        sessions_ended: ended.unwrap_or(0),
    }))
}

/// Lift a disable.
#[utoipa::path(post, path = "/users/{id}/enable", operation_id = "admin_enable_user", tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = AdminActionResponse),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 404, body = super::ErrorResponse, description = "`not_found`: no such user"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn enable_user(
    State(state): State<AppState>,
    AdminKey(actor): AdminKey,
    Path(id): Path<String>,
) -> Result<Json<AdminActionResponse>, AuthError> {
    let changed = state
        .admin
        .enable(UserRef::Id(user_id(&id)?), &actor)
        .await?;
    Ok(Json(AdminActionResponse {
        changed,
        sessions_ended: 0,
    }))
}

/// Erase the user and everything that names them.
#[utoipa::path(delete, path = "/users/{id}", operation_id = "admin_delete_user", tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = AdminActionResponse),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 404, body = super::ErrorResponse, description = "`not_found`: no such user"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    AdminKey(actor): AdminKey,
    Path(id): Path<String>,
) -> Result<Json<AdminActionResponse>, AuthError> {
    state
        .admin
        .delete(UserRef::Id(user_id(&id)?), &actor)
        .await?;
    Ok(Json(AdminActionResponse {
        changed: true,
        sessions_ended: 0,
    }))
}

/// End one session of any user, at once, on every instance.
#[utoipa::path(delete, path = "/sessions/{id}", operation_id = "admin_revoke_session", tag = "admin",
    params(("id" = Uuid, Path, description = "The session's id (the access token's `sid`)")),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = AdminActionResponse),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 404, body = super::ErrorResponse, description = "`not_found`: no such live session"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    AdminKey(actor): AdminKey,
    Path(id): Path<String>,
) -> Result<Json<AdminActionResponse>, AuthError> {
    let session = Uuid::parse_str(&id)
        .map(SessionId)
        .map_err(|_| AuthError::NotFound)?;
    state.admin.revoke_session(session, &actor).await?;
    Ok(Json(AdminActionResponse {
        changed: true,
        sessions_ended: 1,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// At most this many (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only the dead ones.
    dead: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id`, the same on every attempt.
    id: String,
    #[schema(example = "session.revoked")]
    r#type: String,
    occurred_at: String,
    attempts: i32,
    last_status: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: String,
    /// `pending`, `delivered` or `dead`.
    state: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveriesResponse {
    deliveries: Vec<DeliveryView>,
}

/// The most recent session events and how their webhook delivery went,
/// newest first.
#[utoipa::path(get, path = "/webhooks", operation_id = "admin_list_webhooks", tag = "admin", params(DeliveryParams),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = DeliveriesResponse),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 422, body = super::ErrorResponse, description = "`invalid_input`: a `limit` out of 1–1000"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    AdminKey(_): AdminKey,
    params: Result<Query<DeliveryParams>, QueryRejection>,
) -> Result<Json<DeliveriesResponse>, AppError> {
    use crate::server::webhooks::{delivery_state, type_of_kind};
    let params = query_params(params)?;
    let deliveries = state
        .admin
        .webhook_deliveries(params.limit.unwrap_or(50), params.dead.unwrap_or(false))
        .await
        .map_err(|e| e.to_app_error())?;
    Ok(Json(DeliveriesResponse {
        deliveries: deliveries
            .iter()
            .map(|d| DeliveryView {
                id: format!("msg_{}", d.id),
                r#type: type_of_kind(&d.kind).to_string(),
                occurred_at: d.occurred_at.to_rfc3339(),
                attempts: d.attempts,
                last_status: d.last_status,
                last_error: d.last_error.clone(),
                next_attempt_at: d.next_attempt_at.to_rfc3339(),
                state: delivery_state(d).to_string(),
            })
            .collect(),
    }))
}

/// Send one event again now, with the same `webhook-id`.
#[utoipa::path(post, path = "/webhooks/{id}/retry", operation_id = "admin_retry_webhook", tag = "admin",
    params(("id" = String, Path, description = "The event's `webhook-id` (`msg_<n>`)")),
    security(("admin_key" = [])),
    responses(
        (status = 200, body = AdminActionResponse),
        (status = 401, body = super::ErrorResponse, description = "`unauthenticated`: no admin API key, or a wrong or revoked one"),
        (status = 404, body = super::ErrorResponse, description = "`not_found`: no such event is kept"),
        (status = 429, body = super::ErrorResponse, description = "`throttled`: too many wrong keys from this network"),
    ))]
pub async fn retry_webhook(
    State(state): State<AppState>,
    AdminKey(_): AdminKey,
    Path(id): Path<String>,
) -> Result<Json<AdminActionResponse>, AuthError> {
    state.admin.retry_webhook(&id).await?;
    Ok(Json(AdminActionResponse {
        changed: true,
        sessions_ended: 0,
    }))
}
