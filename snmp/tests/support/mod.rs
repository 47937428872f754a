//! Shared by the SNMP crate's integration tests: running net-snmp's tools
//! and daemons with their state kept in the test's own directory, and a
//! RowStatus table model to serve.
#![allow(dead_code)]

pub mod row_table;

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

/// A path under the repository root.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}
