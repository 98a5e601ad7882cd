//! The OpenAPI document matches the router it describes.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

async fn the_openapi_document_lists_every_route_the_router_has(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc: Value = app
        .client
        .get(app.url("/auth/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    let expected: BTreeSet<String> = [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/password",
        "/auth/me",
        "/auth/sessions",
        "/auth/sessions/{id}",
        "/auth/openapi.json",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected);

    for (path, item) in paths {
        let methods: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
            .map(|k| k.to_uppercase())
            .collect();
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        // Every documented operation is routed (not 404/405)...
        for method in &methods {
            let response = app
                .bare_client()
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&concrete),
                )
                .send()
                .await
                .unwrap();
            assert!(
                ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]
                    .contains(&response.status())
                    || path.contains("{id}"),
                "{method} {path} answered {}",
                response.status()
            );
        }
        // ...and the router has no undocumented method on it: its 405
        // names exactly the documented ones.
        let probe = app
            .bare_client()
            .request(Method::PATCH, app.url(&concrete))
            .send()
            .await
            .unwrap();
        assert_eq!(probe.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allowed: BTreeSet<String> = probe.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(allowed, methods, "{path}");
    }
}

backend_tests!(the_openapi_document_lists_every_route_the_router_has,);
