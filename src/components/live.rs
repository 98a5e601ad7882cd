//! Live sign-out in the browser: while signed in, the page listens on
//! `/auth/events` (Server-Sent Events) and shows the login page, with "Your
//! session was ended on another device", the moment its session ends
//! elsewhere. Without JavaScript there is nothing to push to: pages notice
//! at the next request, as before.
//!
//! The stream reconnects by itself: at once when the server says `renew`
//! (which renews the cookies, like any request), after a short random pause
//! when the instance says `closing`, and with exponential backoff and
//! jitter after a failure, asking the server for the sign-in state first
//! (a stream refused because the session ended leads to the login page
//! that way). It closes on sign-out.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};

use super::session::{AuthContext, current_path, login_path};
use crate::auth::Notice;

/// The stream of this session's end.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const EVENTS_PATH: &str = "/auth/events";

/// Keeps one stream open while signed in.
#[component]
pub fn LiveSignOut() -> impl IntoView {
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    let location = use_location();
    let signed_in = Memo::new(move |last: Option<&Option<String>>| auth.signed_in_user(last));
    let on_end = move |reason: String| {
        // "logout": this browser signed this session out, and the tab that
        // did it goes on by itself and tells the others.
        if reason != "logout" {
            navigate(
                &login_path(&current_path(&location), Some(Notice::EndedElsewhere)),
                Default::default(),
            );
        }
    };
    let stream = browser::Stream::new(on_end, move || auth.refetch());
    Effect::new(move |_| stream.want(signed_in.get()));
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::{
        cell::{Cell, RefCell},
        rc::Rc,
    };
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{EventSource, MessageEvent};

    use super::EVENTS_PATH;

    /// Longest pause between failed connections.
    const LONGEST_BACKOFF_MS: f64 = 60_000.0;

    /// The page's one stream: open while someone is signed in.
    #[derive(Clone)]
    pub struct Stream(Rc<State>);

    struct State {
        /// Who the stream is for; `None`: no one is signed in.
        user: RefCell<Option<String>>,
        source: RefCell<Option<EventSource>>,
        /// Failed connections in a row.
        failures: Cell<u32>,
        /// A reconnection waiting for its pause.
        timer: Cell<Option<i32>>,
        on_end: Box<dyn Fn(String)>,
        on_failure: Box<dyn Fn()>,
        /// The listeners, made once and shared by every connection.
        handlers: RefCell<Option<Handlers>>,
    }

    struct Handlers {
        ready: js_sys::Function,
        ended: js_sys::Function,
        renew: js_sys::Function,
        closing: js_sys::Function,
        error: js_sys::Function,
        reconnect: js_sys::Function,
    }

    /// A listener that lives as long as the page (the stream does too).
    fn listener(
        stream: &Stream,
        act: impl Fn(&Stream, MessageEvent) + 'static,
    ) -> js_sys::Function {
        let stream = stream.clone();
        let closure = Closure::<dyn Fn(MessageEvent)>::new(move |event| act(&stream, event));
        let function = closure.as_ref().unchecked_ref::<js_sys::Function>().clone();
        closure.forget();
        function
    }

    impl Stream {
        pub fn new(on_end: impl Fn(String) + 'static, on_failure: impl Fn() + 'static) -> Stream {
            let stream = Stream(Rc::new(State {
                user: RefCell::default(),
                source: RefCell::default(),
                failures: Cell::new(0),
                timer: Cell::new(None),
                on_end: Box::new(on_end),
                on_failure: Box::new(on_failure),
                handlers: RefCell::default(),
            }));
            let handlers = Handlers {
                ready: listener(&stream, |s, _| {
                    s.0.failures.set(0);
                    mark_listening(true);
                }),
                ended: listener(&stream, |s, event| {
                    s.close();
                    let data = event.data().as_string().unwrap_or_default();
                    (s.0.on_end)(reason_of(&data).to_string());
                }),
                renew: listener(&stream, |s, _| {
                    s.close();
                    s.connect();
                }),
                closing: listener(&stream, |s, _| {
                    s.close();
                    s.reconnect_in(500.0 + 2000.0 * js_sys::Math::random());
                }),
                error: listener(&stream, |s, _| {
                    // Refused (401, 429, 503) or cut: take over from the
                    // browser's own retry, which knows no backoff.
                    s.close();
                    let failures = s.0.failures.get().saturating_add(1);
                    s.0.failures.set(failures);
                    (s.0.on_failure)();
                    let base =
                        (1000.0 * 2f64.powi(failures.min(10) as i32 - 1)).min(LONGEST_BACKOFF_MS);
                    s.reconnect_in(base * (0.5 + js_sys::Math::random()));
                }),
                reconnect: listener(&stream, |s, _| {
                    s.0.timer.set(None);
                    s.connect();
                }),
            };
            *stream.0.handlers.borrow_mut() = Some(handlers);
            stream
        }

        /// Listens for `user`'s session, or stops for `None`.
        pub fn want(&self, user: Option<String>) {
            if *self.0.user.borrow() == user {
                return;
            }
            self.close();
            if let (Some(timer), Some(window)) = (self.0.timer.take(), web_sys::window()) {
                window.clear_timeout_with_handle(timer);
            }
            self.0.failures.set(0);
            let signed_in = user.is_some();
            *self.0.user.borrow_mut() = user;
            if signed_in {
                self.connect();
            }
        }

        fn connect(&self) {
            if self.0.user.borrow().is_none() || self.0.source.borrow().is_some() {
                return;
            }
            let Ok(source) = EventSource::new(EVENTS_PATH) else {
                return;
            };
            if let Some(handlers) = self.0.handlers.borrow().as_ref() {
                for (name, function) in [
                    ("ready", &handlers.ready),
                    ("ended", &handlers.ended),
                    ("renew", &handlers.renew),
                    ("closing", &handlers.closing),
                    ("error", &handlers.error),
                ] {
                    let _ = source.add_event_listener_with_callback(name, function);
                }
            }
            *self.0.source.borrow_mut() = Some(source);
        }

        fn close(&self) {
            if let Some(source) = self.0.source.borrow_mut().take() {
                source.close();
                mark_listening(false);
            }
        }

        fn reconnect_in(&self, millis: f64) {
            let (Some(window), Some(handlers)) = (
                web_sys::window(),
                self.0
                    .handlers
                    .borrow()
                    .as_ref()
                    .map(|h| h.reconnect.clone()),
            ) else {
                return;
            };
            if self.0.timer.get().is_some() {
                return;
            }
            if let Ok(timer) = window
                .set_timeout_with_callback_and_timeout_and_arguments_0(&handlers, millis as i32)
            {
                self.0.timer.set(Some(timer));
            }
        }
    }

    /// `<body data-live="ready">` while the stream listens (tests wait for it).
    fn mark_listening(listening: bool) {
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = if listening {
                body.set_attribute("data-live", "ready")
            } else {
                body.remove_attribute("data-live")
            };
        }
    }

    /// `{"reason": "…"}` without a JSON parser in the bundle.
    fn reason_of(data: &str) -> &str {
        data.split_once("\"reason\":\"")
            .and_then(|(_, rest)| rest.split('"').next())
            .unwrap_or("")
    }
}

#[cfg(not(feature = "hydrate"))]
mod browser {
    /// Nothing to listen with on the server.
    #[derive(Clone, Copy)]
    pub struct Stream;

    impl Stream {
        pub fn new(_: impl Fn(String) + 'static, _: impl Fn() + 'static) -> Stream {
            Stream
        }

        pub fn want(&self, _: Option<String>) {}
    }
}
