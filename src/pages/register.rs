use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::A,
    hooks::{use_navigate, use_query_map},
};

use super::login::LeaveIfSignedIn;
use crate::{
    auth::{Register, safe_next_path},
    components::{AuthContext, Field, FormAlert, SubmitButton, field_error, general_error},
};

#[component]
pub fn RegisterPage() -> impl IntoView {
    let auth = AuthContext::expect();
    let query = use_query_map();
    let next = Memo::new(move |_| query.read().get("next").and_then(|n| safe_next_path(&n)));
    let action = ServerAction::<Register>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            auth.signed_in();
            navigate(
                &next.get_untracked().unwrap_or_else(|| "/".into()),
                NavigateOptions::default(),
            );
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
                <Field
                    label="Password"
                    name="password"
                    kind="password"
                    autocomplete="new-password"
                    hint="At least 12 characters. A few unrelated words make a strong password."
                    error=field_error(action, "password")
                />
                <Field label="Confirm password" name="password_confirm" kind="password" autocomplete="new-password" error=field_error(action, "password_confirm") />
                <SubmitButton pending=action.pending() label="Create account" pending_label="Creating account…" />
            </ActionForm>
            <p class="switch">"Already have an account? " <A href="/login">"Sign in"</A></p>
        </section>
    }
}
