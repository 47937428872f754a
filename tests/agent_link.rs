//! linkUp from `dvsan agent` when a watched interface comes back: the unit
//! runs in a network namespace this test creates, watching one end of a
//! veth pair; snmptrapd in the same namespace logs the coldStart, then,
//! after the link is taken down and up again, the linkUp with the
//! interface's ifIndex, ifAdminStatus and ifOperStatus. Needs root (CI runs
//! as root); elsewhere it says so and passes without running.

#[path = "../snmp/tests/support/net_snmp.rs"]
mod net_snmp;
mod support {
    pub mod agent_process;
    pub mod binary;
}

use std::process::Command;
use std::time::Duration;

use net_snmp::{NetSnmp, V3_AUTH, V3_PRIV, V3_USER, free_udp_port, require_tool};
use support::agent_process::{free_tcp_port, wait_until};

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The namespace, deleted (with its veth pair) on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn a_watched_link_coming_back_up_sends_link_up() {
    if !is_root() {
        eprintln!("SKIPPED: creating a network namespace needs root");
        return;
    }
    require_tool("ip", "iproute2");
    let id = std::process::id() % 100_000;
    let ns = Netns(format!("dvsan-link-{id}"));
    let (host_end, unit_end) = (format!("dvh{id}"), format!("dvu{id}"));
    assert!(ip(&["netns", "add", &ns.0]), "ip netns add failed");
    assert!(ip(&[
        "link", "add", &host_end, "type", "veth", "peer", "name", &unit_end, "netns", &ns.0
    ]));
    assert!(ip(&["link", "set", &host_end, "up"]));
    assert!(ip(&["-n", &ns.0, "link", "set", "lo", "up"]));
    assert!(ip(&["-n", &ns.0, "link", "set", &unit_end, "up"]));

    let tools = NetSnmp::new();
    let exec = ["ip", "netns", "exec", ns.0.as_str()];
    let trapd = tools.snmptrapd_via(&exec, &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("agent.log");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_dvsan"), "agent"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--disk")
        .arg(format!("{}=16M", dir.path().join("d1.img").display()))
        .args(["--snmp-listen", &format!("127.0.0.1:{}", free_udp_port())])
        .args(["--nbd-listen", &format!("127.0.0.1:{}", free_tcp_port())])
        .args(["--trap-sink", &trapd.addr().to_string()])
        .args(["--watch-interface", &unit_end])
        .args(["--snmp-user", V3_USER])
        .env("DVSAN_SNMP_AUTH_PASS", V3_AUTH)
        .env("DVSAN_SNMP_PRIV_PASS", V3_PRIV)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _agent = Child(cmd.spawn().expect("start dvsan agent in the namespace"));
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !trapd.log_text().contains(".1.3.6.1.6.3.1.1.5.1") {
        assert!(
            std::time::Instant::now() < deadline,
            "no coldStart; snmptrapd:\n{}\nagent:\n{}",
            trapd.log_text(),
            agent_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Down long enough for the watch to see it, then up again.
    assert!(ip(&["-n", &ns.0, "link", "set", &unit_end, "down"]));
    wait_until(
        "the agent to see the link down",
        Duration::from_secs(10),
        || agent_log().contains("link went down"),
    );
    assert!(ip(&["-n", &ns.0, "link", "set", &unit_end, "up"]));
    wait_until("the linkUp at snmptrapd", Duration::from_secs(10), || {
        trapd.log_text().contains(".1.3.6.1.6.3.1.1.5.4")
    });
    let text = trapd.log_text();
    let line = text
        .lines()
        .find(|l| l.contains(".1.3.6.1.6.3.1.1.5.4"))
        .unwrap();
    let ifindex = Command::new("ip")
        .args(["-n", &ns.0, "-o", "link", "show", &unit_end])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap();
    assert!(
        line.contains(&format!(
            ".1.3.6.1.2.1.2.2.1.1.{ifindex} = INTEGER: {ifindex}"
        )),
        "ifIndex {ifindex}: {line}"
    );
    assert!(
        line.contains(&format!(".1.3.6.1.2.1.2.2.1.7.{ifindex} = INTEGER: 1")),
        "{line}"
    );
    assert!(
        line.contains(&format!(".1.3.6.1.2.1.2.2.1.8.{ifindex} = INTEGER: 1")),
        "{line}"
    );
}
