//! The account page's Passkeys section: the account's passkeys (name,
//! added, last used), "Add a passkey" and "Remove". Passkeys need
//! JavaScript and WebAuthn; without them the section says so and nothing
//! else on the page changes.

use leptos::prelude::*;

use crate::{
    auth::{PasskeyEntry, add_passkey, passkey_registration, passkeys_status, remove_passkey},
    components::{AuthContext, FormAlert, create_passkey, passkeys_supported},
};

#[component]
pub fn PasskeysSection(set_notice: WriteSignal<Option<&'static str>>) -> impl IntoView {
    let auth = AuthContext::expect();
    let version = RwSignal::new(0u64);
    let overview = Resource::new_blocking(move || version.get(), |_| passkeys_status());
    let (supported, set_supported) = signal(false);
    Effect::new(move |_| set_supported.set(passkeys_supported()));
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let (error, set_error) = signal(None::<String>);
    let typed_password = move || Some(password.get_untracked()).filter(|p| !p.is_empty());

    let add = Action::new_local(move |(name, password): &(String, Option<String>)| {
        let (name, password) = (name.clone(), password.clone());
        async move {
            let prompt = passkey_registration(password)
                .await
                .map_err(|e| e.message)?;
            let answer = create_passkey(&prompt.options).await?;
            add_passkey(
                prompt.ceremony,
                answer,
                Some(name).filter(|n| !n.trim().is_empty()),
            )
            .await
            .map_err(|e| e.message)
        }
    });
    let remove = Action::new_local(move |(id, password): &(String, Option<String>)| {
        let (id, password) = (id.clone(), password.clone());
        async move { remove_passkey(id, password).await.map_err(|e| e.message) }
    });
    Effect::new(move |_| {
        for (done, said) in [
            (
                add.value().get(),
                "Passkey added: it signs you in without a password.",
            ),
            (
                remove.value().get(),
                "Passkey removed: it signs in no more.",
            ),
        ] {
            match done {
                Some(Ok(())) => {
                    set_error.set(None);
                    set_notice.set(Some(said));
                    name.set(String::new());
                    password.set(String::new());
                    version.update(|v| *v += 1);
                }
                Some(Err(message)) => set_error.set(Some(message)),
                None => {}
            }
        }
    });

    view! {
        <section class="card" id="passkeys" aria-labelledby="passkeys-title">
            <h2 id="passkeys-title">"Passkeys"</h2>
            <p class="muted">"Sign in with your fingerprint, face or screen lock instead of your password."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading passkeys…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(overview) => {
                            let reauth = overview.reauth_required;
                            view! {
                                <PasskeyList passkeys=overview.passkeys supported remove password />
                                <Show when=move || supported.get()>
                                    <form class="form" on:submit=move |event| {
                                        event.prevent_default();
                                        set_error.set(None);
                                        add.dispatch((name.get_untracked(), typed_password()));
                                    }>
                                        <div class="field">
                                            <label for="passkey-name">"Name (optional)"</label>
                                            <input id="passkey-name" type="text" maxlength="64" placeholder="Laptop" bind:value=name />
                                        </div>
                                        {reauth.then(|| view! {
                                            <div class="field">
                                                <label for="passkey-password">"Password"</label>
                                                <input id="passkey-password" type="password" autocomplete="current-password" bind:value=password />
                                                <p class="hint">"Enter your password to confirm it is you."</p>
                                            </div>
                                        })}
                                        <button type="submit" class="button secondary" disabled=move || add.pending().get()>
                                            {move || if add.pending().get() { "Waiting for your passkey…" } else { "Add a passkey" }}
                                        </button>
                                    </form>
                                </Show>
                            }.into_any()
                        }
                        Err(error) => {
                            auth.notice_session_end(&error);
                            view! { <FormAlert error=Signal::stored(Some(error)) /> }.into_any()
                        }
                    }
                })}
            </Transition>
            <Show when=move || error.get().is_some()>
                <p class="field-error" role="alert">{move || error.get()}</p>
            </Show>
            <Show when=move || !supported.get()>
                <p class="muted">"Passkeys need a browser with JavaScript and WebAuthn."</p>
            </Show>
        </section>
    }
}

#[component]
fn PasskeyList(
    passkeys: Vec<PasskeyEntry>,
    supported: ReadSignal<bool>,
    remove: Action<(String, Option<String>), Result<(), String>>,
    password: RwSignal<String>,
) -> impl IntoView {
    if passkeys.is_empty() {
        return view! { <p data-testid="no-passkeys">"No passkeys yet."</p> }.into_any();
    }
    view! {
        <ul class="sessions" data-testid="passkeys">
            {passkeys.into_iter().map(|passkey| {
                let id = passkey.id.clone();
                let label = format!("Remove {}", passkey.name);
                view! {
                    <li class="session">
                        <div>
                            <strong>{passkey.name.clone()}</strong>
                            <p class="muted">
                                "Added " <time datetime=passkey.created.iso.clone()>{passkey.created.display.clone()}</time>
                                {match passkey.last_used {
                                    Some(used) => view! { " · last used " <time datetime=used.iso.clone()>{used.display.clone()}</time> }.into_any(),
                                    None => view! { " · never used" }.into_any(),
                                }}
                            </p>
                        </div>
                        <Show when=move || supported.get()>
                            <button type="button" class="button danger" aria-label=label.clone()
                                on:click={
                                    let id = id.clone();
                                    move |_| {
                                        let typed = Some(password.get_untracked()).filter(|p| !p.is_empty());
                                        remove.dispatch((id.clone(), typed));
                                    }
                                }
                            >"Remove"</button>
                        </Show>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}
