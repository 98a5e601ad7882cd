//! Static files: the compiled assets under `/pkg` and what `public/` holds,
//! served without touching sessions or the database.

use axum::{
    Router,
    http::{HeaderValue, header},
};
use std::path::Path;
use tower_http::{
    compression::CompressionLayer,
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
};

use super::state::AppState;

/// Compiled assets under `/pkg` and the files copied from `public/`, served
/// without touching sessions or the database. `/pkg` names are not hashed,
/// so browsers revalidate (`no-cache`, answered with 304 when unchanged).
pub fn static_routes(options: &leptos::config::LeptosOptions) -> Router<AppState> {
    let site_root = Path::new(&*options.site_root);
    let pkg_dir = site_root.join(&*options.site_pkg_dir);
    let revalidate = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    let mut router = Router::new().nest_service(
        &format!("/{}", options.site_pkg_dir),
        tower::ServiceBuilder::new()
            .layer(revalidate.clone())
            .layer(CompressionLayer::new())
            .service(ServeDir::new(&pkg_dir)),
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
