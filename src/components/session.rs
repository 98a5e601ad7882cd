//! The browser's knowledge of its own sign-in state, shared by every page.
//!
//! [`AuthContext`] holds the `current_user` answer as a resource. It is
//! rendered on the server from the session the middleware resolved, hydrated
//! as is, and re-asked on every client-side navigation, so a session ended
//! elsewhere is noticed at the next page change. A server call that answers
//! "session ended" marks it ended at once. After this tab's own sign-out the
//! server's answer already says who is signed in (nobody): the page it goes
//! to is shown from that, without asking again. Tabs of one browser tell each other
//! about sign-in and sign-out over a `BroadcastChannel`, without polling.

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    components::Redirect,
    hooks::{use_location, use_navigate, use_query_map},
};

use server_fn::ServerFn;

use crate::auth::{
    AppError, AuthStatus, Notice, SessionUser, SignInStep, current_user, safe_next_path,
    verify_path,
};

/// The channel tabs of one browser use to announce sign-in and sign-out.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub const AUTH_CHANNEL: &str = "portcullis-auth";
const SIGNED_OUT: &str = "signed-out";
const SIGNED_IN: &str = "signed-in";

/// Pages anyone may see; every other page needs a session.
const PUBLIC_PATHS: &[&str] = &["/login", "/register"];

#[derive(Clone, Copy)]
pub struct AuthContext {
    status: Resource<Result<AuthStatus, AppError>>,
    version: RwSignal<u64>,
    /// Set when a server call answered "session ended"; cleared on sign-in.
    ended: RwSignal<bool>,
    /// Set while this tab signs its own session out: the end that follows
    /// is no news from elsewhere.
    leaving: RwSignal<bool>,
    /// The sign-in state a sign-out here just established, and the path it
    /// holds for: the next fetch of that path answers it without a request.
    told: StoredValue<Option<(String, AuthStatus)>>,
    pathname: Memo<String>,
}

impl AuthContext {
    pub fn expect() -> Self {
        expect_context()
    }

    /// The sign-in state. Await it inside `Suspense`/`Transition`.
    pub async fn status(self) -> Result<AuthStatus, AppError> {
        if self.ended.get() {
            return Ok(AuthStatus::SessionEnded);
        }
        self.status.await
    }

    pub async fn user(self) -> Option<SessionUser> {
        self.status().await.ok().and_then(|s| s.user().cloned())
    }

    /// The signed-in user's id, tracked; while the state is being asked
    /// again, the last answer (so a navigation does not look like a sign-out).
    pub fn signed_in_user(self, last: Option<&Option<String>>) -> Option<String> {
        if self.ended.get() || self.leaving.get() {
            return None;
        }
        match self.status.get() {
            Some(Ok(status)) => status.user().map(|user| user.id.clone()),
            // Not an answer about the session (the server is unavailable).
            Some(Err(_)) | None => last.cloned().flatten(),
        }
    }

    pub fn refetch(self) {
        self.version.update(|v| *v += 1);
    }

    /// This tab is signing its own session out (`false`: it failed to).
    pub fn leaving(self, leaving: bool) {
        self.leaving.set(leaving);
    }

    /// This tab just signed in.
    pub fn signed_in(self) {
        self.ended.set(false);
        self.leaving.set(false);
        self.refetch();
        broadcast(SIGNED_IN);
    }

    /// This tab's session just ended on its own request (sign-out, or a
    /// password reset); it goes on to `to`, and other tabs follow. The
    /// server cleared the cookies in that answer, so the page at `to` is
    /// shown as signed out at once, with no second request.
    pub fn signed_out(self, navigate: &impl Fn(&str, NavigateOptions), to: &str) {
        self.ended.set(false);
        let path = to.split(['?', '#']).next().unwrap_or(to).to_string();
        let stays = path == self.pathname.get_untracked();
        self.told.set_value(Some((path, AuthStatus::SignedOut)));
        if stays {
            // Only the query changes: nothing else asks again.
            self.refetch();
        }
        broadcast(SIGNED_OUT);
        navigate(to, NavigateOptions::default());
    }

    /// This browser's session may just have ended (it was one of an
    /// account's other sessions, or of another account): ask again, and tell
    /// the other tabs to.
    pub fn session_may_have_ended(self) {
        self.ended.set(false);
        self.refetch();
        broadcast(SIGNED_OUT);
    }

    /// If `error` means the session is over, switch to the signed-out state
    /// (pages then show the login page with "Your session ended").
    pub fn notice_session_end(self, error: &AppError) -> bool {
        let ended = error.code.ends_session();
        if ended {
            self.ended.set(true);
        }
        ended
    }
}

/// Provides [`AuthContext`] to everything inside the router.
#[component]
pub fn AuthProvider(children: Children) -> impl IntoView {
    let location = use_location();
    let version = RwSignal::new(0u64);
    let told = StoredValue::new(None::<(String, AuthStatus)>);
    let status = Resource::new_blocking(
        move || (version.get(), location.pathname.get()),
        move |(_, path)| {
            // A told state is used once, and only for the path it was for.
            let told = told
                .try_update_value(Option::take)
                .flatten()
                .filter(|(for_path, _)| *for_path == path);
            async move {
                match told {
                    Some((_, status)) => Ok(status),
                    None => current_user().await,
                }
            }
        },
    );
    provide_context(AuthContext {
        status,
        version,
        ended: RwSignal::new(false),
        leaving: RwSignal::new(false),
        told,
        pathname: location.pathname,
    });
    children()
}

/// The page's `?next=`, if it is a same-site path.
pub fn next_from_query() -> Memo<Option<String>> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get("next").and_then(|n| safe_next_path(&n)))
}

/// What a sign-in action's answer means for the page.
pub trait SignInAnswer {
    /// The password was right and `/login/verify` is next.
    fn needs_second_factor(&self) -> bool;
}

impl SignInAnswer for SessionUser {
    fn needs_second_factor(&self) -> bool {
        false
    }
}

impl SignInAnswer for SignInStep {
    fn needs_second_factor(&self) -> bool {
        matches!(self, SignInStep::SecondFactor)
    }
}

/// After a successful sign-in step (the password, or the second factor):
/// on to `/login/verify` when a code is still needed; otherwise tells this
/// browser's other tabs and goes on to `next`, or home.
pub fn go_on_after_sign_in<S>(action: ServerAction<S>, next: Memo<Option<String>>)
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: SignInAnswer + Send + Sync + 'static,
{
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    Effect::new(move |_| {
        let step = action.value().with(|value| match value {
            Some(Ok(answer)) => Some(answer.needs_second_factor()),
            _ => None,
        });
        match step {
            Some(true) => navigate(
                &verify_path(next.get_untracked().as_deref()),
                NavigateOptions::default(),
            ),
            Some(false) => {
                auth.signed_in();
                navigate(
                    &next.get_untracked().unwrap_or_else(|| "/".into()),
                    NavigateOptions::default(),
                );
            }
            None => {}
        }
    });
}

/// `/login?next=<here>[&notice=<why>]`.
pub fn login_path(here: &str, notice: Option<Notice>) -> String {
    let mut query = Vec::new();
    if here != "/" && !here.is_empty() {
        query.push(format!("next={}", encode_query_value(here)));
    }
    if let Some(notice) = notice {
        query.push(format!("notice={}", notice.code()));
    }
    if query.is_empty() {
        "/login".to_string()
    } else {
        format!("/login?{}", query.join("&"))
    }
}

/// Percent-encodes a value for a query string (keeps `/` readable).
pub fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Shows `view` for a signed-in user; anyone else is sent to the login page
/// (an HTTP redirect when rendered on the server, client-side navigation in
/// the browser), with `next` set to come back here.
#[component]
pub fn RequireAuth<F, V>(view: F) -> impl IntoView
where
    F: Fn(SessionUser) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let auth = AuthContext::expect();
    let location = use_location();
    // The page's own path. Once the app is on its way elsewhere, this page
    // is going away and sends no one to the login page: after a sign-out
    // here, the page it goes to knows the new state at once, possibly
    // while this one is still in the document.
    let here = location.pathname.get_untracked();
    let view = StoredValue::new(view);
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let location = location.clone();
                let here = here.clone();
                Suspend::new(async move {
                match auth.status().await {
                    Ok(AuthStatus::SignedIn(user)) => view.with_value(|v| v(user)).into_any(),
                    Ok(_) if location.pathname.get_untracked() != here => ().into_any(),
                    Ok(status) => {
                        let ended = (status == AuthStatus::SessionEnded).then_some(Notice::SessionEnded);
                        let to = login_path(&current_path(&location), ended);
                        view! { <Redirect path=to /> }.into_any()
                    }
                    Err(error) => {
                        set_error_status(&error);
                        view! { <crate::components::FormAlert error=Signal::stored(Some(error)) /> }.into_any()
                    }
                }
            })
            }}
        </Transition>
    }
}

/// During server rendering, a page that could not be built answers with the
/// status of its error (503 while the database is away), not 200.
fn set_error_status(error: &AppError) {
    #[cfg(feature = "ssr")]
    if let (Some(response), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        axum::http::StatusCode::from_u16(error.code.status()),
    ) {
        response.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = error;
}

/// The page's path and query, to come back to after signing in.
pub fn current_path(location: &leptos_router::location::Location) -> String {
    format!(
        "{}{}",
        location.pathname.get_untracked(),
        search_part(&location.search.get_untracked())
    )
}

fn search_part(search: &str) -> String {
    if search.is_empty() || search.starts_with('?') {
        search.to_string()
    } else {
        format!("?{search}")
    }
}

/// Client-side watcher: marks the page hydrated (tests wait for it) and
/// follows sign-in and sign-out announced by other tabs.
#[component]
pub fn SessionWatcher() -> impl IntoView {
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    let location = use_location();
    Effect::new(move |_| {
        let navigate = navigate.clone();
        listen(move |message| match message.as_str() {
            SIGNED_OUT => {
                let path = location.pathname.get_untracked();
                if PUBLIC_PATHS.contains(&path.as_str()) {
                    auth.refetch();
                } else {
                    navigate(Notice::SignedOut.url(), NavigateOptions::default());
                }
            }
            SIGNED_IN => {
                // A sign-in here after this tab signed out: listen again.
                auth.leaving(false);
                auth.refetch();
            }
            _ => {}
        });
        mark_hydrated();
    });
}

// The page's one channel: it listens, and it sends, so this tab does not
// hear its own news (a channel object never receives what it posted).
#[cfg(feature = "hydrate")]
thread_local! {
    static CHANNEL: std::cell::RefCell<Option<web_sys::BroadcastChannel>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(feature = "hydrate")]
fn channel() -> Option<web_sys::BroadcastChannel> {
    CHANNEL.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = web_sys::BroadcastChannel::new(AUTH_CHANNEL).ok();
        }
        cell.clone()
    })
}

#[cfg(feature = "hydrate")]
fn broadcast(message: &str) {
    if let Some(channel) = channel() {
        let _ = channel.post_message(&wasm_bindgen::JsValue::from_str(message));
    }
}

#[cfg(not(feature = "hydrate"))]
fn broadcast(_: &str) {}

#[cfg(feature = "hydrate")]
fn listen(on_message: impl Fn(String) + 'static) {
    use wasm_bindgen::{JsCast, closure::Closure};

    let Some(channel) = channel() else {
        return;
    };
    let handler =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(message) = event.data().as_string() {
                on_message(message);
            }
        });
    channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    // The watcher lives as long as the page: so do the channel (kept in
    // `CHANNEL`) and the handler.
    handler.forget();
}

#[cfg(not(feature = "hydrate"))]
fn listen(_: impl Fn(String) + 'static) {}

#[cfg(feature = "hydrate")]
fn mark_hydrated() {
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

#[cfg(not(feature = "hydrate"))]
fn mark_hydrated() {}

#[cfg(test)]
mod tests {
    use super::login_path;
    use crate::auth::Notice;

    #[test]
    fn login_paths_carry_where_to_return_and_why() {
        assert_eq!(login_path("/", None), "/login");
        assert_eq!(login_path("/account", None), "/login?next=/account");
        assert_eq!(
            login_path("/account?tab=a b", Some(Notice::SessionEnded)),
            "/login?next=/account%3Ftab%3Da%20b&notice=session_ended"
        );
        assert_eq!(
            login_path("/", Some(Notice::EndedElsewhere)),
            "/login?notice=ended_elsewhere"
        );
    }
}
