//! Logging in and out, and who is asking: the session cookie (HttpOnly,
//! SameSite=Strict, Secure wherever a browser keeps a Secure cookie), the
//! [`CurrentUser`] every page requires and the [`Admin`] every change
//! requires.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::http::AppState;
use crate::inventory::{InventoryError, Role, random_token};
use crate::web::csrf::CsrfForm;
use crate::web::display::url_encode;
use crate::web::layout::Layout;
use crate::web::{WebError, render};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dvsan_session";
/// The cookie that carries the login form's CSRF token (there is no
/// session yet to hold it).
pub const LOGIN_COOKIE: &str = "dvsan_login";
/// How long a session lasts, seconds.
pub const SESSION_TTL: i64 = 12 * 3600;

/// The person behind a request, from their session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// Login name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Their session's CSRF token.
    pub csrf: String,
    /// The session cookie's value.
    session_id: String,
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The session of a request, if it has a live one.
pub async fn session_of(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<CurrentUser>, InventoryError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = state.ops.inventory().session(&id).await?;
    Ok(session.map(|s| CurrentUser {
        name: s.user,
        role: s.role,
        csrf: s.csrf_token,
        session_id: id,
    }))
}

/// Where to send someone who is not logged in: the login page, coming
/// back here afterwards.
fn to_login(parts: &Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let target = if here == "/" {
        "/login".to_owned()
    } else {
        format!("/login?next={}", url_encode(&here))
    };
    Redirect::to(&target).into_response()
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        match session_of(&parts.headers, state).await {
            Ok(Some(user)) => {
                parts.extensions.insert(user.clone());
                Ok(user)
            }
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

/// A logged-in admin: what every change requires. A viewer gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.role == Role::Admin {
            Ok(Admin(user))
        } else {
            Err(WebError::Forbidden(format!(
                "{} is a viewer: only an admin may change the SAN or manage accounts",
                user.name
            ))
            .into_response())
        }
    }
}

/// Whether a browser keeps a `Secure` cookie from this request: it came
/// over HTTPS (through a proxy that says so), or to a loopback host, which
/// browsers treat as secure. Over plain HTTP to any other host a `Secure`
/// cookie would be dropped and no one could log in.
fn secure_context(headers: &HeaderMap) -> bool {
    if headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
    {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if secure_context(headers) {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).expect("cookie values are hex")
}

/// Only paths on this site: `/x`, never `//host` or `http://…`.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    layout: Layout,
    csrf: String,
    name: String,
    next: String,
    error: Option<String>,
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// GET /login: the form (or the dashboard when already logged in).
pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    if let Ok(Some(_)) = session_of(&headers, &state).await {
        return Redirect::to(&local_path(q.next.as_deref())).into_response();
    }
    let token = random_token(32);
    let mut response = render(
        StatusCode::OK,
        &LoginPage {
            layout: Layout::bare("Log in"),
            csrf: token.clone(),
            name: String::new(),
            next: local_path(q.next.as_deref()),
            error: None,
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, LOGIN_COOKIE, &token, "/login", 3600),
    );
    response
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// POST /login: a session on the right password, the form again on a
/// wrong one.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, WebError> {
    let inventory = state.ops.inventory();
    let token = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if let Some(wait) = throttle::wait(&form.name) {
        tracing::warn!(user = %form.name, "login refused: too many failed attempts");
        return Ok(render(
            StatusCode::TOO_MANY_REQUESTS,
            &LoginPage {
                layout: Layout::bare("Log in"),
                csrf: token,
                name: form.name,
                next: local_path(form.next.as_deref()),
                error: Some(format!(
                    "Too many failed logins for this name; try again in {} s.",
                    wait.as_secs().max(1)
                )),
            },
        ));
    }
    let Some(user) = inventory.check_login(&form.name, &form.password).await? else {
        tracing::info!(user = %form.name, "login refused");
        throttle::failed(&form.name);
        return Ok(render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                layout: Layout::bare("Log in"),
                csrf: token,
                name: form.name,
                next: local_path(form.next.as_deref()),
                error: Some("Wrong user name or password.".to_owned()),
            },
        ));
    };
    throttle::succeeded(&form.name);
    let session = inventory.create_session(&user.name, SESSION_TTL).await?;
    tracing::info!(user = %user.name, role = %user.role, "logged in");
    let mut response = Redirect::to(&local_path(form.next.as_deref())).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, &session.id, "/", SESSION_TTL),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, LOGIN_COOKIE, "", "/login", 0),
    );
    Ok(response)
}

/// The logout form carries only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {}

/// POST /logout: ends the session.
pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<LogoutForm>,
) -> Result<Response, WebError> {
    state.ops.inventory().end_session(&user.session_id).await?;
    tracing::info!(user = %user.name, "logged out");
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", "/", 0),
    );
    Ok(response)
}

/// Creates the first admin when there is no user at all, with a random
/// password written once to the log; returns it when it did.
pub async fn bootstrap_admin(
    inventory: &crate::inventory::Inventory,
) -> Result<Option<String>, crate::inventory::AccountError> {
    if inventory.user_count().await? > 0 {
        return Ok(None);
    }
    let password = random_token(12);
    inventory.add_user("admin", &password, Role::Admin).await?;
    tracing::warn!(
        "no users yet: created user \"admin\" with password {password} \
         (shown once; change it under Users, or add users with `dvsan station user add`)"
    );
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_path(Some("/volumes/a")), "/volumes/a");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn cookies_are_secure_where_browsers_keep_them() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(secure_context(&h));
        h.insert(header::HOST, HeaderValue::from_static("[::1]:8080"));
        assert!(secure_context(&h));
        h.insert(header::HOST, HeaderValue::from_static("localhost"));
        assert!(secure_context(&h));
        h.insert(
            header::HOST,
            HeaderValue::from_static("station.example.org:8080"),
        );
        assert!(!secure_context(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(secure_context(&h));
        let c = set_cookie(&h, SESSION_COOKIE, "ab", "/", 60);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; dvsan_session=xyz"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }
}

/// Password guessing is slowed per user name: after [`throttle::FREE_TRIES`]
/// failures in a row, each further attempt must wait, doubling from one
/// second up to [`throttle::MAX_WAIT`]. A success clears it. Kept in memory
/// (a restart forgets it), bounded in size.
pub mod throttle {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::{Duration, Instant};

    /// Failures allowed before waiting starts.
    pub const FREE_TRIES: u32 = 5;
    /// Longest wait between attempts.
    pub const MAX_WAIT: Duration = Duration::from_secs(300);
    const MAX_NAMES: usize = 10_000;

    struct Failures {
        count: u32,
        last: Instant,
    }

    static FAILURES: LazyLock<Mutex<HashMap<String, Failures>>> = LazyLock::new(Mutex::default);

    fn wait_after(count: u32) -> Duration {
        if count < FREE_TRIES {
            return Duration::ZERO;
        }
        let doubling = (count - FREE_TRIES).min(16);
        Duration::from_secs(1u64 << doubling).min(MAX_WAIT)
    }

    /// How long `name` must still wait before its next attempt, if at all.
    pub fn wait(name: &str) -> Option<Duration> {
        let map = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
        let f = map.get(name)?;
        let due = f.last + wait_after(f.count);
        due.checked_duration_since(Instant::now())
    }

    /// Counts a failed attempt for `name`.
    pub fn failed(name: &str) {
        let mut map = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_NAMES && !map.contains_key(name) {
            map.retain(|_, f| f.last.elapsed() < MAX_WAIT);
        }
        let f = map.entry(name.to_owned()).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        f.count += 1;
        f.last = Instant::now();
    }

    /// Clears `name`'s failures.
    pub fn succeeded(name: &str) {
        FAILURES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn guessing_waits_longer_and_longer_and_success_clears_it() {
            let name = "throttle-test-user";
            for _ in 0..FREE_TRIES {
                assert!(wait(name).is_none());
                failed(name);
            }
            let w = wait(name).expect("a wait after the free tries");
            assert!(w <= Duration::from_secs(1));
            failed(name);
            assert!(wait(name).unwrap() > Duration::from_secs(1));
            assert_eq!(wait_after(100), MAX_WAIT);
            succeeded(name);
            assert!(wait(name).is_none());
        }
    }
}
