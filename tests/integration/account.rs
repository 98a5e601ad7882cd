//! Registration, sign-in, the current user and password changes, through
//! the server functions the browser uses.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn registering_signs_no_one_in_and_the_new_account_then_signs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email();
    let response = app.register(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response).is_empty(), "no session yet");
    let to: Value = response.json().await.unwrap();
    assert_eq!(to, "/login?notice=check_email");
    assert_eq!(app.current_user().await, Value::String("SignedOut".into()));
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    let status = app.current_user().await;
    assert_eq!(status["SignedIn"]["email"], email.as_str());
    assert_eq!(status["SignedIn"]["email_verified"], false);
    assert!(app.cookie(app.access_cookie_name()).is_some());
    assert!(app.cookie(app.refresh_cookie_name()).is_some());
}

async fn signing_in_with_the_right_password_works_and_sets_http_only_lax_cookies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (other, _) = app.new_browser();
    let response = server_fn_with(
        &other,
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    // The two session cookies, and the device cookie of a password sign-in.
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    assert!(
        cookies.iter().any(|c| c.starts_with("portcullis_device=")),
        "{cookies:?}"
    );
    for cookie in &cookies {
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
                && cookie.contains("Path=/"),
            "{cookie}"
        );
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Done"]["email"], email.as_str());
    assert!(
        body.get("access_token").is_none() && !body.to_string().contains("eyJ"),
        "no token in a browser body"
    );
}

async fn email_matching_is_case_insensitive_and_ignores_surrounding_spaces(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let shouted = format!("  {}  ", email.to_uppercase());
    let response = app.login(&shouted, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let again = app.register(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(again.status(), StatusCode::OK, "answered like a new one");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    app.logout().await;
    let wrong = app.login(&email, "not the password at all").await;
    let wrong_status = wrong.status();
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown = app.login(&unique_email(), "not the password at all").await;
    let unknown_status = unknown.status();
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_status, unknown_status);
    assert_eq!(wrong_body, unknown_body);
    assert_eq!(wrong_body["code"], "invalid_credentials");
    assert_eq!(app.current_user().await, Value::String("SignedOut".into()));
}

async fn registration_refuses_bad_input_with_specific_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: [(&str, &str, &str, StatusCode, &str, &str); 6] = [
        (
            "not-an-email",
            PASSWORD,
            PASSWORD,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "email",
        ),
        (
            "",
            PASSWORD,
            PASSWORD,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "email",
        ),
        (
            "short@example.com",
            "short",
            "short",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "password",
        ),
        (
            "weak@example.com",
            "password1234",
            "password1234",
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            "password",
        ),
        (
            "mismatch@example.com",
            PASSWORD,
            NEW_PASSWORD,
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_mismatch",
            "password_confirm",
        ),
        (
            "long@example.com",
            &"x".repeat(129),
            &"x".repeat(129),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "password",
        ),
    ];
    for (email, password, confirm, status, code, field) in cases {
        let response = app
            .server_fn(
                "register",
                &[
                    ("email", email),
                    ("password", password),
                    ("password_confirm", confirm),
                ],
            )
            .await;
        assert_eq!(response.status(), status, "{email}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["code"].as_str(), body["field"].as_str()),
            (Some(code), Some(field)),
            "{email}: {body}"
        );
        assert!(!body["error"].as_str().unwrap_or_default().is_empty());
    }
    assert_eq!(
        app.store().count_users().await.unwrap(),
        0,
        "nothing was created"
    );
}

async fn change_password_refuses_a_wrong_current_password_a_short_one_and_a_mismatch(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let cases = [
        (
            "not my password",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "invalid_current_password",
            "current_password",
        ),
        (PASSWORD, "tiny", "tiny", "invalid_input", "new_password"),
        (
            PASSWORD,
            NEW_PASSWORD,
            "copper lantern meadow 18",
            "password_mismatch",
            "new_password_confirm",
        ),
        (
            PASSWORD,
            PASSWORD,
            PASSWORD,
            "same_password",
            "new_password",
        ),
    ];
    for (current, new, confirm, code, field) in cases {
        let response = app.change_password(current, new, confirm).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{code}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["code"].as_str(), body["field"].as_str()),
            (Some(code), Some(field))
        );
    }
    // The password did not change.
    let (other, _) = app.new_browser();
    let login = server_fn_with(
        &other,
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
}

async fn changing_the_password_ends_the_other_sessions_and_keeps_this_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (laptop, laptop_jar) = app.new_browser();
    server_fn_with(
        &laptop,
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    let old_access = app.cookie(app.access_cookie_name()).unwrap();

    let response = app
        .change_password(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        set_cookies(&response).len(),
        3,
        "fresh tokens for this session, and the device cookie"
    );
    assert_ne!(app.cookie(app.access_cookie_name()).unwrap(), old_access);

    assert_eq!(
        app.me().await.status(),
        StatusCode::OK,
        "this device stays signed in"
    );
    let laptop_me = laptop.get(app.url("/auth/me")).send().await.unwrap();
    assert_eq!(
        error_code(laptop_me).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    assert!(
        cookie_in(&laptop_jar, &app.address, app.access_cookie_name()).is_none(),
        "dead cookies are cleared"
    );

    let (fresh, _) = app.new_browser();
    let old = server_fn_with(
        &fresh,
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = server_fn_with(
        &fresh,
        &app.address,
        "login",
        &[("email", &email), ("password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(new.status(), StatusCode::OK);
}

async fn login_logout_change_password_gets_401_and_changes_nothing(backend: Backend) {
    // The seed integration test: "login, logout, change password, expect 401".
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    app.logout().await;
    app.login(&email, PASSWORD).await;
    let old_cookies = app.cookie_header();
    assert_eq!(app.logout().await.status(), StatusCode::OK);

    let response = app
        .change_password(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Replaying the cookies from before the logout changes nothing either.
    let replay = app
        .bare_client()
        .post(app.url("/api/change_password"))
        .header("cookie", &old_cookies)
        .form(&[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("new_password_confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(replay).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::OK,
        "the old password still works"
    );
}

async fn hashes_made_with_older_parameters_are_upgraded_at_the_next_login(backend: Backend) {
    use argon2::{
        Algorithm, Argon2, Params, PasswordHasher, Version,
        password_hash::{SaltString, rand_core::OsRng},
    };
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8 * 1024, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
    .unwrap()
    .to_string();
    let user = app
        .store()
        .find_user_by_email([&email, &email])
        .await
        .unwrap()
        .unwrap();
    app.store()
        .upgrade_password_hash(user.id, &user.password_hash, &weak)
        .await
        .unwrap();

    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    let upgraded = app
        .store()
        .find_user_by_email([&email, &email])
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

async fn addresses_that_look_like_sql_are_just_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "o'brien--admin'--@example.com";
    assert_eq!(app.register(email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.login(email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.current_user().await["SignedIn"]["email"], email);
    assert_eq!(app.store().count_users().await.unwrap(), 1);
}

async fn unicode_passwords_work_whole_and_normalised(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email();
    let password = "🦀 ferris grüßt das café ☕ zwölfmal";
    assert_eq!(
        app.register(&email, password).await.status(),
        StatusCode::OK
    );
    // The same text with "é" decomposed still matches (NFKC).
    let decomposed = password.replace('é', "e\u{301}");
    assert_eq!(
        app.login(&email, &decomposed).await.status(),
        StatusCode::OK
    );
    app.logout().await;
    // Nothing is truncated: dropping the last character fails.
    let shorter: String = password
        .chars()
        .take(password.chars().count() - 1)
        .collect();
    assert_eq!(
        app.login(&email, &shorter).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn sign_in_with_an_off_site_next_lands_home(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    app.logout().await;
    for (next, expected) in [
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("/account", "/account"),
    ] {
        // A plain form post, as a browser without JavaScript sends it.
        let response = app
            .bare_client()
            .post(app.url("/api/login"))
            .header("accept", "text/html")
            .form(&[
                ("email", email.as_str()),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(response.headers()["location"], expected, "{next}");
    }
}

async fn an_anonymous_page_visit_is_redirected_to_login_with_next(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/account"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["location"], "/login?next=/account");
    let home = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(
        (home.status(), home.headers()["location"].to_str().unwrap()),
        (StatusCode::FOUND, "/login")
    );
}

async fn signed_in_pages_render_the_user_and_are_never_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let page = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("'nonce-") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(&email), "the page shows who is signed in");
}

async fn the_password_hints_state_the_configured_minimum(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_PASSWORD_MIN_LENGTH", "16")
        .spawn()
        .await;
    let register = app
        .bare_client()
        .get(app.url("/register"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let html = register.text().await.unwrap();
    assert!(
        html.contains("At least 16 characters. A few unrelated words"),
        "{html}"
    );
    let email = unique_email();
    let response = app.register(&email, "violet kettle anthem 4242").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.login(&email, "violet kettle anthem 4242").await;
    assert_eq!(response.status(), StatusCode::OK);
    let account = app
        .client
        .get(app.url("/account"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let html = account.text().await.unwrap();
    assert!(
        html.contains("At least 16 characters. Different from the current one."),
        "{html}"
    );
    assert!(!html.contains("At least 12"), "no hard-coded minimum");
}

/// The audit's look-alikes are refused at registration with a reason, an
/// international domain is one account whatever form it is typed in, and
/// accounts registered under the older, looser rules still sign in.
async fn only_plain_addresses_register_and_old_accounts_still_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (address, says) in [
        ("Ada <evil@example.com>", "without a name"),
        ("a@[127.0.0.1]", "not an IP address"),
        ("a@localhost", "full domain name"),
        ("\u{430}da@example.com", "one alphabet"),
        (
            "ada@\u{430}\u{440}\u{440}\u{4cf}\u{435}.com",
            "one alphabet",
        ),
    ] {
        let response = app.register(address, PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{address}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], "email", "{address}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{address}: {body}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);

    let (browser, _) = app.new_browser();
    let register = server_fn_with(
        &browser,
        &app.address,
        "register",
        &[
            ("email", "Ada@Bücher.de"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(register.status(), StatusCode::OK);
    let again = app.register("ada@xn--bcher-kva.de", PASSWORD).await;
    assert_eq!(again.status(), StatusCode::OK, "answered like a new one");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email_normalized = 'ada@xn--bcher-kva.de'")
            .await,
        1,
        "the punycode form is the same address"
    );
    let (other, _) = app.new_browser();
    let login = server_fn_with(
        &other,
        &app.address,
        "login",
        &[("email", "ADA@xn--bcher-kva.de"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        login.status(),
        StatusCode::OK,
        "the punycode form is the same account"
    );

    // Rows as an older version wrote them: a bare host, and a Unicode key.
    let legacy = unique_email().replace("@", "-legacy@");
    assert_eq!(
        app.register(&legacy, PASSWORD).await.status(),
        StatusCode::OK
    );
    app.execute(&format!(
        "UPDATE users SET email = 'root@intranet', email_normalized = 'root@intranet' \
         WHERE email_normalized = '{legacy}'"
    ))
    .await;
    app.execute(
        "UPDATE users SET email_normalized = 'ada@bücher.de' WHERE email_normalized = 'ada@xn--bcher-kva.de'",
    )
    .await;
    for address in ["root@intranet", "Ada@Bücher.de"] {
        let (device, _) = app.new_browser();
        let login = server_fn_with(
            &device,
            &app.address,
            "login",
            &[("email", address), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(login.status(), StatusCode::OK, "{address} still signs in");
    }
    let users = app.count("SELECT COUNT(*) FROM users").await;
    let duplicate = app.register("ada@xn--bcher-kva.de", PASSWORD).await;
    assert_eq!(
        duplicate.status(),
        StatusCode::OK,
        "answered like a new one"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users").await,
        users,
        "the legacy row still owns the address"
    );
}

backend_tests!(
    only_plain_addresses_register_and_old_accounts_still_sign_in,
    the_password_hints_state_the_configured_minimum,
    registering_signs_no_one_in_and_the_new_account_then_signs_in,
    signing_in_with_the_right_password_works_and_sets_http_only_lax_cookies,
    email_matching_is_case_insensitive_and_ignores_surrounding_spaces,
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    registration_refuses_bad_input_with_specific_errors,
    change_password_refuses_a_wrong_current_password_a_short_one_and_a_mismatch,
    changing_the_password_ends_the_other_sessions_and_keeps_this_one,
    login_logout_change_password_gets_401_and_changes_nothing,
    hashes_made_with_older_parameters_are_upgraded_at_the_next_login,
    addresses_that_look_like_sql_are_just_text,
    unicode_passwords_work_whole_and_normalised,
    sign_in_with_an_off_site_next_lands_home,
    an_anonymous_page_visit_is_redirected_to_login_with_next,
    signed_in_pages_render_the_user_and_are_never_cached,
);
