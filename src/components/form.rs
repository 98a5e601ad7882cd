//! Form pieces: labelled fields with their own error, a form-level alert,
//! and a submit button with a pending state.

use leptos::prelude::*;
use server_fn::ServerFn;

use crate::auth::{AppError, password_rules};

/// The message of the action's last error, if it is about `field`.
pub fn field_error<S>(action: ServerAction<S>, field: &'static str) -> Signal<Option<String>>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    Signal::derive(move || {
        action.value().with(|value| match value {
            Some(Err(error)) => error.message_for(field),
            _ => None,
        })
    })
}

/// The action's last error, unless one of `shown_fields` displays it.
pub fn general_error<S>(
    action: ServerAction<S>,
    shown_fields: &'static [&'static str],
) -> Signal<Option<AppError>>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    Signal::derive(move || {
        action.value().with(|value| match value {
            Some(Err(error))
                if !error
                    .field
                    .as_deref()
                    .is_some_and(|f| shown_fields.contains(&f)) =>
            {
                Some(error.clone())
            }
            _ => None,
        })
    })
}

#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(into)] error: Signal<Option<String>>,
    /// Distinguishes two forms with the same field name on one page.
    #[prop(optional)]
    form: Option<&'static str>,
    /// The keyboard a phone shows (`numeric` for one-time codes).
    #[prop(optional, into)]
    inputmode: MaybeProp<&'static str>,
) -> impl IntoView {
    let id = match form {
        Some(form) => format!("{form}-{name}"),
        None => format!("field-{name}"),
    };
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let has_hint = hint.is_some();
    let described_by = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        move || {
            let mut ids = Vec::new();
            if has_hint {
                ids.push(hint_id.clone());
            }
            if error.get().is_some() {
                ids.push(error_id.clone());
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    // Password fields get a Show/Hide toggle (ASVS 2.1.12). It needs WASM, so
    // it appears only once the page is interactive: never a dead button.
    let (revealed, set_revealed) = signal(false);
    let (interactive, set_interactive) = signal(false);
    Effect::new(move |_| set_interactive.set(true));
    let is_password = kind == "password";
    let input_type = move || {
        if is_password && revealed.get() {
            "text"
        } else {
            kind
        }
    };
    let toggle_target = id.clone();
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            <div class="input-row">
                <input
                    id=id
                    type=input_type
                    name=name
                    autocomplete=autocomplete
                    inputmode=move || inputmode.get()
                    required=true
                    aria-invalid=move || if error.get().is_some() { "true" } else { "false" }
                    aria-describedby=described_by
                />
                {is_password.then(|| view! {
                    <Show when=move || interactive.get()>
                        <button
                            type="button"
                            class="reveal"
                            aria-controls=toggle_target.clone()
                            aria-pressed=move || revealed.get().to_string()
                            aria-label=move || if revealed.get() { format!("Hide {}", label.to_lowercase()) } else { format!("Show {}", label.to_lowercase()) }
                            on:click=move |_| set_revealed.update(|shown| *shown = !*shown)
                        >
                            {move || if revealed.get() { "Hide" } else { "Show" }}
                        </button>
                    </Show>
                })}
            </div>
            {hint.map(|hint| view! { <p class="hint" id=hint_id>{hint}</p> })}
            <Show when=move || error.get().is_some()>
                <p class="field-error" id=error_id.clone()>{move || error.get()}</p>
            </Show>
        </div>
    }
}

/// A field for a new password whose hint states this server's configured
/// minimum length, then `advice`. The rules are read once, while the page
/// renders on the server, and travel to the browser with it.
#[component]
pub fn NewPasswordField(
    label: &'static str,
    name: &'static str,
    advice: &'static str,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let rules = OnceResource::new_blocking(password_rules());
    let field = move |min_chars: Option<usize>| {
        let hint = match min_chars {
            Some(min) => format!("At least {min} characters. {advice}"),
            None => advice.to_string(),
        };
        view! { <Field label name kind="password" autocomplete="new-password" hint error /> }
    };
    view! {
        <Suspense fallback=move || field(None)>
            {move || Suspend::new(async move {
                field(rules.await.ok().map(|rules| rules.min_chars))
            })}
        </Suspense>
    }
}

/// A form-level error, announced to screen readers.
#[component]
pub fn FormAlert(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    view! {
        <Show when=move || error.get().is_some()>
            <div class="alert" role="alert">
                {move || error.get().map(|e| e.message)}
            </div>
        </Show>
    }
}

#[component]
pub fn SubmitButton(
    #[prop(into)] pending: Signal<bool>,
    label: &'static str,
    pending_label: &'static str,
    #[prop(default = "button primary")] class: &'static str,
) -> impl IntoView {
    view! {
        <button type="submit" class=class disabled=move || pending.get() aria-busy=move || pending.get().to_string()>
            {move || if pending.get() { pending_label } else { label }}
        </button>
    }
}
