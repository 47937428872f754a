//! net-snmp's command-line tools and daemons for tests, with their state
//! kept in the test's own directory. Shared by every crate's tests that
//! talk to net-snmp (included by path).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs net-snmp's command-line tools with state in a private directory.
pub struct NetSnmp {
    dir: tempfile::TempDir,
}

/// How a tool authenticates.
#[derive(Clone)]
pub enum Auth {
    V2c(&'static str),
    V3 {
        user: &'static str,
        auth: &'static str,
        privacy: &'static str,
    },
}

pub const V3_USER: &str = "dvsanadmin";
pub const V3_AUTH: &str = "auth-pass-123";
pub const V3_PRIV: &str = "priv-pass-456";

pub fn v3() -> Auth {
    Auth::V3 {
        user: V3_USER,
        auth: V3_AUTH,
        privacy: V3_PRIV,
    }
}

impl Auth {
    pub fn args(&self) -> Vec<String> {
        match self {
            Auth::V2c(c) => vec!["-v2c".into(), "-c".into(), c.to_string()],
            Auth::V3 {
                user,
                auth,
                privacy,
            } => vec![
                "-v3".into(),
                "-l".into(),
                "authPriv".into(),
                "-u".into(),
                user.to_string(),
                "-a".into(),
                "SHA-256".into(),
                "-A".into(),
                auth.to_string(),
                "-x".into(),
                "AES".into(),
                "-X".into(),
                privacy.to_string(),
            ],
        }
    }
}

/// Fails the test with the Debian package to install when a tool is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run scripts/test, or apt-get install -y {package}"
    );
}

impl NetSnmp {
    pub fn new() -> Self {
        require_tool("snmpget", "snmp");
        NetSnmp {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A tool's command with dvsan's test defaults: numeric OIDs, no MIBs
    /// loaded, one second timeout, one retry, state in the temp dir.
    pub fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env("SNMP_PERSISTENT_DIR", self.dir.path())
            .env("SNMPCONFPATH", self.dir.path())
            .env("HOME", self.dir.path())
            .env("MIBS", "")
            .args(["-m", "", "-r", "1", "-t", "2"]);
        cmd
    }

    /// Runs `tool` with `auth`, options and the agent address, then `args`.
    pub fn run(&self, tool: &str, auth: &Auth, opts: &[&str], peer: &str, args: &[&str]) -> Output {
        let mut cmd = self.command(tool);
        cmd.args(auth.args()).args(opts).arg(peer).args(args);
        run_bounded(cmd, Duration::from_secs(60))
    }
}

/// Runs a command, killing it if it takes longer than `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A path under the repository root (found from the crate being tested,
/// whichever crate includes this file).
pub fn repo_path(rel: &str) -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("mibs").join("DVSAN-MIB.txt").exists() {
        if !dir.pop() {
            panic!(
                "the repository root is not above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
    dir.join(rel)
}

/// Runs scripts/fetch-mibs and returns the cache of IETF modules that
/// DVSAN-MIB imports (for symbolic names in net-snmp's tools).
pub fn ietf_mibs() -> String {
    require_tool("npm", "npm");
    let out = Command::new(repo_path("scripts/fetch-mibs"))
        .output()
        .expect("run scripts/fetch-mibs");
    assert!(
        out.status.success(),
        "scripts/fetch-mibs failed: {}",
        stderr(&out)
    );
    stdout(&out).trim().to_string()
}

/// A free UDP port on 127.0.0.1 for a daemon that must be given one (the
/// port is free when this returns; the daemon binds it right after).
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// A running net-snmp daemon, killed on drop.
pub struct Daemon {
    pub child: std::process::Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn addr(&self) -> std::net::SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().expect("addr")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl NetSnmp {
    /// net-snmp's snmpd on a free loopback port with the test users:
    /// community `public` (read), `private` (write), and the v3 user.
    pub fn snmpd(&self) -> Daemon {
        require_tool("snmpd", "snmpd");
        let conf = self.dir().join("snmpd.conf");
        std::fs::write(
            &conf,
            format!(
                "rocommunity public 127.0.0.1\nrwcommunity private 127.0.0.1\n\
                 createUser {V3_USER} SHA-256 {V3_AUTH} AES {V3_PRIV}\nrwuser {V3_USER} priv\n"
            ),
        )
        .expect("write snmpd.conf");
        for _ in 0..5 {
            let port = free_udp_port();
            let log = self.dir().join(format!("snmpd-{port}.log"));
            let child = Command::new("snmpd")
                .env("SNMP_PERSISTENT_DIR", self.dir())
                .env("MIBS", "")
                .args(["-f", "-C", "-c"])
                .arg(&conf)
                .arg("-Lf")
                .arg(&log)
                .arg("-p")
                .arg(self.dir().join("snmpd.pid"))
                .arg(format!("udp:127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start snmpd");
            let daemon = Daemon { child, port, log };
            // Ready when it answers; bounded.
            for _ in 0..50 {
                let out = self.run(
                    "snmpget",
                    &Auth::V2c("public"),
                    &["-r", "0", "-t", "0.2"],
                    &format!("udp:127.0.0.1:{port}"),
                    &["1.3.6.1.2.1.1.3.0"],
                );
                if out.status.success() {
                    return daemon;
                }
            }
        }
        panic!("snmpd did not start");
    }
}

impl NetSnmp {
    /// net-snmp's snmptrapd on a free loopback port: it logs v2c
    /// notifications with community `public`, and v3 ones from the test
    /// user (sent as any of `sender_engines`, hex engine IDs, for v3
    /// traps), one line each: `NOTE <trap type>|<pdu type>|<security>|<peer>|<bindings>`.
    pub fn snmptrapd(&self, sender_engines: &[&str]) -> Daemon {
        self.snmptrapd_via(&[], sender_engines)
    }

    /// The same, started through `prefix` (e.g. `ip netns exec NS`).
    pub fn snmptrapd_via(&self, prefix: &[&str], sender_engines: &[&str]) -> Daemon {
        require_tool("snmptrapd", "snmptrapd");
        let conf = self.dir().join("snmptrapd.conf");
        let mut text = format!(
            "authCommunity log public\ncreateUser {V3_USER} SHA-256 {V3_AUTH} AES {V3_PRIV}\n"
        );
        for e in sender_engines {
            text.push_str(&format!(
                "createUser -e 0x{e} {V3_USER} SHA-256 {V3_AUTH} AES {V3_PRIV}\n"
            ));
        }
        text.push_str(&format!("authUser log {V3_USER} priv\n"));
        std::fs::write(&conf, text).expect("write snmptrapd.conf");
        let port = free_udp_port();
        let log = self.dir().join(format!("snmptrapd-{port}.log"));
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg("snmptrapd");
                c
            }
            None => Command::new("snmptrapd"),
        };
        let child = cmd
            .env("SNMP_PERSISTENT_DIR", self.dir())
            .env("MIBS", "")
            .args(["-f", "-C", "-n", "-On", "-m", ""])
            .arg("-c")
            .arg(&conf)
            .arg("-Lf")
            .arg(&log)
            .args(["-F", "NOTE %N|%w|%q|%P|%v\n"])
            .arg(format!("udp:127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start snmptrapd");
        let daemon = Daemon { child, port, log };
        // Ready when it logs its start; bounded.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !daemon.log_text().contains("NET-SNMP version") {
            assert!(
                std::time::Instant::now() < deadline,
                "snmptrapd did not start: {}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }
}
