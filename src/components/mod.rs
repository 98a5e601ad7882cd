//! UI shared by several pages.

mod form;
mod header;
mod live;
mod notice;
mod passkey;
mod session;

pub use form::{Field, FormAlert, NewPasswordField, SubmitButton, field_error, general_error};
pub use header::{Header, SignOutButton};
pub use live::LiveSignOut;
pub use notice::{NoticeBanner, QueryNotice};
pub use passkey::{create_passkey, get_passkey, passkeys_supported};
pub use session::{
    AuthContext, AuthProvider, RequireAuth, SessionWatcher, encode_query_value,
    go_on_after_sign_in, login_path, next_from_query,
};
