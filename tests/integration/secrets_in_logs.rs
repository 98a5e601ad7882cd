//! Passwords, tokens, token hashes and keys never reach the logs.

use crate::{
    helpers::*,
    process::{ServerProcess, client, register_on},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn cookie_values(response: &reqwest::Response) -> Vec<String> {
    set_cookies(response)
        .iter()
        .filter_map(|c| {
            c.split(';')
                .next()?
                .split_once('=')
                .map(|(_, v)| v.to_string())
        })
        .filter(|v| !v.is_empty())
        .collect()
}

async fn no_secret_of_a_full_register_login_refresh_change_password_logout_cycle_is_logged(
    backend: Backend,
) {
    let env = Environment::new(backend).await;
    let mut server = ServerProcess::start(&env, &[("RUST_LOG", "trace")]).await;
    let wrong = "guessing-wrong-secret-4711";
    let mut secrets = vec![
        PASSWORD.to_string(),
        NEW_PASSWORD.to_string(),
        wrong.to_string(),
    ];
    secrets.push(env.jwt_keys.split_once(':').unwrap().1.to_string());

    // A browser: register, change password, sign out.
    let browser = client();
    let email = unique_email();
    let registered = sign_up_with(&browser, &server.address, &email).await;
    assert_eq!(registered.status(), StatusCode::OK);
    secrets.extend(cookie_values(&registered));
    let failed = server_fn_with(
        &client(),
        &server.address,
        "login",
        &[("email", &email), ("password", wrong)],
    )
    .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);

    // A bearer client: login, refresh, use.
    let login = plain_client()
        .post(server.url("/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD, "token_delivery": "body" }))
        .send()
        .await
        .unwrap();
    let (access, refresh) = tokens_of(login).await;
    let refreshed = plain_client()
        .post(server.url("/auth/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    let (access2, refresh2) = tokens_of(refreshed).await;
    assert_eq!(
        plain_client()
            .get(server.url("/auth/me"))
            .bearer_auth(&access2)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    secrets.extend([access, refresh, access2, refresh2]);

    let changed = server_fn_with(
        &browser,
        &server.address,
        "change_password",
        &[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("new_password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    secrets.extend(cookie_values(&changed));
    let logout = server_fn_with(&browser, &server.address, "logout", &[]).await;
    assert_eq!(logout.status(), StatusCode::OK);
    register_on(&server, &client()).await;

    // Token hashes, in the encodings a careless log line might use.
    let refresh_tokens: Vec<String> = secrets.iter().filter(|s| s.len() == 43).cloned().collect();
    for token in refresh_tokens {
        let hash = Sha256::digest(token.as_bytes());
        secrets.push(hash.iter().map(|b| format!("{b:02x}")).collect());
        secrets.push(STANDARD.encode(hash));
        secrets.push(URL_SAFE_NO_PAD.encode(hash));
    }
    // JWT parts: the signature alone would be enough to forge nothing, but
    // the whole token is a credential; check every segment.
    let jwt_parts: Vec<String> = secrets
        .iter()
        .filter(|s| s.starts_with("eyJ"))
        .flat_map(|t| t.split('.').skip(1).map(str::to_string).collect::<Vec<_>>())
        .collect();
    secrets.extend(jwt_parts.into_iter().filter(|p| p.len() > 16));

    assert!(server.terminate().success());
    let log = server.output();
    assert!(
        log.len() > 10_000 && log.contains("TRACE"),
        "trace logging was on ({} bytes)",
        log.len()
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {}…",
            &secret[..secret.len().min(8)]
        );
    }
    eprintln!(
        "checked {} secrets against {} bytes of trace output",
        secrets.len(),
        log.len()
    );
    let _: Value = Value::Null;
}

backend_tests!(no_secret_of_a_full_register_login_refresh_change_password_logout_cycle_is_logged,);
