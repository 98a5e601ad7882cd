//! Confirmation banners, e.g. "You have been signed out".

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The message for a `?notice=` value; unknown values show nothing.
pub fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "signed_out" => "You have been signed out.",
        "session_ended" => "Your session ended. Please sign in again.",
        "password_changed" => "Password changed. Your other devices have been signed out.",
        "others_signed_out" => "All your other devices have been signed out.",
        "session_revoked" => "That session has been signed out.",
        _ => return None,
    })
}

#[component]
pub fn Notice(#[prop(into)] text: Signal<Option<&'static str>>) -> impl IntoView {
    view! {
        <Show when=move || text.get().is_some()>
            <div class="notice" role="status">
                {move || text.get()}
            </div>
        </Show>
    }
}

/// The banner named by the page's `?notice=` query parameter.
#[component]
pub fn QueryNotice() -> impl IntoView {
    let query = use_query_map();
    let text = Signal::derive(move || query.read().get("notice").and_then(|n| notice_text(&n)));
    view! { <Notice text /> }
}
