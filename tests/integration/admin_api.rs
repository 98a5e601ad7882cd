//! `/admin/v1`: only a live admin API key opens it (created with the
//! command line, as an operator would); its actions take effect on the next
//! request; failures are uniform and throttled.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, PASSWORD, TestApp, backend_tests, error_code, plain_client},
    process::admin,
};

/// Creates a key with the command line: the last line of its output.
async fn create_key(app: &TestApp, name: &str) -> String {
    let run = admin(&app.env, &[], &["api-key", "create", name]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let key = run.stdout.trim().lines().last().unwrap().to_string();
    assert!(key.starts_with("pck_"), "{}", run.stdout);
    key
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = plain_client().request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("an answer")
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn only_a_live_admin_key_opens_the_api_and_never_a_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let key = create_key(&app, "support-tool").await;

    let refusal = json_of(call(&app, Method::GET, "/admin/v1/users", None, None).await).await;
    assert_eq!(refusal.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refusal.1["code"], "unauthenticated");
    // A forged key of the right shape, garbage, the user's own access token,
    // and the user's cookies: all the same answer.
    let forged = {
        let (id_and_prefix, secret) = key.rsplit_once('_').unwrap();
        let flipped = if secret.starts_with('A') { "B" } else { "A" };
        format!("{id_and_prefix}_{flipped}{}", &secret[1..])
    };
    for wrong in [forged.as_str(), "pck_garbage", access.as_str()] {
        let answer =
            json_of(call(&app, Method::GET, "/admin/v1/users", Some(wrong), None).await).await;
        assert_eq!(answer, refusal, "{wrong:.12}");
    }
    let with_cookies = app
        .client
        .get(app.url("/admin/v1/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(with_cookies).await, refusal, "cookies open nothing");

    let (status, page) =
        json_of(call(&app, Method::GET, "/admin/v1/users", Some(&key), None).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["users"][0]["email"], email.as_str());
    assert!(page["next_cursor"].is_null());

    let listed = admin(&app.env, &[], &["api-key", "list", "--json"]).await;
    assert_eq!(listed.code, Some(0));
    assert!(!listed.stdout.contains(&key), "never the key itself");
    let listed = listed.json();
    assert_eq!(listed[0]["name"], "support-tool");
    assert!(listed[0]["last_used_at"].is_string());
    assert!(listed[0]["revoked_at"].is_null());

    let again = admin(&app.env, &[], &["api-key", "create", "support-tool"]).await;
    assert_eq!(again.code, Some(1), "one live key per name");
    assert!(again.stderr.contains("already called"), "{}", again.stderr);
    let bad = admin(&app.env, &[], &["api-key", "create", "not a name!"]).await;
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("invalid name"), "{}", bad.stderr);
    let revoked = admin(&app.env, &[], &["api-key", "revoke", "support-tool"]).await;
    assert_eq!(revoked.code, Some(0), "{}", revoked.stderr);
    let answer = json_of(call(&app, Method::GET, "/admin/v1/users", Some(&key), None).await).await;
    assert_eq!(
        answer, refusal,
        "a revoked key is refused from its next use"
    );
    let unknown = admin(&app.env, &[], &["api-key", "revoke", "support-tool"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no live API key"),
        "{}",
        unknown.stderr
    );
}

async fn every_admin_action_takes_effect_on_the_next_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = create_key(&app, "ops").await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let search = format!(
        "/admin/v1/users?search={}",
        email.split('@').next().unwrap()
    );
    let (_, page) = json_of(call(&app, Method::GET, &search, Some(&key), None).await).await;
    let id = page["users"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(page["users"][0]["live_sessions"], 2);

    let (status, detail) = json_of(
        call(
            &app,
            Method::GET,
            &format!("/admin/v1/users/{id}"),
            Some(&key),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["email"], email.as_str());
    assert_eq!(detail["sessions"].as_array().unwrap().len(), 2);

    // One session.
    let (_, sid) = app.ids().await;
    let (status, _) = json_of(
        call(
            &app,
            Method::DELETE,
            &format!("/admin/v1/sessions/{sid}"),
            Some(&key),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
    let (status, _) = json_of(
        call(
            &app,
            Method::DELETE,
            &format!("/admin/v1/sessions/{sid}"),
            Some(&key),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already ended");

    // Everywhere.
    let (status, done) = json_of(
        call(
            &app,
            Method::POST,
            &format!("/admin/v1/users/{id}/sign-out"),
            Some(&key),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, done["sessions_ended"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(
        app.bearer_me(&access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Disabled, then enabled.
    let (status, done) = json_of(
        call(
            &app,
            Method::POST,
            &format!("/admin/v1/users/{id}/disable"),
            Some(&key),
            Some(json!({ "reason": "abuse report 17" })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, done["changed"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(
        error_code(
            plain_client()
                .post(app.url("/auth/login"))
                .json(&json!({ "email": email, "password": PASSWORD }))
                .send()
                .await
                .unwrap()
        )
        .await,
        (StatusCode::FORBIDDEN, "account_disabled".into())
    );
    let (status, done) = json_of(
        call(
            &app,
            Method::POST,
            &format!("/admin/v1/users/{id}/enable"),
            Some(&key),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, done["changed"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (fresh, _) = app.bearer_login(&email, PASSWORD).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE detail LIKE '%by api key ops%'")
            .await,
        4,
        "every action names the key: the session, the sign-out, the disable, the enable"
    );

    // Erased.
    let (status, _) = json_of(
        call(
            &app,
            Method::DELETE,
            &format!("/admin/v1/users/{id}"),
            Some(&key),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.bearer_me(&fresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for path in [
        format!("/admin/v1/users/{id}"),
        "/admin/v1/users/not-a-uuid".to_string(),
    ] {
        let (status, body) = json_of(call(&app, Method::GET, &path, Some(&key), None).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
}

async fn users_come_a_page_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = create_key(&app, "pager").await;
    let marker = format!("pager{}", uuid::Uuid::new_v4().simple());
    let mut emails = Vec::new();
    for i in 0..5 {
        let email = format!("{marker}-{i}@example.com");
        let registered = app
            .api_post(
                "/auth/register",
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::ACCEPTED);
        emails.push(email);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/users?search={marker}&limit=2&cursor={c}"),
            None => format!("/admin/v1/users?search={marker}&limit=2"),
        };
        let (status, page) = json_of(call(&app, Method::GET, &path, Some(&key), None).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for user in page["users"].as_array().unwrap() {
            seen.push(user["email"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, emails, "every user once, none twice");
    for bad in ["limit=0", "limit=1001", "cursor=nope", "limit=ten"] {
        let (status, body) = json_of(
            call(
                &app,
                Method::GET,
                &format!("/admin/v1/users?{bad}"),
                Some(&key),
                None,
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
            "{bad}"
        );
    }
}

async fn wrong_keys_are_throttled_per_network(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "3")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "30s")
        .spawn()
        .await;
    let key = create_key(&app, "victim").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            call(
                &app,
                Method::GET,
                "/admin/v1/users",
                Some("pck_0123456789abcdef_AAAA"),
                None,
            )
            .await
            .status(),
        );
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    let locked = call(&app, Method::GET, "/admin/v1/users", Some(&key), None).await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "guessing is not rewarded"
    );
    assert!(locked.headers().contains_key("retry-after"));
}

backend_tests!(
    only_a_live_admin_key_opens_the_api_and_never_a_cookie,
    every_admin_action_takes_effect_on_the_next_request,
    users_come_a_page_at_a_time,
    wrong_keys_are_throttled_per_network,
);
