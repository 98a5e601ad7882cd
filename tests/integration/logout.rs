//! Logout, through the server function (browsers) and the JSON API (the seed
//! contract), including the failure paths.

use crate::helpers::*;
use portcullis::server::time::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn logout_clears_both_cookies_and_revokes_the_session_in_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let (_, session) = app.ids().await;

    let response = app.logout().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(expires_cookie(&response, app.access_cookie_name()));
    assert!(expires_cookie(&response, app.refresh_cookie_name()));
    assert_eq!(
        response.headers()["clear-site-data"],
        "\"cache\", \"storage\""
    );
    let (revoked_at, reason) = app
        .store()
        .session_revocation(session)
        .await
        .unwrap()
        .unwrap();
    assert!(revoked_at.is_some());
    assert_eq!(reason.as_deref(), Some("logout"));
    assert!(app.cookie(app.access_cookie_name()).is_none());
    assert_eq!(app.current_user().await, Value::String("SignedOut".into()));
}

async fn the_old_access_and_refresh_tokens_replayed_after_logout_get_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let access = app.cookie(app.access_cookie_name()).unwrap();
    let refresh = app.cookie(app.refresh_cookie_name()).unwrap();
    app.logout().await;

    let replay_access = app
        .bare_client()
        .get(app.url("/auth/me"))
        .header("cookie", format!("{}={access}", app.access_cookie_name()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(replay_access).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );

    let replay_refresh = app
        .bare_client()
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("{}={refresh}", app.refresh_cookie_name()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(replay_refresh).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );

    // And the page-level renewal path refuses the refresh token too.
    let page = app
        .bare_client()
        .get(app.url("/account"))
        .header("cookie", format!("{}={refresh}", app.refresh_cookie_name()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FOUND);
    assert_eq!(
        page.headers()["location"],
        "/login?next=/account&notice=session_ended"
    );
}

async fn logout_is_idempotent_without_cookies_and_with_garbage_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie_sets = [
        String::new(),
        format!(
            "{}=garbage; {}=also-garbage",
            app.access_cookie_name(),
            app.refresh_cookie_name()
        ),
        format!("{}=eyJhbGciOiJub25lIn0.e30.", app.access_cookie_name()),
        format!("{}={}", app.refresh_cookie_name(), "A".repeat(43)),
    ];
    for cookies in cookie_sets {
        for path in ["/api/logout", "/auth/logout"] {
            let mut request = app
                .bare_client()
                .post(app.url(path))
                .header("accept", "application/json");
            if !cookies.is_empty() {
                request = request.header("cookie", &cookies);
            }
            if path == "/auth/logout" {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path} with {cookies:?}");
            assert!(
                expires_cookie(&response, app.access_cookie_name()),
                "{path} with {cookies:?}"
            );
            assert!(
                expires_cookie(&response, app.refresh_cookie_name()),
                "{path} with {cookies:?}"
            );
        }
    }
}

async fn logout_without_javascript_answers_303_to_the_login_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let response = app
        .client
        .post(app.url("/api/logout"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("origin", &app.address)
        .header("referer", app.url("/"))
        .form(&[("scope", "local")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/login?notice=signed_out");
    assert!(expires_cookie(&response, app.access_cookie_name()));
    let login = app
        .client
        .get(app.url("/login?notice=signed_out"))
        .send()
        .await
        .unwrap();
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("You have been signed out.")
    );
}

async fn logout_is_post_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let api = app
        .client
        .get(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(api).await,
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );
    let server_fn = app.client.get(app.url("/api/logout")).send().await.unwrap();
    assert_eq!(server_fn.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.me().await.status(), StatusCode::OK, "still signed in");
}

async fn the_seed_contract_logout_with_a_valid_refresh_cookie(backend: Backend) {
    // POST /auth/logout, Content-Type: application/json, body {}, and only
    // the refresh-token cookie, as in the documented cURL example.
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let (_, session) = app.ids().await;
    let refresh = app.cookie(app.refresh_cookie_name()).unwrap();
    let response = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .header("content-type", "application/json")
        .header("cookie", format!("{}={refresh}", app.refresh_cookie_name()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(expires_cookie(&response, app.access_cookie_name()));
    assert!(expires_cookie(&response, app.refresh_cookie_name()));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "message": "Logged out successfully" }));
    assert!(
        app.store()
            .session_revocation(session)
            .await
            .unwrap()
            .unwrap()
            .0
            .is_some()
    );
    assert_eq!(
        app.me().await.status(),
        StatusCode::UNAUTHORIZED,
        "its access token died with it"
    );
}

async fn delete_logout_with_scope_works_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let response = app
        .client
        .delete(app.url("/auth/logout?scope=local"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
    let bad = app
        .client
        .post(app.url("/auth/logout?scope=sideways"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(bad).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".into())
    );
}

async fn a_failing_database_still_clears_the_cookies_and_answers_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    app.store().close().await;
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(expires_cookie(&response, app.access_cookie_name()));
    assert!(expires_cookie(&response, app.refresh_cookie_name()));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "Error logging out");
    assert_eq!(body["code"], "logout_failed");
}

async fn the_server_function_logout_also_reports_a_failing_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let refresh = app.cookie(app.refresh_cookie_name()).unwrap();
    app.store().close().await;
    let response = app
        .bare_client()
        .post(app.url("/api/logout"))
        .header("cookie", format!("{}={refresh}", app.refresh_cookie_name()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(expires_cookie(&response, app.refresh_cookie_name()));
    assert_eq!(error_code(response).await.1, "logout_failed");
}

async fn other_requests_get_a_clear_503_when_the_database_is_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    app.store().close().await;
    let me = app.me().await;
    assert_eq!(
        error_code(me).await,
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
    );
    let (other, _) = app.new_browser();
    let login = server_fn_with(
        &other,
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        error_code(login).await,
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The cookies were not thrown away because of an outage.
    assert!(app.cookie(app.refresh_cookie_name()).is_some());
}

async fn stale_proof_ends_only_its_own_session_never_the_other_devices(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (phone_access, _) = app.bearer_login(&email, PASSWORD).await;
    let (laptop_access, laptop_refresh) = app.bearer_login(&email, PASSWORD).await;
    let (user, laptop) = ids_of(app.bearer_me(&laptop_access).await).await;
    // The laptop's access token, naturally expired an hour ago.
    let expired = app.mint_access_token(
        user,
        laptop,
        Timestamp::now().minus(Duration::from_secs(3 * 3600)),
    );
    assert_eq!(
        app.bearer_me(&expired).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for scope in ["others", "global"] {
        let response = app
            .bare_client()
            .post(app.url(&format!("/auth/logout?scope={scope}")))
            .bearer_auth(&expired)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::UNAUTHORIZED, "unauthenticated".into()),
            "{scope} with an expired token"
        );
    }
    // A retired refresh token (rotated once) is stale proof too.
    let (_, _) = tokens_of(app.bearer_refresh(&laptop_refresh).await).await;
    let response = app
        .bare_client()
        .post(app.url("/auth/logout?scope=global"))
        .header(
            "cookie",
            format!("{}={laptop_refresh}", app.refresh_cookie_name()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into()),
        "global with a retired refresh token"
    );
    assert_eq!(
        app.bearer_me(&phone_access).await.status(),
        StatusCode::OK,
        "the phone was never signed out"
    );
    assert_eq!(app.me().await.status(), StatusCode::OK, "nor the browser");
    // This session's own logout still accepts the expired token.
    let response = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        app.store()
            .session_revocation(laptop)
            .await
            .unwrap()
            .and_then(|(at, _)| at)
            .is_some(),
        "the laptop's session is ended"
    );
    assert_eq!(app.bearer_me(&phone_access).await.status(), StatusCode::OK);
}

async fn an_expired_access_cookie_with_a_live_refresh_cookie_still_signs_out_everywhere(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (phone_access, _) = app.bearer_login(&email, PASSWORD).await;
    let (user, session) = app.ids().await;
    let expired = app.mint_access_token(
        user,
        session,
        Timestamp::now().minus(Duration::from_secs(3 * 3600)),
    );
    let refresh = app
        .cookie(app.refresh_cookie_name())
        .expect("a refresh cookie");
    let response = app
        .bare_client()
        .post(app.url("/api/logout"))
        .header("accept", "application/json")
        .header(
            "cookie",
            format!(
                "{}={expired}; {}={refresh}",
                app.access_cookie_name(),
                app.refresh_cookie_name()
            ),
        )
        .form(&[("scope", "global")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the live refresh cookie is the proof"
    );
    assert_eq!(
        app.bearer_me(&phone_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Many logouts at once, some of the same session twice, as a burst of
/// devices signing out: every one answers 200, each session ends exactly
/// once with one audit row and one `session.revoked` event, and nothing
/// else is touched. On SQLite the concurrent ones are committed together
/// (see `db::group_commit`); the outcome must be the same as one by one.
async fn a_burst_of_concurrent_logouts_ends_each_session_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let mut tokens = Vec::new();
    for _ in 0..24 {
        tokens.push(app.bearer_login(&email, PASSWORD).await.0);
    }
    let before = app
        .count("SELECT COUNT(*) FROM auth_events WHERE kind = 'logout'")
        .await;
    let burst = tokens.iter().chain(&tokens[..8]).map(|token| {
        let request = app
            .bare_client()
            .post(app.url("/auth/logout"))
            .bearer_auth(token)
            .send();
        async move { request.await.expect("request").status() }
    });
    let statuses = crate::renewal_and_rotation::join_all(burst).await;
    assert_eq!(statuses.len(), 32);
    assert!(
        statuses.iter().all(|status| *status == StatusCode::OK),
        "{statuses:?}"
    );
    for token in &tokens {
        assert_eq!(
            error_code(app.bearer_me(token).await).await,
            (StatusCode::UNAUTHORIZED, "session_ended".into())
        );
    }
    let logouts = app
        .count("SELECT COUNT(*) FROM auth_events WHERE kind = 'logout'")
        .await;
    assert_eq!(logouts - before, 24, "one audit row per session ended");
    let revoked = app
        .count("SELECT COUNT(*) FROM session_events WHERE kind = 'revoked' AND reason = 'logout'")
        .await;
    let distinct = app
        .count(
            "SELECT COUNT(DISTINCT session_id) FROM session_events \
             WHERE kind = 'revoked' AND reason = 'logout'",
        )
        .await;
    assert_eq!((revoked, distinct), (24, 24), "one event per session ended");
    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "the browser's own session was not in the burst"
    );
}

backend_tests!(
    a_burst_of_concurrent_logouts_ends_each_session_exactly_once,
    stale_proof_ends_only_its_own_session_never_the_other_devices,
    an_expired_access_cookie_with_a_live_refresh_cookie_still_signs_out_everywhere,
    logout_clears_both_cookies_and_revokes_the_session_in_the_database,
    the_old_access_and_refresh_tokens_replayed_after_logout_get_401,
    logout_is_idempotent_without_cookies_and_with_garbage_ones,
    logout_without_javascript_answers_303_to_the_login_page,
    logout_is_post_only,
    the_seed_contract_logout_with_a_valid_refresh_cookie,
    delete_logout_with_scope_works_too,
    a_failing_database_still_clears_the_cookies_and_answers_500,
    the_server_function_logout_also_reports_a_failing_database,
    other_requests_get_a_clear_503_when_the_database_is_gone,
);
