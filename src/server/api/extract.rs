//! Request-body extraction with the API's own error answers: every way a body
//! can be wrong gets a specific code and status instead of axum's plain text.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, Request,
        rejection::{BytesRejection, JsonRejection},
    },
    http::{StatusCode, header::CONTENT_TYPE},
};
use serde::de::DeserializeOwned;

use crate::auth::{AppError, ErrorCode};

/// `axum::Json`, answering rejections with [`AppError`].
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(value)| ApiJson(value))
            .map_err(json_rejection)
    }
}

/// Like [`ApiJson`], but an empty body is `None` rather than an error: for
/// endpoints whose body is optional (`/auth/refresh`, `/auth/sessions/{id}`).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        let body = Bytes::from_request(request, state)
            .await
            .map_err(bytes_rejection)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !is_json {
            return Err(unsupported_media_type());
        }
        serde_json::from_slice(&body)
            .map(|value| OptionalJson(Some(value)))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    AppError::new(ErrorCode::InvalidInput, data_error_message(&e.to_string()))
                }
                _ => malformed_json(),
            })
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            AppError::new(ErrorCode::InvalidInput, data_error_message(&e.body_text()))
        }
        JsonRejection::JsonSyntaxError(_) => malformed_json(),
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
        JsonRejection::BytesRejection(e) => bytes_rejection(e),
        _ => malformed_json(),
    }
}

fn bytes_rejection(rejection: BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        crate::server::middleware::headers::too_large()
    } else {
        AppError::new(
            ErrorCode::MalformedRequest,
            "The request body could not be read.",
        )
    }
}

fn malformed_json() -> AppError {
    AppError::new(
        ErrorCode::MalformedRequest,
        "The request body is not valid JSON.",
    )
}

fn unsupported_media_type() -> AppError {
    AppError::new(
        ErrorCode::UnsupportedMediaType,
        "Send the request body as JSON with Content-Type: application/json.",
    )
}

/// serde's message without axum's preamble or the line/column suffix:
/// "missing field `email`", "invalid type: integer `1`, expected a string".
fn data_error_message(text: &str) -> String {
    let text = text
        .split_once("target type: ")
        .map_or(text, |(_, rest)| rest);
    let text = text.split(" at line ").next().unwrap_or(text);
    format!("Invalid request body: {text}.")
}

#[cfg(test)]
mod tests {
    use super::data_error_message;

    #[test]
    fn serde_messages_are_trimmed_to_what_the_client_needs() {
        assert_eq!(
            data_error_message(
                "Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2"
            ),
            "Invalid request body: missing field `email`."
        );
        assert_eq!(
            data_error_message("invalid type: integer `1`, expected a string at line 1 column 11"),
            "Invalid request body: invalid type: integer `1`, expected a string."
        );
    }
}
