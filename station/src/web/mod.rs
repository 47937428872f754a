//! The web console: server-rendered pages for storage admins (axum +
//! askama, templates in `templates/` at the repository root), usable
//! without JavaScript. Only this module and the REST API know HTTP and HTML.
//!
//! Every page takes a [`auth::CurrentUser`] (no session: a redirect to the
//! login page), every change an [`auth::Admin`] (a viewer: 403) and a
//! [`csrf::CsrfForm`] (no or a wrong token: 403). Changes go through
//! [`crate::operations::Operations`]; a refused change re-renders its form
//! with the values kept and the reason.

pub mod admin;
pub mod auth;
pub mod csrf;
pub mod dashboard;
pub mod display;
pub mod events;
pub mod layout;
pub mod units;
pub mod volumes;

use askama::Template;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::http::AppState;
use crate::inventory::InventoryError;
use crate::operations::OpError;
use layout::Layout;

/// The console's one stylesheet, served from the binary.
const STYLESHEET: &str = include_str!("../../../templates/dvsan.css");

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/static/dvsan.css", get(stylesheet))
        .route("/units", get(units::list))
        .route("/units/{unit}", get(units::page))
        .route("/units/{unit}/approve", post(units::approve))
        .route("/units/{unit}/groups", post(units::create_group))
        .route(
            "/units/{unit}/groups/{group}/delete",
            post(units::delete_group),
        )
        .route(
            "/units/{unit}/groups/{group}/replace",
            post(units::replace_member),
        )
        .route("/units/{unit}/partitions", post(units::create_partition))
        .route(
            "/units/{unit}/partitions/{index}/grow",
            post(units::grow_partition),
        )
        .route(
            "/units/{unit}/partitions/{index}/delete",
            post(units::delete_partition),
        )
        .route("/volumes", get(volumes::list).post(volumes::allocate))
        .route("/volumes/{name}", get(volumes::page))
        .route("/volumes/{name}/grant", post(volumes::grant))
        .route("/volumes/{name}/revoke", post(volumes::revoke))
        .route(
            "/volumes/{name}/delete",
            get(volumes::confirm_delete).post(volumes::delete),
        )
        .route("/clients", get(volumes::clients))
        .route("/events", get(events::page))
        .route("/users", get(admin::users).post(admin::add_user))
        .route("/users/{name}/delete", post(admin::delete_user))
        .route("/tokens", get(admin::tokens).post(admin::create_token))
        .route("/tokens/{id}/revoke", post(admin::revoke_token))
        .fallback(not_found)
}

/// Any other path gets a plain 404 page. It never redirects to the login
/// page: a browser's own requests (`/favicon.ico`) would then replace the
/// login form's CSRF cookie behind the user's back.
async fn not_found(uri: axum::http::Uri) -> WebError {
    WebError::NotFound(format!("There is no page at {}.", uri.path()))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// Renders a page with a status.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A redirect after a successful POST (303: the browser GETs the target).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Something failed inside the station; logged, not shown.
    #[error("{0}")]
    Internal(String),
}

impl From<InventoryError> for WebError {
    fn from(e: InventoryError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<OpError> for WebError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::NotFound(m) => WebError::NotFound(m),
            other => WebError::Internal(other.to_string()),
        }
    }
}

/// The page shown for an error.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    message: String,
}

/// Path parameters; one that does not parse (a group number that is not
/// a number) is a page that does not exist, shown as the console's 404.
pub struct Params<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Params(v)),
            Err(e) => Err(WebError::NotFound(format!(
                "No such page: {}.",
                e.body_text()
            ))),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m),
            WebError::Internal(m) => {
                // Logged once, here; the browser gets no internals.
                tracing::error!(error = %m, "web console");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The station could not complete this request; its log says why.".to_owned(),
                )
            }
        };
        render(
            status,
            &ErrorPage {
                layout: Layout::bare(heading),
                status: status.as_u16(),
                heading,
                message,
            },
        )
    }
}

/// The HTTP status a refused change is answered with when its form is
/// shown again.
pub(crate) fn form_status(e: &OpError) -> StatusCode {
    match e {
        OpError::NotFound(_) => StatusCode::NOT_FOUND,
        OpError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        OpError::Conflict(_) | OpError::NoSpace(_) => StatusCode::CONFLICT,
        OpError::Unit(_) => StatusCode::BAD_GATEWAY,
        OpError::Inventory(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The message a refused change shows on its form: the operation's own
/// words as a sentence, except for internal failures, which are logged
/// instead.
pub(crate) fn form_message(e: &OpError) -> String {
    match e {
        OpError::Inventory(inner) => {
            tracing::error!(error = %inner, "web console change");
            "The station could not record this change; its log says why.".to_owned()
        }
        other => sentence(&other.to_string()),
    }
}

/// `text` with a capital first letter and a full stop.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let rest = chars.as_str();
    let stop = if rest.ends_with(['.', '!', '?']) {
        ""
    } else {
        "."
    };
    format!("{}{rest}{stop}", first.to_uppercase())
}
