//! The JSON API under `/auth`, for scripts, apps and services.
//!
//! Handlers are thin adapters over `service::AuthService`, exactly like the
//! server functions browsers use. Routes and the OpenAPI document come from
//! the same `#[utoipa::path]` declarations (`utoipa-axum`), so the document
//! served at `/auth/openapi.json` cannot drift from the router.

pub mod admin;
mod contract;
mod extract;
mod handlers;
mod mfa;
mod passkeys;

use axum::{
    Extension, Router,
    body::Bytes,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{config::PasswordPolicy, state::AppState};
use crate::auth::{AppError, ErrorCode};

pub use handlers::*;
pub use mfa::recovery_codes_file;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis auth API",
        description = "Sign in, sign out (for real), refresh, change password and manage sessions. \
                       Browsers get HttpOnly cookies; other clients may ask for tokens in the body \
                       with `\"token_delivery\": \"body\"` and send `Authorization: Bearer <access token>`.",
        version = "1"
    ),
    tags(
        (name = "auth", description = "Credentials and sessions"),
        (name = "passkeys", description = "WebAuthn passkeys: add one, sign in with one (no email, no password), list and remove them"),
        (name = "admin", description = "Operators' actions under /admin/v1, with an admin API key \
            (`portcullis admin api-key create NAME`) as `Authorization: Bearer <key>`; cookies are never read")
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pck_<id>_<secret>")
                    .description(Some("An admin API key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("portcullis_access"))),
        );
    }
}

/// Endpoints whose handlers read the credentials themselves, so the session
/// middleware must not renew them first: that would rotate a token only to
/// end it (logout) or rotate it twice (refresh). A test checks each is a
/// route of [`router`], so renaming one cannot silently undo this.
pub const RESOLVED_BY_HANDLER: [&str; 2] = ["/auth/logout", "/auth/refresh"];

/// The `/auth` router and the OpenAPI document describing exactly it, with
/// the input limits of `passwords` (the running configuration). The document
/// is served by this router only: every instance describes its own settings.
pub fn router(passwords: PasswordPolicy) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, admin_routes, openapi) = parts(passwords);
    let served = ServedDocument(Bytes::from(
        serde_json::to_vec(&openapi).expect("the OpenAPI document serialises to JSON"),
    ));
    let routes = with_json_fallbacks(routes).layer(Extension(served));
    (
        Router::new()
            .nest("/auth", routes)
            .nest(ADMIN_PREFIX, with_json_fallbacks(admin_routes)),
        openapi,
    )
}

/// Unknown paths and methods answer with the API's error body, not axum's
/// plain text.
fn with_json_fallbacks(routes: Router<AppState>) -> Router<AppState> {
    routes
        .fallback(|| async { AppError::new(ErrorCode::NotFound, "No such endpoint.") })
        .method_not_allowed_fallback(|| async {
            AppError::new(
                ErrorCode::MethodNotAllowed,
                "This method is not allowed on this endpoint.",
            )
        })
}

/// Where the admin API lives. Its requests are authenticated by their
/// handlers (an admin key), never by the session middleware.
pub const ADMIN_PREFIX: &str = "/admin/v1";

/// The routes (`/auth`'s and `/admin/v1`'s) and their one document, made to
/// state the whole contract.
fn parts(
    passwords: PasswordPolicy,
) -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(mfa::login_mfa))
        .routes(routes!(mfa::totp_setup))
        .routes(routes!(mfa::totp_enable))
        .routes(routes!(mfa::totp_disable))
        .routes(routes!(mfa::recovery_codes))
        .routes(routes!(passkeys::register_start))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(passkeys::login_start))
        .routes(routes!(passkeys::login_finish))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::remove))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(change_password))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(change_email))
        .routes(routes!(confirm_email_change))
        .routes(routes!(me))
        .routes(routes!(events))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(openapi_document))
        .split_for_parts();
    openapi.paths.paths = openapi
        .paths
        .paths
        .into_iter()
        .map(|(path, item)| (format!("/auth{path}"), item))
        .collect();
    let (admin_routes, admin_doc) = OpenApiRouter::new()
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::get_user, admin::delete_user))
        .routes(routes!(admin::sign_out_user))
        .routes(routes!(admin::disable_user))
        .routes(routes!(admin::enable_user))
        .routes(routes!(admin::revoke_session))
        .routes(routes!(admin::list_webhooks))
        .routes(routes!(admin::retry_webhook))
        .split_for_parts();
    for (path, item) in admin_doc.paths.paths {
        openapi
            .paths
            .paths
            .insert(format!("{ADMIN_PREFIX}{path}"), item);
    }
    if let (Some(components), Some(admin_components)) =
        (openapi.components.as_mut(), admin_doc.components)
    {
        components.schemas.extend(admin_components.schemas);
    }
    contract::complete(&mut openapi, passwords);
    (routes, admin_routes, openapi)
}

/// The document as served, serialised once per router.
#[derive(Clone)]
pub struct ServedDocument(Bytes);

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "auth",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API, with this instance's limits", content_type = "application/json")))]
pub async fn openapi_document(Extension(document): Extension<ServedDocument>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy {
        min_chars: 12,
        max_chars: 128,
    };

    #[test]
    fn every_endpoint_that_reads_its_own_credentials_is_a_route() {
        let (_, document) = router(POLICY);
        assert!(
            document
                .paths
                .paths
                .keys()
                .any(|p| p.starts_with(ADMIN_PREFIX)),
            "the admin API is in the document"
        );
        let (_, document) = router(POLICY);
        for path in RESOLVED_BY_HANDLER {
            assert!(
                document.paths.paths.contains_key(path),
                "{path} is not an /auth route any more"
            );
        }
    }
}
