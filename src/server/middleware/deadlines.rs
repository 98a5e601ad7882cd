//! Deadlines for reading a request's body and for producing its answer
//! (#17 item 4: slow clients).
//!
//! The body is read here, in full, against one total budget: a client that
//! trickles a byte every second would reset a per-read timer forever
//! (tower-http's `RequestBodyTimeoutLayer` restarts its timer on every
//! frame). Every body this app accepts is small (`headers::MAX_BODY_BYTES`)
//! and every handler reads it whole anyway, so buffering it first costs
//! nothing. A body that is late is answered `408` with the app's JSON error,
//! and the connection is closed.
//!
//! The application then gets `request_timeout` to produce the response head;
//! past it the work is dropped (open transactions roll back) and the client
//! gets `503` with `Retry-After`. This is a backstop: the hashing pool and
//! the database pool answer `503 busy`/`unavailable` on their own, well
//! before it (`config` requires it to be longer than both budgets).

use axum::{
    body::{Body, HttpBody},
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError};
use std::time::Duration;

use super::headers::too_large;
use crate::{
    auth::{AppError, ErrorCode},
    server::state::AppState,
};

pub async fn request_deadlines(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.settings.connections;
    with_deadlines(
        request,
        limits.body_read_timeout,
        limits.request_timeout,
        next,
    )
    .await
}

async fn with_deadlines(
    request: Request,
    body_read_timeout: Duration,
    request_timeout: Duration,
    next: Next,
) -> Response {
    let request = match read_body(request, body_read_timeout).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    match tokio::time::timeout(request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout = ?request_timeout,
                "a request ran out of time (PORTCULLIS_REQUEST_TIMEOUT); answered 503"
            );
            let mut error = AppError::new(
                ErrorCode::Unavailable,
                "The server took too long to answer. Try again shortly.",
            );
            error.retry_after = Some(1);
            error.into_response()
        }
    }
}

/// The request with its body read in full, or the answer to send instead.
async fn read_body(request: Request, budget: Duration) -> Result<Request, Response> {
    if request.body().is_end_stream() {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(budget, body.collect()).await {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Body::from(collected.to_bytes()))),
        Ok(Err(error)) if is_length_limit(&error) => Err(too_large().into_response()),
        Ok(Err(error)) => {
            // The client went away or sent broken chunked encoding.
            tracing::debug!(%error, "could not read a request body");
            Err(closing(AppError::new(
                ErrorCode::MalformedRequest,
                "The request body could not be read.",
            )))
        }
        Err(_) => {
            tracing::debug!(timeout = ?budget, "a request body did not arrive in time");
            Err(closing(AppError::new(
                ErrorCode::RequestTimeout,
                "The request body did not arrive in time.",
            )))
        }
    }
}

/// Whether a body error is `headers::limit_body`'s cap (413, not 400).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<LengthLimitError>() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// The rest of that body is unread, so the connection cannot carry another
/// request: say so, and hyper closes it after the answer.
fn closing(error: AppError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, body::Bytes, http::StatusCode, middleware::from_fn, routing::post};
    use http_body_util::Limited;
    use hyper::body::Frame;
    use serde_json::Value;
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };
    use tower::ServiceExt;

    const BODY: Duration = Duration::from_millis(200);
    const HANDLER: Duration = Duration::from_millis(300);

    /// A router whose one handler echoes the body, after `delay`.
    fn app(delay: Duration) -> Router {
        Router::new()
            .route(
                "/",
                post(move |body: Bytes| async move {
                    tokio::time::sleep(delay).await;
                    body
                }),
            )
            .layer(from_fn(|request: Request, next: Next| {
                with_deadlines(request, BODY, HANDLER, next)
            }))
    }

    /// A body whose first byte comes at once and whose next never does.
    struct Stalled {
        sent: bool,
    }

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if self.sent {
                Poll::Pending
            } else {
                self.sent = true;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
            }
        }
    }

    fn stalled_body() -> Body {
        Body::new(Stalled { sent: false })
    }

    async fn answer(router: Router, body: Body) -> (StatusCode, Option<String>, Value) {
        let response = router
            .oneshot(Request::post("/").body(body).expect("a request"))
            .await
            .expect("infallible");
        let status = response.status();
        let connection = response
            .headers()
            .get(header::CONNECTION)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, connection, json)
    }

    #[tokio::test]
    async fn a_body_that_stalls_gets_408_and_closes_the_connection() {
        let (status, connection, json) = answer(app(Duration::ZERO), stalled_body()).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(connection.as_deref(), Some("close"));
        assert_eq!(json["code"], "request_timeout");
    }

    #[tokio::test]
    async fn a_handler_that_runs_out_of_time_gets_503_with_retry_after() {
        let response = app(Duration::from_secs(30))
            .oneshot(Request::post("/").body(Body::from("x")).expect("a request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        let bytes = response.into_body().collect().await.expect("a body");
        let json: Value = serde_json::from_slice(&bytes.to_bytes()).expect("JSON");
        assert_eq!(json["code"], "unavailable");
    }

    #[tokio::test]
    async fn a_prompt_request_is_untouched_and_an_oversized_one_is_413() {
        let (status, _, _) = answer(app(Duration::ZERO), Body::from("hello")).await;
        assert_eq!(status, StatusCode::OK);
        let oversized = Body::new(Limited::new(Body::from(vec![b'x'; 64]), 16));
        let (status, _, json) = answer(app(Duration::ZERO), oversized).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json["code"], "payload_too_large");
    }
}
