//! Liveness, readiness and the schema: `/healthz`, `/readyz`, migrations at
//! startup (retried in the background while the database is away), and the
//! 503 dynamic routes answer until the schema is in place.

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::time::Duration;

use super::state::AppState;
use crate::auth::{AppError, ErrorCode};

/// Liveness: the process answers.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: migrations are applied and the database answers now.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.schema_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "starting" })),
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => axum::Json(
            serde_json::json!({ "status": "ready", "database": state.store.engine().name() }),
        )
        .into_response(),
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "database unavailable" })),
            )
                .into_response()
        }
    }
}

/// Until the schema is in place, dynamic routes answer 503 instead of
/// failing on missing tables.
pub async fn require_schema(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.schema_ready() {
        return next.run(request).await;
    }
    AppError::new(
        ErrorCode::Unavailable,
        "The service is starting. Please try again shortly.",
    )
    .into_response()
}

/// Applies migrations now, or, if the database is not reachable yet, keeps
/// trying in the background while the instance reports not-ready.
pub async fn prepare_schema(state: &AppState) -> anyhow::Result<()> {
    match state.store.migrate().await {
        Ok(()) => {
            state.mark_schema_ready();
            Ok(())
        }
        Err(error) if error.is_unavailable() => {
            let error = anyhow::Error::new(error);
            tracing::warn!(error = %format!("{error:#}"), "database not reachable yet; migrations will be retried");
            let state = state.clone();
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(250);
                loop {
                    tokio::time::sleep(delay).await;
                    match state.store.migrate().await {
                        Ok(()) => {
                            tracing::info!("database reachable; migrations applied");
                            state.mark_schema_ready();
                            return;
                        }
                        Err(error) => {
                            let error = anyhow::Error::new(error);
                            tracing::debug!(error = %format!("{error:#}"), "migrations still pending")
                        }
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            });
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
