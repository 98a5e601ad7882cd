//! Transparent renewal of expired access tokens, and refresh-token rotation
//! with reuse detection and the grace window.

use crate::helpers::*;
use portcullis::server::{db::SessionId, time::Timestamp};
use reqwest::StatusCode;
use std::time::Duration;

/// `Cookie` header with an access token issued an hour ago (so expired) and
/// the given refresh token.
fn expired_access_cookies(
    app: &TestApp,
    user: portcullis::server::db::UserId,
    session: SessionId,
    refresh: &str,
) -> String {
    let stale = app.mint_access_token(
        user,
        session,
        Timestamp::now().minus(Duration::from_secs(3600)),
    );
    format!(
        "{}={stale}; {}={refresh}",
        app.access_cookie_name(),
        app.refresh_cookie_name()
    )
}

fn new_refresh_cookie(app: &TestApp, response: &reqwest::Response) -> String {
    let prefix = format!("{}=", app.refresh_cookie_name());
    set_cookies(response)
        .iter()
        .find_map(|c| {
            c.strip_prefix(&prefix)
                .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
        })
        .filter(|v| !v.is_empty())
        .expect("a renewed refresh cookie")
}

async fn an_expired_access_token_with_a_valid_refresh_token_is_renewed_transparently(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let (user, session) = app.ids().await;
    let mut refresh = app.cookie(app.refresh_cookie_name()).unwrap();

    // A JSON API call.
    let response = app
        .bare_client()
        .get(app.url("/auth/me"))
        .header(
            "cookie",
            expired_access_cookies(&app, user, session, &refresh),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(&response).len(), 2, "both cookies renewed");
    refresh = new_refresh_cookie(&app, &response);

    // A server-function call.
    let response = app
        .bare_client()
        .post(app.url("/api/current_user"))
        .header(
            "cookie",
            expired_access_cookies(&app, user, session, &refresh),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    refresh = new_refresh_cookie(&app, &response);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body.get("SignedIn").is_some(), "{body}");

    // A server-rendered page load.
    let response = app
        .bare_client()
        .get(app.url("/account"))
        .header("accept", "text/html")
        .header(
            "cookie",
            expired_access_cookies(&app, user, session, &refresh),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(&response).len(), 2);
    assert!(response.text().await.unwrap().contains("Signed-in devices"));
}

async fn a_sequential_rotation_chain_retires_each_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (_, mut refresh) = app.bearer_login(&email, PASSWORD).await;
    let mut seen = vec![refresh.clone()];
    for _ in 0..5 {
        let (access, next) = tokens_of(app.bearer_refresh(&refresh).await).await;
        assert!(!seen.contains(&next), "every refresh issues a new token");
        assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
        seen.push(next.clone());
        refresh = next;
    }
    let (_, session) = ids_of(
        app.bearer_me(&tokens_of(app.bearer_refresh(&refresh).await).await.0)
            .await,
    )
    .await;
    assert_eq!(app.store().live_refresh_tokens(session).await.unwrap(), 1);
    // Rotations are routine: the session's last use records them, not one
    // audit row each.
    assert!(
        app.store()
            .events_of_kind("token_refreshed")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn replaying_a_retired_refresh_token_after_the_grace_window_ends_the_whole_session(
    backend: Backend,
) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REFRESH_GRACE", "0s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (_, stolen) = app.bearer_login(&email, PASSWORD).await;
    let (access, current) = tokens_of(app.bearer_refresh(&stolen).await).await;
    let (_, session) = ids_of(app.bearer_me(&access).await).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let replay = app.bearer_refresh(&stolen).await;
    assert_eq!(
        error_code(replay).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    // Everything of that session is dead now, the legitimate copy included.
    assert_eq!(
        error_code(app.bearer_refresh(&current).await).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    assert_eq!(
        app.bearer_me(&access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, reason) = app
        .store()
        .session_revocation(session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason.as_deref(), Some("refresh_token_reuse"));
    let events = app
        .store()
        .events_of_kind("refresh_token_reuse_detected")
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].session_id, Some(session));
    // The browser session of the same user is untouched.
    assert_eq!(app.me().await.status(), StatusCode::OK);
}

async fn concurrent_refreshes_with_one_token_inside_the_window_all_succeed_with_one_successor(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (_, refresh) = app.bearer_login(&email, PASSWORD).await;
    let attempts = (0..8).map(|_| {
        let (client, url, token) = (app.bare_client(), app.url("/auth/refresh"), refresh.clone());
        async move {
            client
                .post(url)
                .json(&serde_json::json!({ "refresh_token": token }))
                .send()
                .await
                .unwrap()
        }
    });
    let results = join_all(attempts).await;
    let mut successors = Vec::new();
    for response in results {
        let (access, next) = tokens_of(response).await;
        assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
        successors.push(next);
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "every tab adopts the same successor");
    let (access, _) = tokens_of(app.bearer_refresh(&successors[0]).await).await;
    let (_, session) = ids_of(app.bearer_me(&access).await).await;
    assert_eq!(app.store().live_refresh_tokens(session).await.unwrap(), 1);
    assert!(
        app.store()
            .events_of_kind("refresh_token_reuse_detected")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_expired_refresh_token_is_refused(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_ACCESS_TOKEN_TTL", "1s")
        .with("PORTCULLIS_REFRESH_TOKEN_TTL", "2s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (_, refresh) = app.bearer_login(&email, PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        error_code(app.bearer_refresh(&refresh).await).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    // The browser's expired session is not renewed either, and its cookies go.
    let me = app.me().await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert!(app.cookie(app.refresh_cookie_name()).is_none());
}

async fn an_idle_session_ends_and_an_active_one_does_not(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_ACCESS_TOKEN_TTL", "1s")
        .with("PORTCULLIS_SESSION_IDLE_TIMEOUT", "2s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (_, idle) = app.bearer_login(&email, PASSWORD).await;
    let (_, mut active) = app.bearer_login(&email, PASSWORD).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        active = tokens_of(app.bearer_refresh(&active).await).await.1;
    }
    assert_eq!(
        error_code(app.bearer_refresh(&idle).await).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    assert_eq!(
        app.bearer_refresh(&active).await.status(),
        StatusCode::OK,
        "2.7 s old, but never idle for 2 s"
    );
}

async fn a_refresh_after_logout_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (access, refresh) = app.bearer_login(&email, PASSWORD).await;
    let logout = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(
        error_code(app.bearer_refresh(&refresh).await).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
}

async fn a_cookie_refresh_rotates_the_cookies_and_keeps_tokens_out_of_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let before = app.cookie(app.refresh_cookie_name()).unwrap();
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("refresh_token") && !body.contains(&before),
        "{body}"
    );
    let after = app.cookie(app.refresh_cookie_name()).unwrap();
    assert_ne!(before, after);
    assert_eq!(app.me().await.status(), StatusCode::OK);
}

async fn garbage_refresh_tokens_are_refused_without_touching_anything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for token in [
        "",
        "short",
        &"A".repeat(43),
        &"!".repeat(43),
        &"A".repeat(5000),
    ] {
        let response = app.bearer_refresh(token).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::UNAUTHORIZED, "session_ended".into()),
            "{token:.20}"
        );
    }
    let no_cookie = app
        .client
        .post(app.url("/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(no_cookie).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
}

backend_tests!(
    an_expired_access_token_with_a_valid_refresh_token_is_renewed_transparently,
    a_sequential_rotation_chain_retires_each_token,
    replaying_a_retired_refresh_token_after_the_grace_window_ends_the_whole_session,
    concurrent_refreshes_with_one_token_inside_the_window_all_succeed_with_one_successor,
    an_expired_refresh_token_is_refused,
    an_idle_session_ends_and_an_active_one_does_not,
    a_refresh_after_logout_is_refused,
    a_cookie_refresh_rotates_the_cookies_and_keeps_tokens_out_of_the_body,
    garbage_refresh_tokens_are_refused_without_touching_anything,
);

/// Runs all futures at once, each on its own task.
pub async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}
