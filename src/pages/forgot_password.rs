use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};

use crate::{
    auth::{ForgotPassword, Notice},
    components::{Field, FormAlert, QueryNotice, SubmitButton, field_error, general_error},
};

/// "Forgot your password?": asks for the address and always answers the
/// same way, whether or not it has an account.
#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let action = ServerAction::<ForgotPassword>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if action.value().with(|value| matches!(value, Some(Ok(())))) {
            navigate(Notice::ResetLinkSent.url(), Default::default());
        }
    });

    view! {
        <Title text="Reset your password" />
        <section class="card auth-card" aria-labelledby="forgot-title">
            <h1 id="forgot-title">"Reset your password"</h1>
            <QueryNotice />
            <p>"Enter the email address of your account. We will send it a link to choose a new password."</p>
            <ActionForm action=action attr:class="form">
                <FormAlert error=general_error(action, &["email"]) />
                <Field label="Email" name="email" kind="email" autocomplete="username" error=field_error(action, "email") />
                <SubmitButton pending=action.pending() label="Send reset link" pending_label="Sending…" />
            </ActionForm>
            <p class="switch">"Remembered it? " <A href="/login">"Sign in"</A></p>
        </section>
    }
}
