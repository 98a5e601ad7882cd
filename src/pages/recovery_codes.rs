//! `/account/recovery-codes`: the recovery codes just made, shown once, with
//! "Copy" (JavaScript) and "Download as .txt" (a plain link). They come
//! from a short-lived sealed cookie of this session, never from storage.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{NavigateOptions, components::A, hooks::use_navigate};

use crate::{
    auth::{ForgetRecoveryCodes, Notice, shown_recovery_codes},
    components::{AuthContext, FormAlert, RequireAuth, SubmitButton, general_error},
};

#[component]
pub fn RecoveryCodesPage() -> impl IntoView {
    view! {
        <Title text="Recovery codes" />
        <RequireAuth view=|_| view! { <RecoveryCodes /> } />
    }
}

#[component]
fn RecoveryCodes() -> impl IntoView {
    let auth = AuthContext::expect();
    let codes = Resource::new_blocking(|| (), |_| shown_recovery_codes());
    let done = ServerAction::<ForgetRecoveryCodes>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if done.value().with(|value| matches!(value, Some(Ok(())))) {
            navigate(Notice::RecoveryCodesSaved.url(), NavigateOptions::default());
        }
    });
    let (interactive, set_interactive) = signal(false);
    Effect::new(move |_| set_interactive.set(true));
    let (copied, set_copied) = signal(false);

    view! {
        <section class="card" aria-labelledby="codes-title">
            <h1 id="codes-title">"Your recovery codes"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match codes.await {
                        Ok(codes) if codes.is_empty() => view! {
                            <p>"There are no new recovery codes to show: they are shown only just after they are made."</p>
                            <p><A href="/account#two-factor">"Back to your account"</A></p>
                        }.into_any(),
                        Ok(codes) => {
                            let text = codes.join("\n");
                            view! {
                                <p class="lede">
                                    "Each code signs you in once if you lose your authenticator app. \
                                     They are shown only now: save them somewhere safe, such as a password manager."
                                </p>
                                <ol class="recovery-codes" data-testid="recovery-codes">
                                    {codes.into_iter().map(|code| view! { <li><code>{code}</code></li> }).collect_view()}
                                </ol>
                                <div class="actions">
                                    <a class="button secondary" href="/account/recovery-codes.txt" download="portcullis-recovery-codes.txt" rel="external">
                                        "Download as .txt"
                                    </a>
                                    <Show when=move || interactive.get()>
                                        <button
                                            type="button"
                                            class="button secondary"
                                            on:click={
                                                let text = text.clone();
                                                move |_| set_copied.set(copy_to_clipboard(&text))
                                            }
                                        >
                                            {move || if copied.get() { "Copied" } else { "Copy" }}
                                        </button>
                                    </Show>
                                </div>
                                <ActionForm action=done attr:class="form">
                                    <FormAlert error=general_error(done, &[]) />
                                    <SubmitButton pending=done.pending() label="I have saved them" pending_label="Saving…" />
                                </ActionForm>
                            }.into_any()
                        }
                        Err(error) => {
                            auth.notice_session_end(&error);
                            view! { <FormAlert error=Signal::stored(Some(error)) /> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// `navigator.clipboard.writeText(text)`; whether it could be asked.
#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: &str) -> bool {
    use wasm_bindgen::{JsCast, JsValue};
    let copy = || -> Option<()> {
        let navigator =
            js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
        let clipboard = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")).ok()?;
        let write = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText"))
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()?;
        write.call1(&clipboard, &JsValue::from_str(text)).ok()?;
        Some(())
    };
    copy().is_some()
}

#[cfg(not(feature = "hydrate"))]
fn copy_to_clipboard(_: &str) -> bool {
    false
}
