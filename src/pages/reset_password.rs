use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};

use crate::{
    auth::{ErrorCode, Notice, ResetPassword},
    components::{
        AuthContext, Field, FormAlert, NewPasswordField, SubmitButton, field_error, general_error,
    },
};

/// Choosing a new password from an emailed link. The link's token arrives
/// in a cookie (the server moved it out of the URL before this rendered).
#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let action = ServerAction::<ResetPassword>::new();
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if action.value().with(|value| matches!(value, Some(Ok(())))) {
            // Every session ended, this browser's too.
            auth.signed_out(&navigate, Notice::PasswordReset.url());
        }
    });
    let link_failed = Signal::derive(move || {
        action.value().with(
            |value| matches!(value, Some(Err(error)) if error.code == ErrorCode::InvalidToken),
        )
    });

    view! {
        <Title text="Choose a new password" />
        <section class="card auth-card" aria-labelledby="reset-title">
            <h1 id="reset-title">"Choose a new password"</h1>
            <p>"Setting a new password signs you out on every device."</p>
            <ActionForm action=action attr:class="form">
                <FormAlert error=general_error(action, &["password", "password_confirm"]) />
                <Show when=move || link_failed.get()>
                    <p><A href="/forgot-password">"Request a new link"</A></p>
                </Show>
                <NewPasswordField
                    label="New password"
                    name="password"
                    advice="A few unrelated words make a strong password."
                    error=field_error(action, "password")
                />
                <Field label="Confirm new password" name="password_confirm" kind="password" autocomplete="new-password" error=field_error(action, "password_confirm") />
                <SubmitButton pending=action.pending() label="Set new password" pending_label="Saving…" />
            </ActionForm>
        </section>
    }
}
