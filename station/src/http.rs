//! The station's HTTP side: the REST API under `/api/v1` and the web
//! console, served on `--web-listen`.

use std::net::SocketAddr;

use axum::Router;

use crate::operations::Operations;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The station's operations (and through them, the inventory).
    pub ops: Operations,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", crate::api::router(state.clone()))
        .merge(crate::web::router())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // No user yet: the first admin, with its password in the log once.
    if let Err(e) = crate::web::auth::bootstrap_admin(state.ops.inventory()).await {
        tracing::error!(error = %e, "creating the first admin");
    }
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
