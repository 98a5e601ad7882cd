//! UI shared by several pages.

mod form;
mod header;
mod notice;
mod session;

pub use form::{Field, FormAlert, SubmitButton, field_error, general_error};
pub use header::{Header, SignOutButton};
pub use notice::{Notice, QueryNotice};
pub use session::{
    AuthContext, AuthProvider, RequireAuth, SessionWatcher, encode_query_value, login_path,
};
