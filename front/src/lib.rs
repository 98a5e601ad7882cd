//! The browser entry point of Portcullis. The app lives in the `portcullis`
//! crate; this crate is only its WASM `cdylib`: Cargo does not run LTO for a
//! crate built as both `cdylib` and `rlib`, so the entry point is built
//! apart, and the release WASM is optimised across every crate.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    portcullis::hydrate();
}
