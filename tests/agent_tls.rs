//! `dvsan agent` with TLS on its NBD server, read and written by libnbd's
//! and qemu's clients over TLS: a client in the clear is refused, one that
//! trusts the unit's certificate reads and writes its volume; TLS files
//! that cannot be used stop the agent at start with one line naming them;
//! SIGHUP reads renewed files, and keeps the old ones if the new cannot
//! be used.

#[path = "../snmp/tests/support/net_snmp.rs"]
mod net_snmp;
#[path = "../nbd/tests/common/pki.rs"]
mod pki;
mod support {
    pub mod agent_process;
    pub mod binary;
}

use std::process::Command;
use std::time::Duration;

use net_snmp::{NetSnmp, V3_AUTH, V3_PRIV, require_tool, stderr, stdout};
use pki::Pki;
use support::agent_process::{
    AgentProcess, AgentSpec, dvsan, make_group, make_volume, open_to_loopback, wait_until,
};

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(cmd);
    c.args(args);
    net_snmp::run_bounded(c, Duration::from_secs(60))
}

#[test]
fn a_unit_requiring_tls_serves_its_volume_only_inside_tls() {
    require_tool("nbdinfo", "libnbd-bin");
    require_tool("qemu-io", "qemu-utils");
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let tools = NetSnmp::new();
    let mut spec = AgentSpec::three_disks(dir.path());
    spec.args = vec![
        "--nbd-tls-cert".into(),
        pki.p("server-cert.pem"),
        "--nbd-tls-key".into(),
        pki.p("server-key.pem"),
    ];
    let agent = AgentProcess::start(spec, &tools);
    make_group(&tools, &agent, 1);
    make_volume(&tools, &agent, 1, "vol1", 16);
    open_to_loopback(&tools, &agent, 1);

    // In the clear: refused.
    let out = run("nbdinfo", &["--size", &agent.nbd_uri("vol1")]);
    assert!(!out.status.success(), "plain NBD got in: {}", stdout(&out));
    assert!(
        stderr(&out).to_lowercase().contains("tls"),
        "{}",
        stderr(&out)
    );

    // Inside TLS: the size, and data written and read back by qemu-io.
    let tls_uri = |creds: &str| {
        format!(
            "nbds://127.0.0.1:{}/vol1?tls-certificates={creds}",
            agent.nbd_port
        )
    };
    let creds = pki.client_dir("trusting", "ca", false);
    let out = run("nbdinfo", &["--size", &tls_uri(&creds)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), (16u64 << 20).to_string());
    let out = run(
        "qemu-io",
        &[
            "--object",
            &format!("tls-creds-x509,id=tls0,dir={creds},endpoint=client"),
            "--image-opts",
            &format!(
                "driver=nbd,host=127.0.0.1,port={},export=vol1,tls-creds=tls0",
                agent.nbd_port
            ),
            "-c",
            "write -P 0x5a 0 1M",
            "-c",
            "read -P 0x5a 0 1M",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("read 1048576/1048576 bytes at offset 0"),
        "{}",
        stdout(&out)
    );
    // A client that does not trust the unit's certificate gets nothing.
    let creds = pki.client_dir("distrusting", "other-ca", false);
    assert!(
        !run("nbdinfo", &["--size", &tls_uri(&creds)])
            .status
            .success()
    );
}

#[test]
fn tls_files_that_cannot_be_used_stop_the_agent_with_one_line() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("d.img=8M");
    let disk = disk.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--nbd-tls-cert".into(),
                missing.to_str().unwrap().into(),
                "--nbd-tls-key".into(),
                pki.p("server-key.pem"),
            ],
            "missing.pem",
        ),
        (
            vec![
                "--nbd-tls-cert".into(),
                pki.p("server-cert.pem"),
                "--nbd-tls-key".into(),
                pki.p("client-key.pem"),
            ],
            "nbd_tls",
        ),
        (vec!["--nbd-tls-optional".into()], "nbd_tls_cert"),
    ];
    for (extra, key) in cases {
        let out = dvsan()
            .args(["agent", "--disk", disk, "--snmp-user", "u"])
            .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
            .args(&extra)
            .env("DVSAN_SNMP_AUTH_PASS", V3_AUTH)
            .env("DVSAN_SNMP_PRIV_PASS", V3_PRIV)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{extra:?} accepted");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("dvsan:")).collect();
        assert_eq!(lines.len(), 1, "{extra:?}: {err}");
        assert!(lines[0].contains(key), "{extra:?}: {err}");
    }
}

#[test]
fn sighup_reads_a_renewed_certificate_and_keeps_the_old_one_if_the_new_is_unusable() {
    require_tool("nbdinfo", "libnbd-bin");
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let tools = NetSnmp::new();
    // The unit's own copies, as an admin's renewal job would replace them.
    let cert = dir.path().join("nbd-cert.pem");
    let key = dir.path().join("nbd-key.pem");
    std::fs::copy(pki.path("server-cert.pem"), &cert).unwrap();
    std::fs::copy(pki.path("server-key.pem"), &key).unwrap();
    let mut spec = AgentSpec::three_disks(dir.path());
    spec.args = vec![
        "--nbd-tls-cert".into(),
        cert.to_str().unwrap().into(),
        "--nbd-tls-key".into(),
        key.to_str().unwrap().into(),
    ];
    let agent = AgentProcess::start(spec, &tools);
    make_group(&tools, &agent, 1);
    make_volume(&tools, &agent, 1, "vol1", 16);
    open_to_loopback(&tools, &agent, 1);
    let trusting = |ca: &str| {
        let creds = pki.client_dir(&format!("trusts-{ca}"), ca, false);
        let uri = format!(
            "nbds://127.0.0.1:{}/vol1?tls-certificates={creds}",
            agent.nbd_port
        );
        run("nbdinfo", &["--size", &uri]).status.success()
    };
    let hangup = || {
        let status = Command::new("kill")
            .args(["-HUP", &agent.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    assert!(trusting("ca"));
    assert!(!trusting("other-ca"));

    // Renewed by another CA: after SIGHUP new connections get it.
    pki.make_server("other-ca", "renewed");
    std::fs::copy(pki.path("renewed-cert.pem"), &cert).unwrap();
    std::fs::copy(pki.path("renewed-key.pem"), &key).unwrap();
    assert!(trusting("ca"), "renewed before SIGHUP");
    hangup();
    wait_until(
        "the renewed certificate served",
        Duration::from_secs(20),
        || trusting("other-ca"),
    );
    assert!(!trusting("ca"));
    assert!(
        agent
            .log_text()
            .contains("NBD TLS certificate and key read again")
    );

    // A key that does not go with the certificate: logged, the renewed
    // pair stays in use, and the unit serves on.
    std::fs::copy(pki.path("client-key.pem"), &key).unwrap();
    hangup();
    wait_until("the unusable files logged", Duration::from_secs(20), || {
        agent.log_text().contains("the previous ones stay in use")
    });
    assert!(trusting("other-ca"));
    assert!(!trusting("ca"));
}
