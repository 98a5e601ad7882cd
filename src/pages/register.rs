use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};

use super::login::LeaveIfSignedIn;
use crate::{
    auth::Register,
    components::{
        Field, FormAlert, NewPasswordField, SubmitButton, field_error, general_error,
        next_from_query,
    },
};

/// Creating an account: it then signs in from the login page, where a
/// notice says to check the inbox (the same answer whether or not the
/// address already had an account).
#[component]
pub fn RegisterPage() -> impl IntoView {
    let next = next_from_query();
    let action = ServerAction::<Register>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(to)) = action.value().get() {
            navigate(&to, Default::default());
        }
    });

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
