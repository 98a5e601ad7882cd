use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::components::RequireAuth;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Home" />
        <RequireAuth view=|user| view! {
            <section class="card" aria-labelledby="home-title">
                <h1 id="home-title">"You are signed in"</h1>
                <p class="lede">"Signed in as " <strong data-testid="home-email">{user.email}</strong></p>
                <p>
                    "This page is private. Sign out and it is gone: your session ends on the server at once, "
                    "on every device that still holds a copy of its token."
                </p>
                <div class="actions">
                    <A href="/account" attr:class="button primary">"Account and devices"</A>
                </div>
            </section>
        } />
    }
}
