//! Confirmation banners, e.g. "You have been signed out".

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::auth::Notice;

#[component]
pub fn NoticeBanner(#[prop(into)] text: Signal<Option<&'static str>>) -> impl IntoView {
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
    let text = Signal::derive(move || {
        query
            .read()
            .get("notice")
            .and_then(|n| Notice::parse(&n))
            .map(Notice::text)
    });
    view! { <NoticeBanner text /> }
}
