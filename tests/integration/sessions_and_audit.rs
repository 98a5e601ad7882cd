//! Scoped logout, immediate revocation everywhere, the device list, and the
//! audit trail.

use crate::helpers::*;
use portcullis::server::{sweeper, time::Timestamp};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// Signs `email` in on a second browser and returns it.
async fn second_device(app: &TestApp, email: &str) -> Client {
    second_device_with(app, email, PASSWORD).await
}

async fn second_device_with(app: &TestApp, email: &str, password: &str) -> Client {
    let (client, _) = app.new_browser();
    let response = server_fn_with(
        &client,
        &app.address,
        "login",
        &[("email", email), ("password", password)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    client
}

async fn me_status(app: &TestApp, client: &Client) -> StatusCode {
    client
        .get(app.url("/auth/me"))
        .send()
        .await
        .unwrap()
        .status()
}

async fn signing_out_other_devices_keeps_this_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let phone = second_device(&app, &email).await;
    let tablet = second_device(&app, &email).await;
    let response = app
        .client
        .post(app.url("/auth/logout?scope=others"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !expires_cookie(&response, app.access_cookie_name()),
        "this device keeps its cookies"
    );
    assert_eq!(me_status(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &tablet).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me().await.status(), StatusCode::OK);
}

async fn signing_out_everywhere_ends_every_session_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let phone = second_device(&app, &email).await;
    let response = app.server_fn("logout", &[("scope", "global")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(me_status(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
    let events = app.store().events_of_kind("logout").await.unwrap();
    assert_eq!(
        events.last().and_then(|e| e.detail.as_deref()),
        Some("global")
    );
}

async fn scoped_logout_of_others_needs_a_live_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .post(app.url("/auth/logout?scope=others"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
}

async fn a_swept_session_refuses_even_a_fresh_looking_access_token(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_ACCESS_TOKEN_TTL", "1s")
        .with("PORTCULLIS_REFRESH_TOKEN_TTL", "2s")
        .spawn()
        .await;
    app.signed_up_user().await;
    let (user, session) = app.ids().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = sweeper::sweep_once(
        app.store(),
        &app.state.settings.maintenance,
        &app.state.settings.throttle,
    )
    .await
    .unwrap();
    assert!(report.sessions >= 1);
    // A correctly signed, unexpired JWT for the swept session is refused.
    let token = app.mint_access_token(user, session, Timestamp::now());
    assert_eq!(
        error_code(app.bearer_me(&token).await).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
}

async fn the_device_list_shows_each_session_and_marks_this_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (phone, _) = app.new_browser();
    server_fn_with(
        &phone,
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    let response = app
        .client
        .get(app.url("/auth/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    for session in sessions {
        assert_eq!(session["ip"], "127.0.0.1");
        assert!(!session["device"].as_str().unwrap().is_empty());
        assert!(session["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let overview: Value = app.server_fn("sessions", &[]).await.json().await.unwrap();
    assert_eq!(overview["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(overview["reauth_required"], false, "just signed in");
}

async fn revoking_another_device_ends_it_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let phone = second_device(&app, &email).await;
    let (_, phone_session) = ids_of(phone.get(app.url("/auth/me")).send().await.unwrap()).await;
    let response = app
        .server_fn(
            "revoke_session",
            &[("session_id", &phone_session.to_string())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        Value::Bool(false),
        "not this device"
    );
    assert_eq!(me_status(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me().await.status(), StatusCode::OK);
    assert_eq!(
        app.store()
            .events_of_kind("session_revoked")
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn revoking_needs_the_password_once_the_sign_in_is_no_longer_recent(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REAUTH_WINDOW", "0s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let phone = second_device(&app, &email).await;
    let (_, phone_session) = ids_of(phone.get(app.url("/auth/me")).send().await.unwrap()).await;
    let path = format!("/auth/sessions/{phone_session}");
    tokio::time::sleep(Duration::from_millis(20)).await;

    let without = app.client.delete(app.url(&path)).send().await.unwrap();
    assert_eq!(
        error_code(without).await,
        (StatusCode::FORBIDDEN, "reauth_required".into())
    );
    let wrong = app
        .client
        .delete(app.url(&path))
        .json(&json!({ "password": "not it at all" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(wrong).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_current_password".into()
        )
    );
    assert_eq!(
        me_status(&app, &phone).await,
        StatusCode::OK,
        "nothing was revoked"
    );
    let right = app
        .client
        .delete(app.url(&path))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(me_status(&app, &phone).await, StatusCode::UNAUTHORIZED);
}

async fn nobody_can_see_or_revoke_someone_elses_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let (_, own_session) = app.ids().await;
    let (mallory, _) = app.new_browser();
    let mallory_email = unique_email();
    sign_up_with(&mallory, &app.address, &mallory_email).await;

    let listed: Value = mallory
        .get(app.url("/auth/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!listed.to_string().contains(&own_session.to_string()));
    let attempt = mallory
        .delete(app.url(&format!("/auth/sessions/{own_session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(attempt).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let by_server_fn = server_fn_with(
        &mallory,
        &app.address,
        "revoke_session",
        &[("session_id", &own_session.to_string())],
    )
    .await;
    assert_eq!(
        error_code(by_server_fn).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    for garbage in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let response = mallory
            .delete(app.url(&format!("/auth/sessions/{garbage}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::NOT_FOUND, "not_found".into())
        );
    }
    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "the victim is still signed in"
    );
    let anonymous = app
        .bare_client()
        .get(app.url("/auth/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(anonymous).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
}

async fn revoking_this_device_from_the_list_signs_it_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let (_, session) = app.ids().await;
    let response = app
        .client
        .delete(app.url(&format!("/auth/sessions/{session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(expires_cookie(&response, app.access_cookie_name()));
    assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
}

async fn revoking_this_device_through_the_server_function_clears_the_browser_like_logout(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let (_, session) = app.ids().await;
    let response = app
        .server_fn("revoke_session", &[("session_id", &session.to_string())])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(expires_cookie(&response, app.access_cookie_name()));
    assert!(expires_cookie(&response, app.refresh_cookie_name()));
    assert_eq!(
        response
            .headers()
            .get("clear-site-data")
            .map(|v| v.to_str().unwrap().to_string()),
        app.api_post("/auth/logout", json!({}))
            .await
            .headers()
            .get("clear-site-data")
            .map(|v| v.to_str().unwrap().to_string()),
        "the same Clear-Site-Data as a logout"
    );
    assert!(response.headers().contains_key("clear-site-data"));
    assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
}

async fn the_audit_trail_records_each_kind_of_event_without_passwords(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REFRESH_GRACE", "0s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.login(&email, "wrong password guess").await;
    app.login(&unique_email(), "unknown user guess").await;
    let (_, refresh) = app.bearer_login(&email, PASSWORD).await;
    let (_, _) = tokens_of(app.bearer_refresh(&refresh).await).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.bearer_refresh(&refresh).await; // reuse
    app.change_password(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    let (_, session) = app.ids().await;
    let phone = second_device_with(&app, &email, NEW_PASSWORD).await;
    let (_, phone_session) = ids_of(phone.get(app.url("/auth/me")).send().await.unwrap()).await;
    app.server_fn(
        "revoke_session",
        &[("session_id", &phone_session.to_string())],
    )
    .await;
    app.server_fn("logout", &[("scope", "others")]).await;

    let kinds = [
        "registered",
        "login_succeeded",
        "login_failed",
        "refresh_token_reuse_detected",
        "password_changed",
        "session_revoked",
        "logout",
    ];
    for kind in kinds {
        let events = app.store().events_of_kind(kind).await.unwrap();
        assert!(!events.is_empty(), "{kind} recorded");
        for event in &events {
            assert_eq!(event.ip.as_deref(), Some("127.0.0.1"), "{kind}");
            let detail = event.detail.clone().unwrap_or_default();
            assert!(
                !detail.contains("guess") && !detail.contains(PASSWORD),
                "{kind}: {detail}"
            );
        }
    }
    let failures = app.store().events_of_kind("login_failed").await.unwrap();
    let details: Vec<_> = failures.iter().filter_map(|e| e.detail.clone()).collect();
    assert!(
        details.iter().any(|d| d.starts_with("unknown_email")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("wrong_password")),
        "{details:?}"
    );
    assert_eq!(
        app.store()
            .events_of_kind("logout")
            .await
            .unwrap()
            .last()
            .unwrap()
            .detail
            .as_deref(),
        Some("others")
    );
    assert!(
        app.store()
            .events_of_kind("password_changed")
            .await
            .unwrap()
            .iter()
            .any(|e| e.session_id == Some(session))
    );

    // The account page shows the user's own activity.
    let activity: Value = app.server_fn("activity", &[]).await.json().await.unwrap();
    let lines: Vec<_> = activity
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["description"].as_str().unwrap().to_string())
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with("Password changed")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Failed sign-in")),
        "{lines:?}"
    );
}

async fn the_sweep_deletes_events_past_retention(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_AUDIT_RETENTION", "1ms")
        .spawn()
        .await;
    app.signed_up_user().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = sweeper::sweep_once(
        app.store(),
        &app.state.settings.maintenance,
        &app.state.settings.throttle,
    )
    .await
    .unwrap();
    assert!(report.events >= 1, "{report:?}");
    assert!(
        app.store()
            .events_of_kind("registered")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "live sessions are kept"
    );
}

backend_tests!(
    signing_out_other_devices_keeps_this_one,
    signing_out_everywhere_ends_every_session_at_once,
    scoped_logout_of_others_needs_a_live_session,
    a_swept_session_refuses_even_a_fresh_looking_access_token,
    the_device_list_shows_each_session_and_marks_this_one,
    revoking_another_device_ends_it_at_once,
    revoking_needs_the_password_once_the_sign_in_is_no_longer_recent,
    nobody_can_see_or_revoke_someone_elses_sessions,
    revoking_this_device_from_the_list_signs_it_out,
    revoking_this_device_through_the_server_function_clears_the_browser_like_logout,
    the_audit_trail_records_each_kind_of_event_without_passwords,
    the_sweep_deletes_events_past_retention,
);
