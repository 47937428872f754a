//! The station's REST API as the `dvsan unit …` and `dvsan volume …`
//! commands see it: a base URL, a bearer token from `DVSAN_TOKEN`, and JSON
//! errors turned into one line.

use anyhow::{Context, anyhow};
use clap::Args;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the station is, for client commands.
#[derive(Debug, Clone, Args)]
pub struct StationUrl {
    /// The station's web address
    #[arg(
        long,
        value_name = "URL",
        env = "DVSAN_STATION_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub station_url: String,
}

/// A client of one station's API.
pub struct ApiClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// Percent-encodes one path segment (a CIDR's '/' included).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ApiClient {
    /// A client of the station at `url`, with the token in `DVSAN_TOKEN`.
    pub fn new(url: &StationUrl) -> anyhow::Result<Self> {
        let token = std::env::var("DVSAN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "DVSAN_TOKEN is not set; create a token with `dvsan station token create NAME`"
                )
            })?;
        let base = url.station_url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(anyhow!("--station-url {base:?} must start with http://"));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build()
            .new_agent();
        Ok(ApiClient { base, token, agent })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn finish<T: DeserializeOwned>(
        &self,
        what: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Option<T>> {
        let mut response = response.with_context(|| format!("{what}: asking {}", self.base))?;
        let status = response.status();
        if status.as_u16() == 204 {
            return Ok(None);
        }
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("{what}: reading the station's answer"))?;
        if !status.is_success() {
            let (code, message) = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    Some((
                        v.get("code")?.as_str()?.to_string(),
                        v.get("message")?.as_str()?.to_string(),
                    ))
                })
                .unwrap_or_else(|| (status.to_string(), text.trim().to_string()));
            return Err(anyhow!("{what}: {message} ({code})"));
        }
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{what}: the station's answer is not the expected JSON"))
    }

    /// GET `path`.
    pub fn get<T: DeserializeOwned>(&self, what: &str, path: &str) -> anyhow::Result<T> {
        let r = self
            .agent
            .get(self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.finish(what, r)?
            .ok_or_else(|| anyhow!("{what}: the station answered nothing"))
    }

    /// POST `body` to `path`.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let r = self
            .agent
            .post(self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_json(body);
        self.finish(what, r)?
            .ok_or_else(|| anyhow!("{what}: the station answered nothing"))
    }

    /// DELETE `path`; the answer, if any.
    pub fn delete<T: DeserializeOwned>(&self, what: &str, path: &str) -> anyhow::Result<Option<T>> {
        let r = self
            .agent
            .delete(self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.finish(what, r)
    }
}

/// Prints rows as an aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// MiB for people (`512 MiB`, `1.5 GiB`), as the web console shows them.
pub fn human_mib(mib: u64) -> String {
    dvsan_station::web::display::mib(i64::try_from(mib).unwrap_or(i64::MAX))
}
