//! The request pipeline around every dynamic route, outermost first:
//! security headers and header-size limits (`headers`), the body-read and
//! request deadlines (`deadlines`), readiness, cookies,
//! cross-site request refusal (`csrf`), session resolution with
//! transparent renewal (`session`), and emailed links' tokens moved out of
//! the URL (`links`). `server_fn_status` gives server-function
//! errors their real status code.

pub mod csrf;
pub mod deadlines;
pub mod headers;
pub mod links;
pub mod server_fn_status;
pub mod session;

pub use session::{AuthState, bearer_token};
