//! `dvsan station` as a child process for end-to-end tests.
#![allow(dead_code)]

pub use super::binary::dvsan;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

pub struct Running {
    pub child: Child,
    /// Where the REST API and web console listen.
    pub web: std::net::SocketAddr,
}

impl Running {
    /// The REST API's base URL.
    pub fn api(&self) -> String {
        format!("http://{}/api/v1", self.web)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the station with SNMPv3 user `user` and returns it with the
/// address it listens on for notifications.
pub fn start_station(
    db: &str,
    user: &str,
    auth: &str,
    privacy: &str,
) -> (Running, std::net::SocketAddr) {
    start_station_with(db, user, auth, privacy, &["--poll-interval", "60"])
}

/// [`start_station`] with extra flags.
pub fn start_station_with(
    db: &str,
    user: &str,
    auth: &str,
    privacy: &str,
    extra: &[&str],
) -> (Running, std::net::SocketAddr) {
    let mut child = dvsan()
        .args([
            "station",
            "--db",
            db,
            "--trap-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .args(["--snmp-user", user])
        .env("DVSAN_SNMP_AUTH_PASS", auth)
        .env("DVSAN_SNMP_PRIV_PASS", privacy)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start dvsan station");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            for marker in ["listening for notifications on ", "web console on http://"] {
                if let Some(addr) = line.split(marker).nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or("");
                    let _ = tx.send(addr.trim_end_matches('/').to_string());
                }
            }
        }
    });
    let next = || -> std::net::SocketAddr {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the station says where it listens")
            .parse()
            .expect("an address")
    };
    let trap = next();
    let web = next();
    (Running { child, web }, trap)
}
