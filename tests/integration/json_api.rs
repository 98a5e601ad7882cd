//! The `/auth` JSON API: bearer clients, the error contract, and the
//! browser-safe defaults.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn register_answers_202_alike_for_a_free_and_a_taken_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email();
    let body = json!({ "email": email, "password": PASSWORD });
    let created = app.api_post("/auth/register", body.clone()).await;
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    assert!(
        set_cookies(&created).is_empty(),
        "registering signs no one in"
    );
    let created: Value = created.json().await.unwrap();
    let (other, _) = app.new_browser();
    let again = other
        .post(app.url("/auth/register"))
        .json(&json!({ "email": email.to_uppercase(), "password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert!(set_cookies(&again).is_empty());
    let again: Value = again.json().await.unwrap();
    assert_eq!(created, again, "the same answer: nothing tells them apart");
    assert!(created.get("tokens").is_none() && created.get("user").is_none());
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    // The account keeps its first password; the second one opens nothing.
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
    let refused = app
        .api_post(
            "/auth/login",
            json!({ "email": email, "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

async fn a_bearer_client_logs_in_uses_refreshes_and_logs_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let login = app
        .bare_client()
        .post(app.url("/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD, "token_delivery": "body" }))
        .send()
        .await
        .unwrap();
    assert!(
        set_cookies(&login).is_empty(),
        "body delivery sets no cookie"
    );
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["tokens"]["token_type"], "Bearer");
    assert!(body["tokens"]["expires_in"].as_u64().unwrap() > 800);
    let access = body["tokens"]["access_token"].as_str().unwrap().to_string();
    let refresh = body["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    let me = app.bearer_me(&access).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["email"], email.as_str());

    let (access, refresh) = tokens_of(app.bearer_refresh(&refresh).await).await;
    let logout = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(
        logout.json::<Value>().await.unwrap(),
        json!({ "message": "Logged out successfully" })
    );

    // The deny-list behaviour: the unexpired token is refused at once.
    assert_eq!(
        error_code(app.bearer_me(&access).await).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    assert_eq!(
        app.bearer_refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "the browser session is separate"
    );
}

async fn an_unreadable_explicit_token_is_400_on_logout_and_401_elsewhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let mut resigned = access.clone();
    resigned.pop();
    resigned.push(if access.ends_with('A') { 'B' } else { 'A' });
    for token in [
        "garbage",
        "a.b.c",
        resigned.as_str(),
        &access[..access.len() / 2],
    ] {
        let logout = app
            .bare_client()
            .post(app.url("/auth/logout"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::BAD_REQUEST, "{token:.30}");
        let body: Value = logout.json().await.unwrap();
        assert_eq!(body["error"], "Invalid token");
        let me = app.bearer_me(token).await;
        assert_eq!(
            error_code(me).await,
            (StatusCode::UNAUTHORIZED, "invalid_token".into()),
            "{token:.30}"
        );
    }
    let not_bearer = app
        .bare_client()
        .get(app.url("/auth/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    // Another scheme is a proxy's business, not ours: it is ignored, and
    // without cookies this request is simply not signed in.
    assert_eq!(
        error_code(not_bearer).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    assert_eq!(
        app.bearer_me(&access).await.status(),
        StatusCode::OK,
        "the real token still works"
    );
}

async fn an_expired_but_genuine_access_token_still_logs_its_session_out(backend: Backend) {
    use portcullis::server::time::Timestamp;
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (access, refresh) = app.bearer_login(&email, PASSWORD).await;
    let (user, session) = ids_of(app.bearer_me(&access).await).await;
    let expired = app.mint_access_token(
        user,
        session,
        Timestamp::now().minus(std::time::Duration::from_secs(3600)),
    );
    let logout = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(
        app.bearer_refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "its session is over"
    );
    assert_eq!(
        app.bearer_me(&access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn another_users_refresh_token_only_ever_acts_as_that_user(backend: Backend) {
    use portcullis::server::time::Timestamp;
    let app = TestApp::spawn(backend).await;
    let victim = app.signed_up_user().await;
    let (victim_user, victim_session) = app.ids().await;
    let (other, other_jar) = app.new_browser();
    let other_email = unique_email();
    server_fn_with(
        &other,
        &app.address,
        "register",
        &[
            ("email", &other_email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    server_fn_with(
        &other,
        &app.address,
        "login",
        &[("email", &other_email), ("password", PASSWORD)],
    )
    .await;
    let other_refresh = cookie_in(&other_jar, &app.address, app.refresh_cookie_name()).unwrap();
    // The victim's expired access token next to someone else's refresh token.
    let expired = app.mint_access_token(
        victim_user,
        victim_session,
        Timestamp::now().minus(std::time::Duration::from_secs(3600)),
    );
    let response = app.cookie_me(&expired, &other_refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_ne!(me["email"], victim.as_str(), "never the victim");
    assert_ne!(me["id"], victim_user.to_string().as_str());
    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "the victim's session is untouched"
    );
}

async fn password_change_gives_bearer_clients_new_tokens_in_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let response = app
        .bare_client()
        .put(app.url("/auth/password"))
        .bearer_auth(&access)
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let new_access = body["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(app.bearer_me(new_access).await.status(), StatusCode::OK);
    assert_eq!(
        app.me().await.status(),
        StatusCode::UNAUTHORIZED,
        "the browser session was another device"
    );
}

async fn malformed_requests_get_specific_json_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.bare_client();
    let post = |body: String, content_type: &'static str| {
        client
            .post(app.url("/auth/login"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, code) = error_code(
        post("{\"email\":".into(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );

    let missing = post(
        json!({ "email": "a@example.com" }).to_string(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "invalid_input");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing field `password`"),
        "{body}"
    );

    let wrong_type = post(
        json!({ "email": 5, "password": "x" }).to_string(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(
        error_code(wrong_type).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".into())
    );

    let form = post(
        "email=a&password=b".into(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(
        error_code(form).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into()
        )
    );

    let huge = post(
        format!("{{\"email\":\"{}\"}}", "a".repeat(17 * 1024)),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(
        error_code(huge).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );

    let unknown = client
        .get(app.url("/auth/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(unknown).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );

    let method = client.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(method.headers()["content-type"], "application/json");
    assert_eq!(
        error_code(method).await,
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );
}

async fn login_errors_on_the_api_match_the_server_functions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let wrong = app
        .bare_client()
        .post(app.url("/auth/login"))
        .json(&json!({ "email": email, "password": "nope nope nope" }))
        .send()
        .await
        .unwrap();
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "Incorrect email or password.", "code": "invalid_credentials" })
    );
}

backend_tests!(
    register_answers_202_alike_for_a_free_and_a_taken_address,
    a_bearer_client_logs_in_uses_refreshes_and_logs_out,
    an_unreadable_explicit_token_is_400_on_logout_and_401_elsewhere,
    an_expired_but_genuine_access_token_still_logs_its_session_out,
    another_users_refresh_token_only_ever_acts_as_that_user,
    password_change_gives_bearer_clients_new_tokens_in_the_body,
    malformed_requests_get_specific_json_errors,
    login_errors_on_the_api_match_the_server_functions,
);
