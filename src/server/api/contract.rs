//! What the `#[utoipa::path]` declarations cannot say by themselves, added to
//! the document when the router is built, so that it is the whole contract
//! (#17 item 8): a request the schema allows is one the server accepts, and
//! every status an operation can answer is listed.
//!
//! - input limits from the running configuration (password lengths) and the
//!   formats and patterns the server enforces (email, refresh token);
//! - the answers that come from the layers around every handler: body
//!   extraction (400, 413, 415, 422), the cross-site check (403), header
//!   limits (431), faults (500) and the database or hashing pool being
//!   unavailable (503), each with the error body;
//! - `Retry-After` on 429 and 503, unique operation ids, and which bodies are
//!   optional.
//!
//! Only the server's own rules go in: nothing here may promise a request the
//! server refuses, nor forbid one it accepts.

use utoipa::openapi::{
    ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder,
    header::HeaderBuilder,
    path::{Operation, PathItem},
    schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type},
};

use crate::server::{
    config::PasswordPolicy,
    emails::MAX_EMAIL_LEN,
    middleware::headers::MAX_BODY_BYTES,
    tokens::{LINK_TOKEN_PATTERN, REFRESH_TOKEN_PATTERN},
};

/// No C0 or C1 control character: what `char::is_control` refuses in a new
/// password (Unicode category Cc is exactly these two ranges).
pub const NO_CONTROL_CHARACTERS: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

/// Operations whose body may be omitted (`extract::OptionalJson`).
const OPTIONAL_BODIES: [(&str, &str); 7] = [
    ("/auth/passkeys/register/start", "post"),
    ("/auth/passkeys/{id}", "delete"),
    ("/auth/refresh", "post"),
    ("/auth/mfa/totp/setup", "post"),
    ("/auth/sessions/{id}", "delete"),
    ("/auth/email/verify/resend", "post"),
    ("/admin/v1/users/{id}/disable", "post"),
];

/// The operation that only serves this document: no database, no fault path.
const DOCUMENT_PATH: &str = "/auth/openapi.json";

pub fn complete(openapi: &mut OpenApi, passwords: PasswordPolicy) {
    constrain_inputs(openapi, passwords);
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            if let Some(body) = operation.request_body.as_mut()
                && OPTIONAL_BODIES
                    .iter()
                    .any(|&(p, m)| p == path && m == method)
            {
                body.required = Some(Required::False);
            }
            add_common_responses(path, method, operation);
            add_retry_after(operation);
        }
    }
    make_operation_ids_unique(openapi);
}

fn constrain_inputs(openapi: &mut OpenApi, passwords: PasswordPolicy) {
    for (schema, name) in [
        ("RegisterRequest", "email"),
        ("LoginRequest", "email"),
        ("ForgotPasswordRequest", "email"),
        ("ResendVerificationRequest", "email"),
        ("ChangeEmailRequest", "new_email"),
    ] {
        email(field(openapi, schema, name));
    }
    for (schema, name) in [
        ("RegisterRequest", "password"),
        ("RegisterRequest", "password_confirm"),
        ("ChangePasswordRequest", "new_password"),
        ("ChangePasswordRequest", "new_password_confirm"),
        ("ResetPasswordRequest", "password"),
        ("ResetPasswordRequest", "password_confirm"),
    ] {
        new_password(field(openapi, schema, name), passwords);
    }
    for (schema, name) in [
        ("LoginRequest", "password"),
        ("ChangePasswordRequest", "current_password"),
        ("ChangeEmailRequest", "password"),
        ("TotpConfirmRequest", "password"),
    ] {
        existing_password(field(openapi, schema, name), passwords);
    }
    // No limits on `RevokeSessionRequest.password`, rightly: the server
    // ignores it within the re-authentication window, and outside it an
    // empty or over-long one is answered like a missing one (403
    // `reauth_required`), not refused as input.
    field(openapi, "RefreshRequest", "refresh_token").pattern =
        Some(REFRESH_TOKEN_PATTERN.to_string());
    for schema in [
        "ResetPasswordRequest",
        "VerifyEmailRequest",
        "ConfirmEmailChangeRequest",
    ] {
        field(openapi, schema, "token").pattern = Some(LINK_TOKEN_PATTERN.to_string());
    }
    field(openapi, "LoginMfaRequest", "mfa_token").pattern = Some(LINK_TOKEN_PATTERN.to_string());
    for schema in ["PasskeyRegistrationFinish", "PasskeySignInFinish"] {
        field(openapi, schema, "ceremony").pattern = Some(LINK_TOKEN_PATTERN.to_string());
    }
    let name = field(openapi, "PasskeyRegistrationFinish", "name");
    name.max_length = Some(crate::server::service::MAX_PASSKEY_NAME);
    name.pattern = Some(NO_CONTROL_CHARACTERS.to_string());
    // A code is six digits or a recovery code, spaces allowed, and never
    // longer than `mfa::MAX_TYPED`; which one is right no schema can say (a
    // wrong one is 422 `invalid_code`).
    for schema in ["LoginMfaRequest", "TotpEnableRequest", "TotpConfirmRequest"] {
        let code = field(openapi, schema, "code");
        code.min_length = Some(1);
        code.max_length = Some(crate::server::mfa::MAX_TYPED);
    }
}

/// `Email::parse` (service::credentials): a valid address, at most
/// `MAX_EMAIL_LEN` characters (surrounding spaces are trimmed first).
fn email(property: &mut Object) {
    property.format = Some(SchemaFormat::KnownFormat(KnownFormat::Email));
    property.max_length = Some(MAX_EMAIL_LEN);
}

/// `Passwords::check_new`: the configured lengths, no control characters.
/// Strength (common, breached or guessable passwords) cannot be a schema;
/// it is the documented `weak_password` answer.
fn new_password(property: &mut Object, passwords: PasswordPolicy) {
    property.min_length = Some(passwords.min_chars);
    property.max_length = Some(passwords.max_chars);
    property.pattern = Some(NO_CONTROL_CHARACTERS.to_string());
    describe(
        property,
        &format!(
            "{} to {} characters (counted after NFKC normalisation), no control characters.",
            passwords.min_chars, passwords.max_chars
        ),
    );
}

/// `Passwords::check_length`: a password being checked rather than chosen
/// may be shorter than today's minimum (it was chosen under another policy),
/// but not empty nor longer than the maximum.
fn existing_password(property: &mut Object, passwords: PasswordPolicy) {
    property.min_length = Some(1);
    property.max_length = Some(passwords.max_chars);
    describe(
        property,
        &format!(
            "1 to {} characters (counted after NFKC normalisation).",
            passwords.max_chars
        ),
    );
}

fn describe(property: &mut Object, rule: &str) {
    property.description = Some(match property.description.take() {
        Some(text) => format!("{text} {rule}"),
        None => rule.to_string(),
    });
}

/// The schema of `name` in the component `schema`. The components are ours,
/// so a missing one is a bug that the unit tests (which build the document)
/// catch before any server starts.
fn field<'a>(openapi: &'a mut OpenApi, schema: &str, name: &str) -> &'a mut Object {
    let component = openapi
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut(schema));
    let Some(RefOr::T(Schema::Object(object))) = component else {
        panic!("the OpenAPI document has no object schema {schema}");
    };
    match object.properties.get_mut(name) {
        Some(RefOr::T(Schema::Object(property))) => property,
        _ => panic!("the schema {schema} has no plain field {name}"),
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
}

/// Answers that do not come from the handler, so its declaration does not
/// list them. A status the handler documents keeps its own description.
fn add_common_responses(path: &str, method: &str, operation: &mut Operation) {
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(error_response(description)));
    };
    if operation.request_body.is_some() {
        add(
            "400",
            "`malformed_request`: the body is not valid JSON, or could not be read",
        );
        add(
            "415",
            "`unsupported_media_type`: a body sent without `Content-Type: application/json`",
        );
        add(
            "422",
            "`invalid_input`: a body the schema refuses (a missing field, a wrong type, a value out of its limits)",
        );
    }
    if !matches!(method, "get" | "head" | "options" | "trace") {
        add(
            "403",
            "`cross_site_request`: a state-changing request from another site (a request with a bearer token is exempt)",
        );
    }
    add(
        "413",
        &format!(
            "`payload_too_large`: a body over {} KiB",
            MAX_BODY_BYTES / 1024
        ),
    );
    add(
        "431",
        "`headers_too_large`: request headers, or the `Cookie` header, over their limit",
    );
    if path != DOCUMENT_PATH {
        add(
            "500",
            "`internal`: an unexpected fault on our side (logged); nothing to fix in the request",
        );
    }
    add(
        "503",
        "`unavailable`: the database cannot be reached, or the server is still starting",
    );
}

/// Throttled (429) and shed (503 `busy`) answers say when to come back.
fn add_retry_after(operation: &mut Operation) {
    for status in ["429", "503"] {
        if let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) {
            response.headers.insert(
                "Retry-After".to_string(),
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some(
                        "Seconds to wait before retrying; sent with `throttled` and `busy`",
                    ))
                    .build(),
            );
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build(),
        )
        .build()
}

/// One handler may serve several methods (`logout`: POST and DELETE), and
/// `operationId` must be unique: a shared one gets its method appended.
fn make_operation_ids_unique(openapi: &mut OpenApi) {
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for item in openapi.paths.paths.values_mut() {
        for (_, operation) in operations(item) {
            if let Some(id) = &operation.operation_id {
                *counts.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for item in openapi.paths.paths.values_mut() {
        for (method, operation) in operations(item) {
            if let Some(id) = operation.operation_id.as_mut()
                && counts.get(id.as_str()).is_some_and(|&n| n > 1)
            {
                *id = format!("{id}_{method}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_character_pattern_is_exactly_char_is_control() {
        assert_eq!(NO_CONTROL_CHARACTERS, r"^[^\u0000-\u001F\u007F-\u009F]*$");
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let in_pattern = c <= '\u{1F}' || ('\u{7F}'..='\u{9F}').contains(&c);
            assert_eq!(c.is_control(), in_pattern, "{:?}", c);
        }
    }

    #[test]
    fn the_document_states_the_policy_it_is_built_with() {
        let (_, openapi) = super::super::router(PasswordPolicy {
            min_chars: 15,
            max_chars: 99,
        });
        let doc = serde_json::to_value(&openapi).expect("the document serialises");
        let schemas = &doc["components"]["schemas"];
        let register = &schemas["RegisterRequest"]["properties"]["password"];
        assert_eq!(
            (
                register["minLength"].as_u64(),
                register["maxLength"].as_u64()
            ),
            (Some(15), Some(99))
        );
        let login = &schemas["LoginRequest"]["properties"]["password"];
        assert_eq!(
            (login["minLength"].as_u64(), login["maxLength"].as_u64()),
            (Some(1), Some(99))
        );
        assert_eq!(
            doc["paths"]["/auth/sessions/{id}"]["delete"]["requestBody"]["required"],
            false
        );
        assert_eq!(
            doc["paths"]["/auth/logout"]["post"]["operationId"],
            "logout_post"
        );
        assert_eq!(
            doc["paths"]["/auth/logout"]["delete"]["operationId"],
            "logout_delete"
        );
    }
}
