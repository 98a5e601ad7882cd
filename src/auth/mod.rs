//! Sign-in, sign-out and account server functions, and the types they share
//! with the browser.

mod api;
mod error;
mod mfa;
mod next;
mod notice;
mod passkeys;
mod types;

pub use api::*;
pub use error::{AppError, ErrorCode};
pub use mfa::*;
pub use next::{safe_next_path, verify_path};
pub use notice::Notice;
pub use passkeys::*;
pub use types::*;
