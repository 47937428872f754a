//! CSRF protection: every form carries a hidden `csrf` field that must
//! equal its session's token (or, on the login form, before any session,
//! the login cookie's). [`CsrfForm`] checks it before the form is even
//! parsed, so a POST without it gets 403 whatever else it holds.

use axum::body::{Body, Bytes};
use axum::extract::{Form, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::http::AppState;
use crate::web::WebError;
use crate::web::auth::{CurrentUser, LOGIN_COOKIE, cookie, session_of};

/// Largest form body accepted.
const MAX_FORM: usize = 64 * 1024;

/// A urlencoded form whose CSRF token has been checked.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

/// Compares without an early exit, so timing tells nothing of the token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn forbidden() -> Response {
    WebError::Forbidden(
        "This form did not carry a valid security token. Reload the page and try again.".into(),
    )
    .into_response()
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let expected = match parts.extensions.get::<CurrentUser>() {
            Some(user) => Some(user.csrf.clone()),
            None => match session_of(&parts.headers, state).await {
                Ok(Some(user)) => {
                    let csrf = user.csrf.clone();
                    parts.extensions.insert(user);
                    Some(csrf)
                }
                _ => cookie(&parts.headers, LOGIN_COOKIE).filter(|c| !c.is_empty()),
            },
        };
        let bytes: Bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
        let rebuild = |parts: &axum::http::request::Parts| {
            Request::from_parts(parts.clone(), Body::from(bytes.clone()))
        };
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(rebuild(&parts), state)
            .await
            .map_err(|_| forbidden())?;
        let sent = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
        match (expected, sent) {
            (Some(expected), Some(sent)) if same(&expected, sent) => {}
            _ => {
                tracing::info!(path = %parts.uri.path(), "form refused: CSRF token missing or wrong");
                return Err(forbidden());
            }
        }
        let Form(value) = Form::<T>::from_request(rebuild(&parts), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(CsrfForm(value))
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abcd", "abcd"));
        assert!(!same("abcd", "abce"));
        assert!(!same("abcd", "abc"));
        assert!(!same("", "a"));
    }
}
