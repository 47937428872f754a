//! Driving the web console's router in-process (`oneshot`), the way a
//! browser would: a cookie jar of one session, the CSRF token scraped from
//! the page, urlencoded forms.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

/// An answer, with its body as text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Every Set-Cookie header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first `name="csrf" value="…"` on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// Asserts the status, showing the page when it differs.
    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    /// Asserts the page contains `text`.
    #[track_caller]
    pub fn has(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "expected {text:?} in:\n{}",
            self.body
        );
        self
    }

    /// Asserts the page does not contain `text`.
    #[track_caller]
    pub fn lacks(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} in:\n{}",
            self.body
        );
        self
    }
}

/// Percent-encodes a form value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one request with `cookie` (may be empty) as 127.0.0.1:8080.
pub async fn send(
    app: &Router,
    method: &str,
    path: &str,
    cookie: &str,
    form: Option<&[(&str, &str)]>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:8080");
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    let body = match form {
        Some(fields) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(
                fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A logged-in browser: its session cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    /// Logs in through the login form.
    pub async fn login(app: &Router, name: &str, password: &str) -> Session {
        let page = send(app, "GET", "/login", "", None).await;
        page.expect(StatusCode::OK);
        let login_cookie = cookie_pair(&page, "dvsan_login");
        let csrf = page.csrf();
        let answer = send(
            app,
            "POST",
            "/login",
            &login_cookie,
            Some(&[("csrf", &csrf), ("name", name), ("password", password)]),
        )
        .await;
        answer.expect(StatusCode::SEE_OTHER);
        let cookie = cookie_pair(&answer, "dvsan_session");
        let home = send(app, "GET", "/", &cookie, None).await;
        home.expect(StatusCode::OK);
        Session {
            csrf: home.csrf(),
            cookie,
        }
    }

    /// GET as this session.
    pub async fn get(&self, app: &Router, path: &str) -> Answer {
        send(app, "GET", path, &self.cookie, None).await
    }

    /// POST a form with this session's CSRF token.
    pub async fn post(&self, app: &Router, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        send(app, "POST", path, &self.cookie, Some(&all)).await
    }

    /// POST a form without any CSRF token.
    pub async fn post_without_token(
        &self,
        app: &Router,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Answer {
        send(app, "POST", path, &self.cookie, Some(fields)).await
    }
}

/// `name=value` of the cookie `name` an answer sets.
pub fn cookie_pair(answer: &Answer, name: &str) -> String {
    answer
        .set_cookies()
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", answer.set_cookies()))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}
