//! The browser's passkey prompt, from the hydrated app: the server's
//! WebAuthn options (JSON text) go through `PublicKeyCredential.parse…FromJSON`
//! into `navigator.credentials.create/get`, and the answer's `toJSON()` goes
//! back as text. Called through `js-sys` reflection, so no JavaScript file is
//! served and the CSP stays as it is. On the server, and in a browser
//! without WebAuthn, passkeys are simply not offered.

/// Whether this browser can do passkeys here.
#[cfg(feature = "hydrate")]
pub fn passkeys_supported() -> bool {
    bridge::public_key_credential()
        .and_then(|pkc| bridge::method(&pkc, "parseCreationOptionsFromJSON"))
        .is_some()
}

#[cfg(not(feature = "hydrate"))]
pub fn passkeys_supported() -> bool {
    false
}

/// `navigator.credentials.create` with the server's options: the answer, as
/// JSON text.
pub async fn create_passkey(options: &str) -> Result<String, String> {
    ceremony(options, "parseCreationOptionsFromJSON", "create").await
}

/// `navigator.credentials.get` with the server's options: the answer, as
/// JSON text.
pub async fn get_passkey(options: &str) -> Result<String, String> {
    ceremony(options, "parseRequestOptionsFromJSON", "get").await
}

#[cfg(feature = "hydrate")]
use bridge::ceremony;

#[cfg(not(feature = "hydrate"))]
async fn ceremony(_: &str, _: &str, _: &str) -> Result<String, String> {
    Err(UNSUPPORTED.into())
}

const UNSUPPORTED: &str = "This browser cannot use passkeys.";

#[cfg(feature = "hydrate")]
mod bridge {
    use js_sys::{Function, JSON, Object, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    fn get(target: &JsValue, name: &str) -> Option<JsValue> {
        Reflect::get(target, &JsValue::from_str(name))
            .ok()
            .filter(|value| !value.is_undefined() && !value.is_null())
    }

    pub fn method(target: &JsValue, name: &str) -> Option<Function> {
        get(target, name)?.dyn_into::<Function>().ok()
    }

    pub fn public_key_credential() -> Option<JsValue> {
        get(&js_sys::global(), "PublicKeyCredential")
    }

    /// One ceremony: parse the options, ask the browser, serialise the
    /// answer. A person who cancels the prompt gets a plain message.
    pub async fn ceremony(options: &str, parse: &str, call: &str) -> Result<String, String> {
        let unsupported = || super::UNSUPPORTED.to_string();
        let pkc = public_key_credential().ok_or_else(unsupported)?;
        let parse = method(&pkc, parse).ok_or_else(unsupported)?;
        let options = JSON::parse(options).map_err(|_| unsupported())?;
        let public_key = get(&options, "publicKey").ok_or_else(unsupported)?;
        let public_key = parse.call1(&pkc, &public_key).map_err(|_| unsupported())?;
        let navigator = get(&js_sys::global(), "navigator").ok_or_else(unsupported)?;
        let credentials = get(&navigator, "credentials").ok_or_else(unsupported)?;
        let call = method(&credentials, call).ok_or_else(unsupported)?;
        let request = Object::new();
        Reflect::set(&request, &JsValue::from_str("publicKey"), &public_key)
            .map_err(|_| unsupported())?;
        let promise: Promise = call
            .call1(&credentials, &request)
            .map_err(|_| unsupported())?
            .dyn_into()
            .map_err(|_| unsupported())?;
        let credential = JsFuture::from(promise).await.map_err(|error| {
            let name = get(&error, "name")
                .and_then(|n| n.as_string())
                .unwrap_or_default();
            match name.as_str() {
                "NotAllowedError" | "AbortError" => {
                    "The passkey prompt was closed or timed out.".to_string()
                }
                "InvalidStateError" => "This passkey is registered already.".to_string(),
                _ => "The passkey prompt failed. Try again.".to_string(),
            }
        })?;
        let to_json = method(&credential, "toJSON").ok_or_else(unsupported)?;
        let answer = to_json.call0(&credential).map_err(|_| unsupported())?;
        JSON::stringify(&answer)
            .ok()
            .and_then(|text| text.as_string())
            .ok_or_else(unsupported)
    }
}
