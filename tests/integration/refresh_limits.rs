//! Refresh in a loop: rotation is rate-limited per session, a session keeps
//! a bounded number of retired token rows, and reuse detection still
//! recognises a retired token whose row was pruned.

use crate::helpers::*;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::Value;

async fn session_id_of(app: &TestApp, access: &str) -> String {
    let me: Value = app.bearer_me(access).await.json().await.unwrap();
    me["session_id"].as_str().expect("a session id").to_string()
}

/// The audit's loop: 500 refreshes added 500 token rows and 500 audit rows.
/// Now the session's budget runs out (429 with Retry-After, nothing
/// changed), rows stay bounded and rotations write no audit rows.
async fn a_refresh_loop_is_rate_limited_and_leaves_bounded_rows(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REFRESH_MAX_PER_MINUTE", "5")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (_, mut refresh) = app.bearer_login(&email, PASSWORD).await;
    let (_, other_refresh) = app.bearer_login(&email, PASSWORD).await;
    let rows_before = app.count("SELECT COUNT(*) FROM refresh_tokens").await;
    let events_before = app.count("SELECT COUNT(*) FROM auth_events").await;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let response = app.bearer_refresh(&refresh).await;
        let status = response.status();
        if status == StatusCode::OK {
            refresh = tokens_of(response).await.1;
        } else {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(error_code(response).await.1, "throttled");
        }
        statuses.push(status);
    }
    let mut expected = vec![StatusCode::OK; 5];
    expected.extend([StatusCode::TOO_MANY_REQUESTS; 45]);
    assert_eq!(statuses, expected);
    let added = app.count("SELECT COUNT(*) FROM refresh_tokens").await - rows_before;
    assert_eq!(added, 5, "one row per rotation that happened");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events").await,
        events_before,
        "rotations and refused rotations write no audit rows"
    );
    // The refused refreshes changed nothing: the token is still the live one
    // (it is refused only for the budget), and another session has its own.
    assert_eq!(
        error_code(app.bearer_refresh(&refresh).await).await.1,
        "throttled"
    );
    assert_eq!(
        app.bearer_refresh(&other_refresh).await.status(),
        StatusCode::OK
    );
}

/// A long chain keeps only the last few retired rows; replaying its very
/// first token, long pruned, is still recognised as reuse and ends the
/// session, exactly as replaying a kept one does.
async fn a_pruned_token_replayed_still_ends_the_session(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REFRESH_MAX_PER_MINUTE", "1000")
        .with("PORTCULLIS_REFRESH_GRACE", "0s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (_, first) = app.bearer_login(&email, PASSWORD).await;
    let rows_before = app.count("SELECT COUNT(*) FROM refresh_tokens").await;
    let mut refresh = first.clone();
    let mut access = String::new();
    for _ in 0..30 {
        (access, refresh) = tokens_of(app.bearer_refresh(&refresh).await).await;
    }
    let kept = app.count("SELECT COUNT(*) FROM refresh_tokens").await - rows_before;
    assert!(
        kept <= 9,
        "{kept} rows kept for one session after 30 rotations"
    );
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);

    let replay = app.bearer_refresh(&first).await;
    assert_eq!(error_code(replay).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.bearer_me(&access).await.status(),
        StatusCode::UNAUTHORIZED,
        "the whole session ended"
    );
    assert_eq!(
        app.bearer_refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.store()
            .events_of_kind("refresh_token_reuse_detected")
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Naming someone's session in a made-up token proves nothing: it is
/// refused and the session lives on.
async fn a_forged_token_naming_a_session_changes_nothing(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REFRESH_MAX_PER_MINUTE", "1000")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (access, mut refresh) = app.bearer_login(&email, PASSWORD).await;
    // Enough rotations that some rows were pruned.
    for _ in 0..12 {
        refresh = tokens_of(app.bearer_refresh(&refresh).await).await.1;
    }
    let session = uuid::Uuid::parse_str(&session_id_of(&app, &access).await).unwrap();
    let forged = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(session.as_bytes()),
        URL_SAFE_NO_PAD.encode([42u8; 32])
    );
    assert_eq!(
        error_code(app.bearer_refresh(&forged).await).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.bearer_refresh(&refresh).await.status(), StatusCode::OK);
    assert!(
        app.store()
            .events_of_kind("refresh_token_reuse_detected")
            .await
            .unwrap()
            .is_empty()
    );
}

backend_tests!(
    a_refresh_loop_is_rate_limited_and_leaves_bounded_rows,
    a_pruned_token_replayed_still_ends_the_session,
    a_forged_token_naming_a_session_changes_nothing,
);
