//! `dvsan agent` as a child process for end-to-end tests: disks in a temp
//! directory, SNMP and NBD on free loopback ports, its log captured, killed
//! on drop.
#![allow(dead_code)]

pub use super::binary::dvsan;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net_snmp::{NetSnmp, V3_AUTH, V3_PRIV, V3_USER, free_udp_port};

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A running agent.
pub struct AgentProcess {
    pub child: Child,
    pub snmp_port: u16,
    pub nbd_port: u16,
    pub log: PathBuf,
    pub data_dir: PathBuf,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start one.
pub struct AgentSpec {
    /// Directory holding disks, data dir and log.
    pub dir: PathBuf,
    /// `--disk` values (relative names are put in `dir`).
    pub disks: Vec<String>,
    /// Extra flags.
    pub args: Vec<String>,
    /// Ports to reuse (a restart), else free ones.
    pub ports: Option<(u16, u16)>,
    /// `--name`.
    pub name: String,
}

impl AgentSpec {
    /// Three 64 MiB disks and nothing else.
    pub fn three_disks(dir: &Path) -> AgentSpec {
        AgentSpec {
            dir: dir.to_path_buf(),
            disks: (1..=3).map(|i| format!("disk{i}.img=64M")).collect(),
            args: vec![],
            ports: None,
            name: "unit-a".into(),
        }
    }
}

impl AgentProcess {
    /// Starts the agent and waits (bounded) until its SNMP agent answers.
    pub fn start(spec: AgentSpec, tools: &NetSnmp) -> AgentProcess {
        let (snmp_port, nbd_port) = spec
            .ports
            .unwrap_or_else(|| (free_udp_port(), free_tcp_port()));
        let data_dir = spec.dir.join("data");
        let log = spec.dir.join(format!(
            "agent-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let mut cmd = dvsan();
        cmd.arg("agent")
            .args(["--name", &spec.name])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--snmp-listen", &format!("127.0.0.1:{snmp_port}")])
            .args(["--nbd-listen", &format!("127.0.0.1:{nbd_port}")])
            .args(["--snmp-user", V3_USER])
            .env("DVSAN_SNMP_AUTH_PASS", V3_AUTH)
            .env("DVSAN_SNMP_PRIV_PASS", V3_PRIV)
            .env("RUST_LOG", "info,dvsan_nbd=warn");
        for d in &spec.disks {
            cmd.arg("--disk").arg(spec.dir.join(d));
        }
        cmd.args(&spec.args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("start dvsan agent");
        let mut agent = AgentProcess {
            child,
            snmp_port,
            nbd_port,
            log,
            data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = agent.child.try_wait().expect("wait") {
                panic!("dvsan agent exited with {status}:\n{}", agent.log_text());
            }
            let out = tools.run(
                "snmpget",
                &crate::net_snmp::v3(),
                &["-r", "0", "-t", "0.3"],
                &agent.snmp_peer(),
                &["1.3.6.1.2.1.1.3.0"],
            );
            if out.status.success() {
                return agent;
            }
            assert!(
                Instant::now() < deadline,
                "dvsan agent did not answer SNMP:\n{}",
                agent.log_text()
            );
        }
    }

    pub fn snmp_peer(&self) -> String {
        format!("udp:127.0.0.1:{}", self.snmp_port)
    }

    pub fn nbd_uri(&self, export: &str) -> String {
        format!("nbd://127.0.0.1:{}/{export}", self.nbd_port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "dvsan agent did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.log_text())
    }

    /// Kills the agent with SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an SNMP tool against the agent with the test's v3 user.
pub fn v3_run(
    tools: &NetSnmp,
    tool: &str,
    agent: &AgentProcess,
    args: &[&str],
) -> std::process::Output {
    tools.run(tool, &crate::net_snmp::v3(), &[], &agent.snmp_peer(), args)
}

/// Waits (bounded) until `f` holds.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// DVSAN-MIB's objects (dvsanObjects), numerically.
pub const OBJECTS: &str = "1.3.6.1.4.1.8072.9999.9999.1.1";

/// Column `column` of DVSAN-MIB table `table`, row `index`.
pub fn oid(table: u32, column: u32, index: &str) -> String {
    format!("{OBJECTS}.{table}.1.{column}.{index}")
}

/// An snmpset as the test's v3 user that must succeed.
pub fn set_ok(tools: &NetSnmp, agent: &AgentProcess, args: &[&str]) {
    let out = v3_run(tools, "snmpset", agent, args);
    assert!(
        out.status.success(),
        "snmpset {args:?} failed: {}{}",
        crate::net_snmp::stdout(&out),
        crate::net_snmp::stderr(&out)
    );
}

/// RAID group 1, named "r5", of DvsanRaidLevel `level` over disks 1–3.
pub fn make_group(tools: &NetSnmp, agent: &AgentProcess, level: u32) {
    let level = level.to_string();
    set_ok(
        tools,
        agent,
        &[
            &oid(3, 2, "1"),
            "s",
            "r5",
            &oid(3, 3, "1"),
            "i",
            &level,
            &oid(3, 6, "1"),
            "s",
            "1,2,3",
            &oid(3, 11, "1"),
            "i",
            "4",
        ],
    );
}

/// Volume `index` named `name`, `size_mib` MiB in group 1.
pub fn make_volume(tools: &NetSnmp, agent: &AgentProcess, index: u32, name: &str, size_mib: u32) {
    let (i, size) = (index.to_string(), size_mib.to_string());
    set_ok(
        tools,
        agent,
        &[
            &oid(4, 14, &i),
            "i",
            "4",
            &oid(4, 2, &i),
            "s",
            name,
            &oid(4, 4, &i),
            "u",
            "1",
            &oid(4, 6, &i),
            "u",
            &size,
        ],
    );
}

/// Access entry 1 of volume `index`: 127.0.0.1.
pub fn open_to_loopback(tools: &NetSnmp, agent: &AgentProcess, index: u32) {
    let row = format!("{index}.1");
    set_ok(
        tools,
        agent,
        &[
            &oid(5, 2, &row),
            "s",
            "127.0.0.1",
            &oid(5, 4, &row),
            "i",
            "4",
        ],
    );
}
