use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use super::login::LeaveIfSignedIn;
use crate::{
    auth::Register,
    components::{
        Field, FormAlert, NewPasswordField, SubmitButton, field_error, general_error,
        go_on_after_sign_in, next_from_query,
    },
};

#[component]
pub fn RegisterPage() -> impl IntoView {
    let next = next_from_query();
    let action = ServerAction::<Register>::new();
    go_on_after_sign_in(action, next);

    view! {
        <Title text="Create an account" />
        <LeaveIfSignedIn next />
        <section class="card auth-card" aria-labelledby="register-title">
            <h1 id="register-title">"Create an account"</h1>
            <ActionForm action=action attr:class="form">
                <input type="hidden" name="next" value=move || next.get().unwrap_or_default() />
                <FormAlert error=general_error(action, &["email", "password", "password_confirm"]) />
                <Field label="Email" name="email" kind="email" autocomplete="username" error=field_error(action, "email") />
                <NewPasswordField
                    label="Password"
                    name="password"
                    advice="A few unrelated words make a strong password."
                    error=field_error(action, "password")
                />
                <Field label="Confirm password" name="password_confirm" kind="password" autocomplete="new-password" error=field_error(action, "password_confirm") />
                <SubmitButton pending=action.pending() label="Create account" pending_label="Creating account…" />
            </ActionForm>
            <p class="switch">"Already have an account? " <A href="/login">"Sign in"</A></p>
        </section>
    }
}
