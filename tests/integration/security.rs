//! Security behaviour: cross-site request refusal, response headers, token
//! hardening and login throttling.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn cross_site_state_changes_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let attacks = [
        (
            "POST",
            "/auth/logout",
            vec![("origin", "https://evil.example")],
        ),
        (
            "POST",
            "/api/logout",
            vec![("origin", "https://evil.example")],
        ),
        (
            "POST",
            "/api/logout",
            vec![("sec-fetch-site", "cross-site")],
        ),
        ("POST", "/api/change_password", vec![("origin", "null")]),
        (
            "DELETE",
            "/auth/logout",
            vec![("origin", "http://127.0.0.1.evil.example")],
        ),
    ];
    for (method, path, headers) in attacks {
        let mut request = app.client.request(method.parse().unwrap(), app.url(path));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::FORBIDDEN, "cross_site_request".into()),
            "{method} {path} {headers:?}"
        );
    }
    assert_eq!(app.me().await.status(), StatusCode::OK, "still signed in");
}

async fn same_origin_requests_and_bearer_clients_pass_the_csrf_check(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let same_origin = app.client.get(app.url("/auth/me")).send().await.unwrap();
    assert_eq!(same_origin.status(), StatusCode::OK);
    let localhost = format!(
        "http://localhost:{}",
        app.address.rsplit(':').next().unwrap()
    );
    let response = app.server_fn("current_user", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let with_origin = app
        .client
        .post(app.url("/api/current_user"))
        .header("origin", &localhost)
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_origin.status(),
        StatusCode::OK,
        "localhost is the same machine in development"
    );
    let fetch_same_site = app
        .client
        .post(app.url("/api/current_user"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(fetch_same_site.status(), StatusCode::OK);
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let bearer = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&access)
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::OK,
        "bearer-only requests are exempt"
    );
}

async fn the_allowed_origin_comes_from_configuration(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_PUBLIC_URL", "http://auth.example.test")
        .spawn()
        .await;
    let ok = app
        .bare_client()
        .post(app.url("/auth/register"))
        .header("origin", "http://auth.example.test")
        .json(&json!({ "email": unique_email(), "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    let local = app
        .bare_client()
        .post(app.url("/auth/register"))
        .header("origin", &app.address)
        .json(&json!({ "email": unique_email(), "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), StatusCode::FORBIDDEN);
}

async fn responses_carry_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    for path in ["/", "/login", "/auth/me", "/auth/nothing", "/healthz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(
            !headers.contains_key("strict-transport-security"),
            "no HSTS over plain HTTP"
        );
    }
    let page = app.client.get(app.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(
        scripts > 0 && html.matches(&format!("nonce=\"{nonce}\"")).count() >= scripts,
        "every script carries the nonce"
    );
    let login_page = app.client.get(app.url("/login")).send().await.unwrap();
    let other_nonce = login_page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!other_nonce.contains(&nonce), "a fresh nonce per response");
    assert_eq!(app.me().await.headers()["cache-control"], "no-store");
}

async fn secure_mode_uses_host_prefixed_secure_cookies_and_hsts(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_PUBLIC_URL", "https://auth.example.test")
        .spawn()
        .await;
    let email = unique_email();
    let registered = app
        .bare_client()
        .post(app.url("/auth/register"))
        .header("origin", "https://auth.example.test")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let response = app
        .bare_client()
        .post(app.url("/auth/login"))
        .header("origin", "https://auth.example.test")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let cookies = set_cookies(&response);
    // Access, refresh and device cookies, all with the prefix.
    assert_eq!(cookies.len(), 3);
    for cookie in cookies {
        assert!(cookie.starts_with("__Host-portcullis_"), "{cookie}");
        assert!(
            cookie.contains("; Secure")
                && cookie.contains("HttpOnly")
                && cookie.contains("Path=/")
                && !cookie.contains("Domain"),
            "{cookie}"
        );
    }
}

async fn oversized_cookies_and_headers_get_431_not_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big_cookie = format!("{}={}", app.access_cookie_name(), "a".repeat(64 * 1024));
    for path in ["/auth/me", "/", "/api/logout"] {
        let response = app
            .bare_client()
            .post(app.url(path))
            .header("cookie", &big_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large".into()
            ),
            "{path}"
        );
    }
    let many: Vec<String> = (0..200).map(|i| format!("c{i}=v{i}")).collect();
    let response = app
        .bare_client()
        .get(app.url("/auth/me"))
        .header("cookie", many.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    let mut request = app.bare_client().get(app.url("/auth/me"));
    for i in 0..40 {
        request = request.header(format!("x-filler-{i}"), "f".repeat(1024));
    }
    assert_eq!(
        request.send().await.unwrap().status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

async fn failed_logins_back_off_exponentially_per_account(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "3")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "1s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    for _ in 0..3 {
        assert_eq!(
            app.login(&email, "wrong wrong wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = app.login(&email, PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "1");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["code"], "throttled");
    assert_eq!(body["error"], "Too many attempts. Try again in 1 second.");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // One more failure doubles the wait.
    assert_eq!(
        app.login(&email, "wrong wrong wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let longer = app.login(&email, PASSWORD).await;
    assert_eq!(longer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(longer.headers()["retry-after"], "2");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::OK,
        "the right password works after the wait"
    );
    // Success clears the account's counter.
    app.logout().await;
    assert_eq!(
        app.login(&email, "wrong wrong wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

async fn throttling_does_not_reveal_whether_an_account_exists(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "2")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    let ghost = unique_email();
    let mut answers = Vec::new();
    for account in [&email, &ghost] {
        for _ in 0..2 {
            app.login(account, "wrong wrong wrong").await;
        }
        let response = app.login(account, "wrong wrong wrong").await;
        let status = response.status();
        let retry = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.unwrap();
        answers.push((status, retry, body));
    }
    assert_eq!(answers[0].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answers[0], answers[1]);
}

async fn failed_logins_are_throttled_per_client_ip_across_accounts(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "100")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "4")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    for _ in 0..4 {
        assert_eq!(
            app.login(&unique_email(), "spraying passwords")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "this IP is cooling down"
    );
}

async fn a_stolen_session_cannot_brute_force_the_current_password(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "3")
        .spawn()
        .await;
    app.signed_up_user().await;
    for _ in 0..3 {
        let response = app
            .change_password("guess guess guess", NEW_PASSWORD, NEW_PASSWORD)
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let response = app
        .change_password(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Credentials a browser replays by itself, cross-site too: a staging site's
/// basic-auth proxy, intranet single sign-on.
const AMBIENT_CREDENTIALS: [&str; 3] = [
    "Basic c3RhZ2luZzpzZWNyZXQ=",
    "Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAuBgkqhkiC9xIBAgI=",
    "Digest username=\"staging\", realm=\"staging\", nonce=\"x\", uri=\"/\", response=\"y\"",
];

async fn ambient_proxy_credentials_do_not_exempt_a_cross_site_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    // The attacker's own account, for login CSRF.
    let (attacker, _) = app.new_browser();
    let attacker_email = unique_email();
    server_fn_with(
        &attacker,
        &app.address,
        "register",
        &[
            ("email", &attacker_email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    for credentials in AMBIENT_CREDENTIALS {
        // A cross-site form signing the victim's browser into the attacker's account.
        let login = app
            .client
            .post(app.url("/api/login"))
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .header("accept", "text/html")
            .header("authorization", credentials)
            .form(&[("email", attacker_email.as_str()), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(
            set_cookies(&login).is_empty(),
            "{credentials}: no session cookie"
        );
        assert_eq!(
            error_code(login).await,
            (StatusCode::FORBIDDEN, "cross_site_request".into()),
            "{credentials}"
        );
        // Signing the victim out everywhere, and rotating their refresh token.
        for (path, form) in [
            ("/api/logout", vec![("scope", "global")]),
            ("/auth/refresh", vec![]),
        ] {
            let response = app
                .client
                .post(app.url(path))
                .header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site")
                .header("authorization", credentials)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(set_cookies(&response).is_empty(), "{credentials} {path}");
            assert_eq!(
                error_code(response).await,
                (StatusCode::FORBIDDEN, "cross_site_request".into()),
                "{credentials} {path}"
            );
        }
    }
    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "the victim is still signed in"
    );
    assert_eq!(
        app.current_user().await["SignedIn"]["email"]
            .as_str()
            .map(|e| e != attacker_email),
        Some(true)
    );
}

async fn behind_a_basic_auth_proxy_a_browser_signs_in_and_out_with_its_cookies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let proxy = AMBIENT_CREDENTIALS[0];
    let email = unique_email();
    let registered = app
        .client
        .post(app.url("/api/register"))
        .header("accept", "application/json")
        .header("authorization", proxy)
        .form(&[
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);
    let signed_in = app
        .client
        .post(app.url("/api/login"))
        .header("accept", "application/json")
        .header("authorization", proxy)
        .form(&[("email", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let me = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", proxy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the proxy's credentials do not hide the session cookies"
    );
    let logout = app
        .client
        .post(app.url("/api/logout"))
        .header("accept", "application/json")
        .header("authorization", proxy)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let me = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", proxy)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

async fn a_bearer_request_never_acts_on_cookies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let refresh_cookie = app
        .cookie(app.refresh_cookie_name())
        .expect("a refresh cookie");
    // A bearer request with the browser's refresh cookie and no body token:
    // the cookie is not used (nor cleared).
    let refresh = app
        .client
        .post(app.url("/auth/refresh"))
        .bearer_auth(&access)
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(set_cookies(&refresh).is_empty());
    assert_eq!(
        error_code(refresh).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    assert_eq!(
        app.cookie(app.refresh_cookie_name()),
        Some(refresh_cookie),
        "not rotated"
    );
    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "the cookie session is untouched"
    );
    // A malformed bearer is not a bearer request: the cross-site check applies.
    let malformed = app
        .client
        .post(app.url("/auth/logout"))
        .header("authorization", "Bearer not a token")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(malformed).await,
        (StatusCode::FORBIDDEN, "cross_site_request".into())
    );
    assert_eq!(app.me().await.status(), StatusCode::OK);
}

backend_tests!(
    cross_site_state_changes_are_refused_and_change_nothing,
    same_origin_requests_and_bearer_clients_pass_the_csrf_check,
    the_allowed_origin_comes_from_configuration,
    responses_carry_the_security_headers,
    secure_mode_uses_host_prefixed_secure_cookies_and_hsts,
    oversized_cookies_and_headers_get_431_not_500,
    failed_logins_back_off_exponentially_per_account,
    throttling_does_not_reveal_whether_an_account_exists,
    failed_logins_are_throttled_per_client_ip_across_accounts,
    a_stolen_session_cannot_brute_force_the_current_password,
    ambient_proxy_credentials_do_not_exempt_a_cross_site_request,
    behind_a_basic_auth_proxy_a_browser_signs_in_and_out_with_its_cookies,
    a_bearer_request_never_acts_on_cookies,
);

/// The SQLite database holds password hashes and session keys: the data
/// directory the server creates is 0700, the database and its `-wal` and
/// `-shm` files 0600, like the generated key file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let outer = tempfile::tempdir().expect("a temporary directory");
    let data = outer.path().join("fresh").join("data");
    let app = TestApp::builder(Backend::Sqlite)
        .with("PORTCULLIS_DATA_DIR", &data.display().to_string())
        .with(
            "DATABASE_URL",
            &format!("sqlite://{}/portcullis.db", data.display()),
        )
        .spawn()
        .await;
    app.signed_up_user().await;
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for file in [
        "portcullis.db",
        "portcullis.db-wal",
        "portcullis.db-shm",
        "jwt-signing.key",
        "data-sealing.key",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}
