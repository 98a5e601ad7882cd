//! Static files: the compiled assets under `/pkg` and what `public/` holds,
//! served without touching sessions or the database.
//!
//! The app's three files (`portcullis.js`, `.wasm`, `.css`) are also served
//! under content-hashed names, `portcullis.<hash>.js` and so on, which the
//! pages link to: those answers are `immutable` for a year, so a second
//! visit loads nothing over the network, and a new build is new names.
//! Where the build left precompressed twins (`portcullis.wasm.br`, `.gz`:
//! `cargo leptos build --release --precompress`), they are what is sent,
//! chosen by `Accept-Encoding`; otherwise the file is compressed on the fly.

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use leptos::config::LeptosOptions;
use sha2::{Digest, Sha256};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};
use tower::ServiceExt;
use tower_http::{
    compression::CompressionLayer,
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
};

use super::state::AppState;

/// What a hashed name's answer says about caching.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The app's files in the site's `/pkg` directory and the hashed names they
/// are served under, read once at startup.
#[derive(Debug, Clone)]
pub struct PkgAssets {
    /// `portcullis.<hash>`: the output name the pages are rendered with.
    /// `None` (the plain names, revalidated) when a file is missing, or
    /// under `cargo leptos watch`, which swaps files in place.
    hashed_stem: Option<String>,
    /// Hashed name → file name, both within `/pkg`.
    names: Vec<(String, String)>,
    /// Whether the precompressed twins are there and not older than their
    /// files (a rebuild without `--precompress` leaves stale ones).
    precompressed: bool,
}

impl PkgAssets {
    /// Reads and hashes the app's files under `options`' site.
    pub fn load(options: &LeptosOptions) -> PkgAssets {
        let pkg_dir = pkg_dir(options);
        let stem = options.output_name.to_string();
        // As `HydrationScripts` names the WASM: cargo-leptos sets the output
        // name at compile time and names the file after it; a plain
        // wasm-bindgen build adds `_bg`.
        let wasm_suffix = if option_env!("LEPTOS_OUTPUT_NAME").is_none() {
            "_bg"
        } else {
            ""
        };
        let files = [
            (format!("{stem}.js"), ".js".to_string()),
            (
                format!("{stem}{wasm_suffix}.wasm"),
                format!("{wasm_suffix}.wasm"),
            ),
            (format!("{stem}.css"), ".css".to_string()),
        ];
        let unhashed = PkgAssets {
            hashed_stem: None,
            names: Vec::new(),
            precompressed: precompressed(&pkg_dir, files.iter().map(|(f, _)| f.as_str())),
        };
        if std::env::var_os("LEPTOS_WATCH").is_some() {
            return unhashed;
        }
        let mut digest = Sha256::new();
        for (file, _) in &files {
            match std::fs::read(pkg_dir.join(file)) {
                Ok(bytes) => {
                    digest.update((bytes.len() as u64).to_le_bytes());
                    digest.update(&bytes);
                }
                Err(_) => return unhashed,
            }
        }
        let hash: String = digest.finalize()[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let hashed_stem = format!("{stem}.{hash}");
        PkgAssets {
            names: files
                .iter()
                .map(|(file, ending)| (format!("{hashed_stem}{ending}"), file.clone()))
                .collect(),
            hashed_stem: Some(hashed_stem),
            precompressed: unhashed.precompressed,
        }
    }

    /// The options pages are rendered with: the hashed output name, so
    /// `HydrationScripts` and the stylesheet link name the hashed files.
    pub fn page_options(&self, options: &LeptosOptions) -> LeptosOptions {
        let mut options = options.clone();
        if let Some(stem) = &self.hashed_stem {
            options.output_name = stem.as_str().into();
        }
        options
    }

    /// The file a hashed name stands for.
    fn file_for(&self, name: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|(hashed, _)| hashed == name)
            .map(|(_, file)| file.as_str())
    }
}

fn pkg_dir(options: &LeptosOptions) -> PathBuf {
    Path::new(&*options.site_root).join(&*options.site_pkg_dir)
}

/// Whether every file has both twins, each at least as new as the file.
fn precompressed<'a>(pkg_dir: &Path, files: impl Iterator<Item = &'a str>) -> bool {
    let modified = |path: PathBuf| -> Option<SystemTime> { path.metadata().ok()?.modified().ok() };
    let mut any = false;
    for file in files {
        let Some(original) = modified(pkg_dir.join(file)) else {
            continue;
        };
        for twin in [format!("{file}.br"), format!("{file}.gz")] {
            match modified(pkg_dir.join(&twin)) {
                Some(compressed) if compressed >= original => any = true,
                Some(_) => {
                    tracing::warn!(
                        file = %twin,
                        "a precompressed asset is older than its file; compressing on the fly instead"
                    );
                    return false;
                }
                None => return false,
            }
        }
    }
    any
}

/// Compiled assets under `/pkg` and the files copied from `public/`, served
/// without touching sessions or the database. Hashed names are `immutable`;
/// the plain ones are revalidated (`no-cache`, answered with 304 when
/// unchanged).
pub fn static_routes(options: &LeptosOptions, assets: PkgAssets) -> Router<AppState> {
    let site_root = Path::new(&*options.site_root);
    let mut serve = ServeDir::new(pkg_dir(options));
    if assets.precompressed {
        serve = serve.precompressed_br().precompressed_gzip();
    }
    let pkg = tower::ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .service(serve);
    let assets = Arc::new(assets);
    let mut router = Router::new().nest_service(
        &format!("/{}", options.site_pkg_dir),
        tower::service_fn(move |request: Request| {
            let (pkg, assets) = (pkg.clone(), assets.clone());
            async move { Ok::<_, std::convert::Infallible>(serve_pkg(pkg, &assets, request).await) }
        }),
    );
    let daily = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Ok(entries) = std::fs::read_dir(site_root) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if *name == *options.site_pkg_dir || name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                router = router.nest_service(
                    &format!("/{name}"),
                    tower::ServiceBuilder::new()
                        .layer(daily.clone())
                        .service(ServeDir::new(&path)),
                );
            } else {
                router = router.route_service(
                    &format!("/{name}"),
                    tower::ServiceBuilder::new()
                        .layer(daily.clone())
                        .service(ServeFile::new(&path)),
                );
            }
        }
    }
    router
}

/// One `/pkg` request: a hashed name is its file, cached for good; any
/// other name is the file of that name, revalidated.
async fn serve_pkg<S>(pkg: S, assets: &PkgAssets, mut request: Request) -> Response
where
    S: tower::Service<Request, Error = std::convert::Infallible> + Clone,
    S::Response: IntoResponse,
{
    let name = request.uri().path().trim_start_matches('/');
    let cache = match assets.file_for(name) {
        Some(file) => {
            let Ok(uri) = Uri::builder().path_and_query(format!("/{file}")).build() else {
                return StatusCode::NOT_FOUND.into_response();
            };
            *request.uri_mut() = uri;
            IMMUTABLE
        }
        None => "no-cache",
    };
    let Ok(response) = pkg.oneshot(request).await;
    let mut response = response.into_response();
    // A 404 is not for keeping.
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        // A precompressed twin is one encoding of several: caches keep each.
        let varies = headers.get_all(header::VARY).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
        });
        if !varies {
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    response
}
