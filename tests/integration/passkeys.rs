//! Passkeys against the real server, on both backends, with webauthn-rs's
//! own software authenticator (`SoftPasskey`, which signs like a real one).
//!
//! `SoftPasskey` keeps no resident keys, so the test plays the part of a
//! discoverable authenticator's platform where it must: it answers a
//! registration that asks for a resident key without storing one, and for a
//! discoverable sign-in it picks the credential and returns the user handle
//! (`userHandle` is returned beside the signed data, not inside it). Every
//! signature, challenge, origin and counter the server checks is the
//! authenticator's own.

use crate::{
    helpers::*,
    mailbox::Mailbox,
    two_factor::{activity, enable_totp, password_step, post},
};
use reqwest::cookie::Jar;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use webauthn_authenticator_rs::{
    WebauthnAuthenticator,
    prelude::{CreationChallengeResponse, RequestChallengeResponse, Url},
    softpasskey::SoftPasskey,
};

backend_tests!(
    a_passkey_signs_in_without_email_or_password_into_a_normal_session,
    each_ceremony_works_once_and_expires,
    a_wrong_origin_or_relying_party_is_refused,
    another_accounts_credential_is_refused,
    the_sign_counter_must_grow,
    unfinished_passkey_sign_ins_are_limited_per_network,
    removing_needs_a_fresh_sign_in_and_the_passkey_then_signs_in_no_more,
    a_passkey_is_both_factors_for_an_account_with_two_factor_sign_in,
    a_passkey_can_be_the_second_step_after_a_password,
);

/// The origin browsers use for passkeys in development: `localhost` on the
/// server's port (127.0.0.1 is not a domain).
fn origin(app: &TestApp) -> Url {
    Url::parse(&app.link_url("")).unwrap()
}

/// The registration options, as a browser's passkey prompt gets them.
async fn registration_options(client: &Client, app: &TestApp) -> (String, Value) {
    let response = post(client, app, "/auth/passkeys/register/start", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    (
        body["ceremony"].as_str().unwrap().to_string(),
        body["options"].clone(),
    )
}

/// Answers registration `options` with `authenticator` at `origin`.
fn create(authenticator: &mut SoftPasskey, origin: Url, mut options: Value) -> Value {
    // SoftPasskey holds no resident keys; the server asked for one.
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = authenticator
        .do_registration(origin, options)
        .expect("the authenticator registers");
    serde_json::to_value(credential).unwrap()
}

/// Adds a passkey to the account `client` is signed in as: its credential
/// id (base64url), as the authenticator answered.
async fn add_passkey(
    client: &Client,
    app: &TestApp,
    authenticator: &mut SoftPasskey,
    name: &str,
) -> String {
    let (ceremony, options) = registration_options(client, app).await;
    let credential = create(authenticator, origin(app), options);
    let response = post(
        client,
        app,
        "/auth/passkeys/register/finish",
        json!({ "ceremony": ceremony, "credential": credential, "name": name }),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    credential["id"].as_str().unwrap().to_string()
}

async fn sign_in_options(app: &TestApp) -> (String, Value) {
    let response = post(
        &app.bare_client(),
        app,
        "/auth/passkeys/login/start",
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    (
        body["ceremony"].as_str().unwrap().to_string(),
        body["options"].clone(),
    )
}

/// The authenticator's answer to a discoverable sign-in, as the platform
/// gives it: the credential `credential_id` chosen, and `user` its handle.
fn get(
    authenticator: &mut SoftPasskey,
    origin: Url,
    mut options: Value,
    credential_id: &str,
    user: &str,
) -> Value {
    options["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": credential_id }]);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = authenticator
        .do_authentication(origin, options)
        .expect("the authenticator signs");
    let mut credential = serde_json::to_value(credential).unwrap();
    let handle = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        uuid::Uuid::parse_str(user).unwrap().as_bytes(),
    );
    credential["response"]["userHandle"] = json!(handle);
    credential
}

/// Signs in with a passkey in a new browser: the answer, and the browser.
async fn passkey_sign_in(
    app: &TestApp,
    authenticator: &mut SoftPasskey,
    credential_id: &str,
    user: &str,
) -> (reqwest::Response, Client, Arc<Jar>) {
    let (client, jar) = app.new_browser();
    let (ceremony, options) = sign_in_options(app).await;
    let credential = get(authenticator, origin(app), options, credential_id, user);
    let response = post(
        &client,
        app,
        "/auth/passkeys/login/finish",
        json!({ "ceremony": ceremony, "credential": credential }),
    )
    .await;
    (response, client, jar)
}

async fn user_id(client: &Client, app: &TestApp) -> String {
    let me: Value = client
        .get(app.url("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_string()
}

async fn a_passkey_signs_in_without_email_or_password_into_a_normal_session(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_MAIL_RETRY_MAX", "200ms")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    let (ceremony, options) = registration_options(&app.client, &app).await;
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    let mut authenticator = SoftPasskey::new(true);
    let credential = create(&mut authenticator, origin(&app), options);
    let credential_id = credential["id"].as_str().unwrap().to_string();
    let response = post(
        &app.client,
        &app,
        "/auth/passkeys/register/finish",
        json!({ "ceremony": ceremony, "credential": credential, "name": "Laptop" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    mailbox
        .wait_for(&email, "A passkey was added to your Portcullis account")
        .await;
    let listed: Value = app.api_get("/auth/passkeys").await.json().await.unwrap();
    assert_eq!(listed["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(listed["passkeys"][0]["name"], "Laptop");
    assert_eq!(listed["passkeys"][0]["last_used_at"], Value::Null);

    let (response, browser, jar) =
        passkey_sign_in(&app, &mut authenticator, &credential_id, &user).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], email.as_str());
    assert!(body.get("tokens").is_none(), "a browser gets cookies");
    assert_eq!(user_id(&browser, &app).await, user);
    let sessions: Value = browser
        .get(app.url("/auth/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 2);
    let listed: Value = app.api_get("/auth/passkeys").await.json().await.unwrap();
    assert_ne!(listed["passkeys"][0]["last_used_at"], Value::Null);

    // A normal session: logout ends it, and its cookies are refused after.
    let cookies = [app.access_cookie_name(), app.refresh_cookie_name()]
        .map(|name| {
            format!(
                "{name}={}",
                cookie_in(&jar, &app.address, name).expect(name)
            )
        })
        .join("; ");
    let response = browser
        .post(app.url("/auth/logout"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .bare_client()
        .get(app.url("/auth/me"))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A body client gets its tokens in the body.
    let (ceremony, options) = sign_in_options(&app).await;
    let credential = get(
        &mut authenticator,
        origin(&app),
        options,
        &credential_id,
        &user,
    );
    let response = post(
        &app.bare_client(),
        &app,
        "/auth/passkeys/login/finish",
        json!({ "ceremony": ceremony, "credential": credential, "token_delivery": "body" }),
    )
    .await;
    let (access, _) = tokens_of(response).await;
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
    let described = activity(&app.client, &app).await;
    for expected in ["Signed in with a passkey", "Passkey added: Laptop"] {
        assert!(
            described.iter().any(|d| d == expected),
            "{expected}: {described:?}"
        );
    }
}

async fn each_ceremony_works_once_and_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    let mut authenticator = SoftPasskey::new(true);
    let (ceremony, options) = registration_options(&app.client, &app).await;
    let credential = create(&mut authenticator, origin(&app), options);
    let finish = json!({ "ceremony": ceremony, "credential": credential });
    let response = post(
        &app.client,
        &app,
        "/auth/passkeys/register/finish",
        finish.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = post(&app.client, &app, "/auth/passkeys/register/finish", finish).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::CONFLICT, "ceremony_expired".into())
    );
    let credential_id = credential["id"].as_str().unwrap().to_string();

    // A sign-in answered twice signs in once.
    let (ceremony, options) = sign_in_options(&app).await;
    let answer = get(
        &mut authenticator,
        origin(&app),
        options,
        &credential_id,
        &user,
    );
    let finish = json!({ "ceremony": ceremony, "credential": answer });
    let response = post(
        &app.bare_client(),
        &app,
        "/auth/passkeys/login/finish",
        finish.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = post(
        &app.bare_client(),
        &app,
        "/auth/passkeys/login/finish",
        finish,
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::CONFLICT, "ceremony_expired".into())
    );

    // An expired one is refused before its answer is looked at.
    let (ceremony, options) = sign_in_options(&app).await;
    let answer = get(
        &mut authenticator,
        origin(&app),
        options,
        &credential_id,
        &user,
    );
    app.execute(match backend {
        Backend::Sqlite => "UPDATE webauthn_challenges SET expires_at = created_at",
        Backend::Postgres => "UPDATE webauthn_challenges SET expires_at = created_at",
    })
    .await;
    let response = post(
        &app.bare_client(),
        &app,
        "/auth/passkeys/login/finish",
        json!({ "ceremony": ceremony, "credential": answer }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::CONFLICT, "ceremony_expired".into())
    );
    // Another account's registration ceremony is not this one's.
    let (ceremony, options) = registration_options(&app.client, &app).await;
    let credential = create(&mut authenticator, origin(&app), options);
    let (other, _) = app.new_browser();
    sign_up_with(&other, &app.address, &unique_email()).await;
    let response = post(
        &other,
        &app,
        "/auth/passkeys/register/finish",
        json!({ "ceremony": ceremony, "credential": credential }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::CONFLICT, "ceremony_expired".into())
    );
}

async fn a_wrong_origin_or_relying_party_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    let mut authenticator = SoftPasskey::new(true);
    let port = origin(&app).port().unwrap();

    // Registration: another origin, then another relying party.
    let (ceremony, options) = registration_options(&app.client, &app).await;
    let evil = Url::parse(&format!("https://evil.localhost:{port}")).unwrap();
    let credential = create(&mut authenticator, evil, options);
    let response = post(
        &app.client,
        &app,
        "/auth/passkeys/register/finish",
        json!({ "ceremony": ceremony, "credential": credential }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".into())
    );
    let (ceremony, mut options) = registration_options(&app.client, &app).await;
    options["publicKey"]["rp"]["id"] = json!("example.com");
    let other_rp = Url::parse("https://example.com").unwrap();
    let credential = create(&mut authenticator, other_rp, options);
    let response = post(
        &app.client,
        &app,
        "/auth/passkeys/register/finish",
        json!({ "ceremony": ceremony, "credential": credential }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".into())
    );
    let listed: Value = app.api_get("/auth/passkeys").await.json().await.unwrap();
    assert_eq!(listed["passkeys"], json!([]));

    // Sign-in with a real passkey, answered for another origin.
    let credential_id = add_passkey(&app.client, &app, &mut authenticator, "Laptop").await;
    let (ceremony, options) = sign_in_options(&app).await;
    let evil = Url::parse(&format!("https://evil.localhost:{port}")).unwrap();
    let answer = get(&mut authenticator, evil, options, &credential_id, &user);
    let response = post(
        &app.bare_client(),
        &app,
        "/auth/passkeys/login/finish",
        json!({ "ceremony": ceremony, "credential": answer }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "passkey_refused".into())
    );
}

async fn another_accounts_credential_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = add_passkey(&app.client, &app, &mut authenticator, "Laptop").await;
    let (other, _) = app.new_browser();
    sign_up_with(&other, &app.address, &unique_email()).await;
    let other_user = user_id(&other, &app).await;
    // Ada's passkey, presented as the other account's.
    let (response, _, _) =
        passkey_sign_in(&app, &mut authenticator, &credential_id, &other_user).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "passkey_refused".into())
    );
    // An unknown credential.
    let mut stranger = SoftPasskey::new(true);
    let (ceremony, options) = registration_options(&other, &app).await;
    let unregistered = create(&mut stranger, origin(&app), options);
    drop(ceremony);
    let (response, _, _) = passkey_sign_in(
        &app,
        &mut stranger,
        unregistered["id"].as_str().unwrap(),
        &other_user,
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "passkey_refused".into())
    );
}

/// `times` passkey sign-ins in a row, each answered 200.
async fn signs_in(
    app: &TestApp,
    authenticator: &mut SoftPasskey,
    credential_id: &str,
    user: &str,
    times: usize,
) {
    for _ in 0..times {
        let (response, _, _) = passkey_sign_in(app, authenticator, credential_id, user).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

async fn the_sign_counter_must_grow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = add_passkey(&app.client, &app, &mut authenticator, "Laptop").await;
    signs_in(&app, &mut authenticator, &credential_id, &user, 2).await;
    // As if a clone of the authenticator had signed far ahead: this one's
    // next counter is behind what the server saw, and is refused.
    let owner = portcullis::server::db::UserId(uuid::Uuid::parse_str(&user).unwrap());
    let stored = app.store().passkeys_of(owner).await.unwrap();
    let mut record: Value = serde_json::from_str(&stored[0].credential).unwrap();
    let counter = record["cred"]["counter"]
        .as_u64()
        .expect("a stored counter");
    assert!(
        counter >= 2,
        "the counter grew with each sign-in: {counter}"
    );
    record["cred"]["counter"] = json!(counter + 1000);
    app.execute(&format!(
        "UPDATE passkeys SET credential = '{}'",
        record.to_string().replace('\'', "''")
    ))
    .await;
    let (response, _, _) = passkey_sign_in(&app, &mut authenticator, &credential_id, &user).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "passkey_refused".into())
    );
}

/// Each start stores a ceremony, so a client may not start sign-ins
/// without bound: unfinished ones count against its network (the sign-in
/// limit for a network); a finished sign-in gives its start back.
async fn unfinished_passkey_sign_ins_are_limited_per_network(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "3")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = add_passkey(&app.client, &app, &mut authenticator, "Laptop").await;
    // Finished sign-ins, more than the limit, count for nothing.
    signs_in(&app, &mut authenticator, &credential_id, &user, 4).await;
    let ceremonies = app.count("SELECT COUNT(*) FROM webauthn_challenges").await;
    // Three abandoned starts reach the limit; the next start is refused,
    // with nothing stored for it.
    for _ in 0..3 {
        sign_in_options(&app).await;
    }
    let refused = post(
        &app.bare_client(),
        &app,
        "/auth/passkeys/login/start",
        json!({}),
    )
    .await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(refused).await,
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webauthn_challenges").await,
        ceremonies + 3
    );
    // The limit is the network's, not the passkey's: a password sign-in
    // from it still works (its own counters).
    let (client, _) = app.new_browser();
    let response = client
        .post(app.url("/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn removing_needs_a_fresh_sign_in_and_the_passkey_then_signs_in_no_more(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REAUTH_WINDOW", "1s")
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_MAIL_RETRY_MAX", "200ms")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = add_passkey(&app.client, &app, &mut authenticator, "Laptop").await;
    let listed: Value = app.api_get("/auth/passkeys").await.json().await.unwrap();
    let id = listed["passkeys"][0]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let remove = |body: Value| {
        app.client
            .delete(app.url(&format!("/auth/passkeys/{id}")))
            .json(&body)
            .send()
    };
    let response = remove(json!({})).await.unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::FORBIDDEN, "reauth_required".into())
    );
    let response = remove(json!({ "password": "not the password at all" }))
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_current_password".into()
        )
    );
    // Someone else's, or no such one: not found.
    let response = app
        .client
        .delete(app.url(&format!("/auth/passkeys/{}", uuid::Uuid::new_v4())))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let response = remove(json!({ "password": PASSWORD })).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    mailbox
        .wait_for(&email, "A passkey was removed from your Portcullis account")
        .await;
    let (response, _, _) = passkey_sign_in(&app, &mut authenticator, &credential_id, &user).await;
    let (status, code) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "passkey_refused")
    );
}

async fn a_passkey_is_both_factors_for_an_account_with_two_factor_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    enable_totp(&app.client, &app, 0).await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = add_passkey(&app.client, &app, &mut authenticator, "Laptop").await;
    // The password alone asks for a code; the passkey does not.
    password_step(&app, &email).await;
    let (response, browser, _) =
        passkey_sign_in(&app, &mut authenticator, &credential_id, &user).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(user_id(&browser, &app).await, user);
}

async fn a_passkey_can_be_the_second_step_after_a_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let user = user_id(&app.client, &app).await;
    enable_totp(&app.client, &app, 0).await;
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = add_passkey(&app.client, &app, &mut authenticator, "Laptop").await;

    // Without a pending sign-in there is no second step to take.
    let (stranger, _) = app.new_browser();
    let response =
        server_fn_with(&stranger, &app.address, "passkey_second_step_options", &[]).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "mfa_expired".into())
    );

    let (browser, _) = password_step(&app, &email).await;
    let response = server_fn_with(&browser, &app.address, "passkey_second_step_options", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let prompt: Value = response.json().await.unwrap();
    let options: Value = serde_json::from_str(prompt["options"].as_str().unwrap()).unwrap();
    let allowed = options["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1, "the account's passkeys: {options}");
    assert_eq!(allowed[0]["id"], credential_id.as_str());
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = authenticator
        .do_authentication(origin(&app), options)
        .expect("the authenticator signs");
    let answer = serde_json::to_string(&answer).unwrap();
    let ceremony = prompt["ceremony"].as_str().unwrap();
    let response = server_fn_with(
        &browser,
        &app.address,
        "verify_with_passkey",
        &[("ceremony", ceremony), ("credential", &answer)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(user_id(&browser, &app).await, user);
    // The pending sign-in and the ceremony are spent.
    let response = server_fn_with(
        &browser,
        &app.address,
        "verify_with_passkey",
        &[("ceremony", ceremony), ("credential", &answer)],
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "mfa_expired".into())
    );
    let described = activity(&browser, &app).await;
    assert!(
        described.iter().any(|d| d == "Signed in with a passkey"),
        "{described:?}"
    );
}
