//! The web console: server-rendered pages for storage admins.

use axum::Router;

use crate::http::AppState;

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
