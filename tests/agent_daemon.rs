//! `dvsan agent` as a process, driven by net-snmp's tools and read by
//! libnbd's and qemu's: it announces itself to snmptrapd (coldStart) and
//! to a station's receiver (INFORM), is configured by snmpset (RAID group,
//! volumes, access), shows everything to snmpbulkwalk with DVSAN-MIB's
//! names, serves the volumes to nbdinfo and qemu-io, refuses bad SETs with
//! the right error and no change, withdraws itself with linkDown at
//! SIGTERM, and comes back from SIGKILL with engineBoots grown and every
//! group and volume reassembled from its disks.

#[path = "../snmp/tests/support/net_snmp.rs"]
mod net_snmp;
mod support {
    pub mod agent_process;
    pub mod binary;
}

use std::process::Command;
use std::time::Duration;

use dvsan_snmp::{EngineIdentity, ReceiverConfig, TrapReceiver, UsmUser};
use net_snmp::{NetSnmp, V3_AUTH, V3_PRIV, V3_USER, repo_path, require_tool, stderr, stdout};
use support::agent_process::{
    AgentProcess, AgentSpec, OBJECTS, dvsan, make_group, make_volume, oid, open_to_loopback,
    set_ok, v3_run, wait_until,
};

/// The -M argument for DVSAN-MIB and the IETF modules it imports.
fn mib_dirs() -> String {
    format!("+{}:{}", net_snmp::ietf_mibs(), repo_path("mibs").display())
}

fn set(tools: &NetSnmp, agent: &AgentProcess, args: &[&str]) -> std::process::Output {
    v3_run(tools, "snmpset", agent, args)
}

fn walk(tools: &NetSnmp, agent: &AgentProcess, mibs: &str) -> String {
    let mut cmd = tools.command("snmpbulkwalk");
    cmd.args(net_snmp::v3().args())
        .args(["-m", "+DVSAN-MIB", "-M", mibs])
        .arg(agent.snmp_peer())
        .arg(OBJECTS);
    let out = net_snmp::run_bounded(cmd, Duration::from_secs(30));
    assert!(out.status.success(), "snmpbulkwalk: {}", stderr(&out));
    stdout(&out)
}

fn nbdinfo_list(agent: &AgentProcess) -> String {
    require_tool("nbdinfo", "libnbd-bin");
    let mut cmd = Command::new("nbdinfo");
    cmd.args(["--list", &format!("nbd://127.0.0.1:{}", agent.nbd_port)]);
    let out = net_snmp::run_bounded(cmd, Duration::from_secs(20));
    stdout(&out) + &stderr(&out)
}

fn qemu_io(agent: &AgentProcess, export: &str, command: &str) -> std::process::Output {
    require_tool("qemu-io", "qemu-utils");
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-f", "raw", "-c", command, &agent.nbd_uri(export)]);
    net_snmp::run_bounded(cmd, Duration::from_secs(30))
}

/// Creates group 1 over disks 1–3, volumes vol1 and vol2, and gives
/// 127.0.0.1 access to vol1.
fn configure(tools: &NetSnmp, agent: &AgentProcess, level: u32) {
    make_group(tools, agent, level);
    make_volume(tools, agent, 1, "vol1", 16);
    make_volume(tools, agent, 2, "vol2", 16);
    open_to_loopback(tools, agent, 1);
}

#[test]
fn a_unit_announces_itself_is_configured_by_snmpset_and_serves_its_volumes() {
    let tools = NetSnmp::new();
    let mibs = mib_dirs();
    let trapd = tools.snmptrapd(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut spec = AgentSpec::three_disks(dir.path());
    spec.args = vec!["--trap-sink".into(), trapd.addr().to_string()];
    let agent = AgentProcess::start(spec, &tools);

    // coldStart reached snmptrapd with the unit's bindings.
    wait_until(
        "the coldStart at snmptrapd",
        Duration::from_secs(10),
        || trapd.log_text().contains(".1.3.6.1.6.3.1.1.5.1"),
    );
    let log = trapd.log_text();
    let cold = log
        .lines()
        .find(|l| l.contains(".1.3.6.1.6.3.1.1.5.1"))
        .unwrap();
    assert!(
        cold.contains(".1.3.6.1.2.1.1.5.0 = STRING: \"unit-a\""),
        "{cold}"
    );
    assert!(cold.contains(&format!(".{OBJECTS}.1.2.0 = ")), "{cold}");
    assert!(
        cold.contains(&format!(
            ".{OBJECTS}.1.8.0 = STRING: \"127.0.0.1:{}\"",
            agent.nbd_port
        )),
        "{cold}"
    );
    assert!(
        cold.contains(&format!(
            ".{OBJECTS}.1.9.0 = STRING: \"127.0.0.1:{}\"",
            agent.snmp_port
        )),
        "{cold}"
    );

    configure(&tools, &agent, 5);

    // Every row, with DVSAN-MIB's names and the right values.
    let text = walk(&tools, &agent, &mibs);
    for expected in [
        "DVSAN-MIB::dvsanUnitName.0 = STRING: unit-a",
        "DVSAN-MIB::dvsanDiskState.3 = INTEGER: ok(1)",
        "DVSAN-MIB::dvsanDiskRaidGroup.2 = Gauge32: 1",
        "DVSAN-MIB::dvsanRaidGroupName.1 = STRING: r5",
        "DVSAN-MIB::dvsanRaidGroupLevel.1 = INTEGER: raid5(5)",
        "DVSAN-MIB::dvsanRaidGroupChunkSize.1 = Gauge32: 64 KiB",
        "DVSAN-MIB::dvsanRaidGroupMembers.1 = STRING: 1,2,3",
        "DVSAN-MIB::dvsanRaidGroupState.1 = INTEGER: optimal(1)",
        "DVSAN-MIB::dvsanRaidGroupRowStatus.1 = INTEGER: active(1)",
        "DVSAN-MIB::dvsanVolumeName.1 = STRING: vol1",
        "DVSAN-MIB::dvsanVolumeName.2 = STRING: vol2",
        "DVSAN-MIB::dvsanVolumeSize.2 = Gauge32: 16 MiB",
        "DVSAN-MIB::dvsanVolumeOffset.2 = Gauge32: 16 MiB",
        "DVSAN-MIB::dvsanVolumeState.1 = INTEGER: online(1)",
        "DVSAN-MIB::dvsanVolumeRowStatus.2 = INTEGER: active(1)",
        "DVSAN-MIB::dvsanAccessClient.1.1 = STRING: 127.0.0.1",
        "DVSAN-MIB::dvsanAccessRowStatus.1.1 = INTEGER: active(1)",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert_eq!(text.matches("dvsanDiskPath.").count(), 3, "{text}");

    // The volume the client was granted is listed and usable; the other is
    // not its business.
    let list = nbdinfo_list(&agent);
    assert!(list.contains("export=\"vol1\""), "{list}");
    assert!(!list.contains("vol2"), "{list}");
    let out = qemu_io(&agent, "vol1", "write -P 0x5a 1M 64k");
    assert!(out.status.success(), "qemu-io write: {}", stderr(&out));
    let out = qemu_io(&agent, "vol1", "read -P 0x5a 1M 64k");
    assert!(
        out.status.success(),
        "qemu-io read: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // TRIM and WRITE_ZEROES zero exactly their ranges.
    for cmd in ["discard 1M 16k", "write -z 1040k 16k"] {
        let out = qemu_io(&agent, "vol1", cmd);
        assert!(out.status.success(), "qemu-io {cmd}: {}", stderr(&out));
    }
    for cmd in ["read -P 0 1M 32k", "read -P 0x5a 1056k 32k"] {
        let out = qemu_io(&agent, "vol1", cmd);
        assert!(
            out.status.success() && !stdout(&out).contains("Pattern verification failed"),
            "qemu-io {cmd}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let out = qemu_io(&agent, "vol2", "read 0 4k");
    assert!(
        !out.status.success(),
        "vol2 must be refused without an access entry"
    );
    // The NBD counters are live in the MIB.
    let out = v3_run(&tools, "snmpget", &agent, &[&oid(4, 11, "1")]);
    let writes = stdout(&out);
    assert!(
        writes.contains("Counter64") && !writes.contains("Counter64: 0\n"),
        "{writes}"
    );

    // Bad SETs get the right error and change nothing.
    let before = walk(&tools, &agent, &mibs);
    let cases: Vec<(Vec<String>, &str)> = vec![
        // An unknown RAID level.
        (
            vec![
                oid(3, 3, "2"),
                "i".into(),
                "9".into(),
                oid(3, 6, "2"),
                "s".into(),
                "1".into(),
                oid(3, 11, "2"),
                "i".into(),
                "4".into(),
            ],
            "wrongValue",
        ),
        // Disks already in a group.
        (
            vec![
                oid(3, 3, "2"),
                "i".into(),
                "1".into(),
                oid(3, 6, "2"),
                "s".into(),
                "1,2".into(),
                oid(3, 11, "2"),
                "i".into(),
                "4".into(),
            ],
            "inconsistentValue",
        ),
        // No room for 10 GiB.
        (
            vec![
                oid(4, 2, "3"),
                "s".into(),
                "big".into(),
                oid(4, 4, "3"),
                "u".into(),
                "1".into(),
                oid(4, 6, "3"),
                "u".into(),
                "10240".into(),
                oid(4, 14, "3"),
                "i".into(),
                "4".into(),
            ],
            "resourceUnavailable",
        ),
        // A name taken.
        (
            vec![
                oid(4, 2, "3"),
                "s".into(),
                "vol1".into(),
                oid(4, 4, "3"),
                "u".into(),
                "1".into(),
                oid(4, 6, "3"),
                "u".into(),
                "1".into(),
                oid(4, 14, "3"),
                "i".into(),
                "4".into(),
            ],
            "inconsistentValue",
        ),
        // A group that still holds volumes.
        (
            vec![oid(3, 11, "1"), "i".into(), "6".into()],
            "inconsistentValue",
        ),
        // Not an address.
        (
            vec![
                oid(5, 2, "1.2"),
                "s".into(),
                "not-an-address".into(),
                oid(5, 4, "1.2"),
                "i".into(),
                "4".into(),
            ],
            "wrongValue",
        ),
        // Shrinking a volume.
        (
            vec![oid(4, 6, "1"), "u".into(), "8".into()],
            "inconsistentValue",
        ),
    ];
    for (args, error) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = set(&tools, &agent, &args);
        let said = stdout(&out) + &stderr(&out);
        assert!(!out.status.success(), "{args:?} was accepted: {said}");
        assert!(
            said.contains(error),
            "{args:?}: expected {error}, got {said}"
        );
    }
    let after = walk(&tools, &agent, &mibs);
    let strip = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.contains("Ops.") && !l.contains("Octets."))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&before),
        strip(&after),
        "a refused SET changed something"
    );

    // A row made in steps (createAndWait, columns, active), and renames.
    set_ok(&tools, &agent, &[&oid(4, 14, "3"), "i", "5"]);
    let out = v3_run(&tools, "snmpget", &agent, &["-Oqv", &oid(4, 14, "3")]);
    assert_eq!(stdout(&out).trim(), "3", "notReady until complete");
    set_ok(
        &tools,
        &agent,
        &[
            &oid(4, 2, "3"),
            "s",
            "vol3",
            &oid(4, 4, "3"),
            "u",
            "1",
            &oid(4, 6, "3"),
            "u",
            "4",
        ],
    );
    let out = v3_run(&tools, "snmpget", &agent, &["-Oqv", &oid(4, 14, "3")]);
    assert_eq!(stdout(&out).trim(), "2", "notInService when complete");
    assert!(!nbdinfo_list(&agent).contains("vol3"), "not a volume yet");
    set_ok(&tools, &agent, &[&oid(4, 14, "3"), "i", "1"]);
    set_ok(
        &tools,
        &agent,
        &[
            &oid(4, 2, "3"),
            "s",
            "vol3-renamed",
            &oid(3, 2, "1"),
            "s",
            "main",
        ],
    );
    let text = walk(&tools, &agent, &mibs);
    assert!(
        text.contains("dvsanVolumeName.3 = STRING: vol3-renamed"),
        "{text}"
    );
    assert!(
        text.contains("dvsanVolumeRowStatus.3 = INTEGER: active(1)"),
        "{text}"
    );
    assert!(
        text.contains("dvsanRaidGroupName.1 = STRING: main"),
        "{text}"
    );

    // Growing and destroying by SET.
    // vol2 is hemmed in by vol3; vol3 has free space after it.
    let out = set(&tools, &agent, &[&oid(4, 6, "2"), "u", "32"]);
    assert!(
        stdout(&out).contains("resourceUnavailable")
            || stderr(&out).contains("resourceUnavailable")
    );
    set_ok(&tools, &agent, &[&oid(4, 6, "3"), "u", "32"]);
    set_ok(&tools, &agent, &[&oid(4, 14, "1"), "i", "6"]);
    let text = walk(&tools, &agent, &mibs);
    assert!(
        text.contains("dvsanVolumeSize.3 = Gauge32: 32 MiB"),
        "{text}"
    );
    assert!(
        text.contains("dvsanVolumeSize.2 = Gauge32: 16 MiB"),
        "{text}"
    );
    assert!(!text.contains("dvsanVolumeName.1 "), "{text}");
    assert!(!text.contains("dvsanAccessClient.1.1"), "{text}");
    wait_until(
        "volume notifications at snmptrapd",
        Duration::from_secs(10),
        || {
            let log = trapd.log_text();
            log.contains(&format!(".{}.0.4", &OBJECTS[..OBJECTS.len() - 2]))
                && log.contains(&format!(".{}.0.5", &OBJECTS[..OBJECTS.len() - 2]))
        },
    );

    // SIGTERM: linkDown with the IF-MIB bindings, then a clean exit.
    let (status, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    wait_until("the linkDown at snmptrapd", Duration::from_secs(10), || {
        trapd.log_text().contains(".1.3.6.1.6.3.1.1.5.3")
    });
    let trap_log = trapd.log_text();
    let down = trap_log
        .lines()
        .find(|l| l.contains(".1.3.6.1.6.3.1.1.5.3"))
        .unwrap();
    for binding in [
        ".1.3.6.1.2.1.2.2.1.1.",
        ".1.3.6.1.2.1.2.2.1.7.",
        ".1.3.6.1.2.1.2.2.1.8.",
    ] {
        assert!(down.contains(binding), "{binding} missing: {down}");
    }
    assert!(log.contains("every volume flushed"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informs_are_acknowledged_by_a_station_and_an_unanswered_one_is_given_up() {
    let tools = NetSnmp::new();
    let user = UsmUser::sha256_aes(V3_USER, V3_AUTH, V3_PRIV).unwrap();
    let receiver = TrapReceiver::bind(ReceiverConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        engine: EngineIdentity::ephemeral().unwrap(),
        users: vec![user],
        communities: vec![],
        recv_buffer: 1 << 20,
    })
    .await
    .unwrap();
    let station = receiver.local_addr();
    let dead = net_snmp::free_udp_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "inform_timeout_ms = 100\ninform_attempts = 3\n").unwrap();
    let mut spec = AgentSpec::three_disks(dir.path());
    spec.args = vec![
        "--config".into(),
        config.display().to_string(),
        "--station".into(),
        station.to_string(),
        "--station".into(),
        format!("127.0.0.1:{dead}"),
    ];
    let agent = tokio::task::spawn_blocking(move || AgentProcess::start(spec, &tools))
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
        .await
        .expect("no coldStart inform")
        .expect("receiver closed");
    assert_eq!(n.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.1");
    assert!(n.inform, "the station gets an INFORM");
    let uuid = n
        .varbinds
        .iter()
        .find(|vb| vb.oid.to_string() == format!("{OBJECTS}.1.2.0"))
        .expect("dvsanUnitUuid in the coldStart");
    assert!(matches!(&uuid.value, dvsan_snmp::Value::OctetString(b) if b.len() == 16));
    // The dead station: retried with back-off, then given up, logged.
    let log = tokio::task::spawn_blocking(move || {
        wait_until(
            "the unanswered inform to be given up",
            Duration::from_secs(15),
            || agent.log_text().contains("giving up"),
        );
        agent.log_text()
    })
    .await
    .unwrap();
    assert!(log.contains(&format!("127.0.0.1:{dead}")), "{log}");
    assert!(log.contains("attempt=2"), "retried: {log}");
}

#[test]
fn engine_boots_grow_and_a_killed_unit_comes_back_whole() {
    let tools = NetSnmp::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(AgentSpec::three_disks(dir.path()), &tools);
    let boots = |agent: &AgentProcess| -> String {
        let out = v3_run(
            &tools,
            "snmpget",
            agent,
            &["-Oqv", "1.3.6.1.6.3.10.2.1.2.0"],
        );
        stdout(&out).trim().to_string()
    };
    assert_eq!(boots(&agent), "1");
    configure(&tools, &agent, 5);
    let out = qemu_io(&agent, "vol1", "write -P 0x33 0 1M");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = qemu_io(&agent, "vol1", "flush");
    assert!(out.status.success(), "{}", stderr(&out));
    let ports = (agent.snmp_port, agent.nbd_port);
    let engine_id = v3_run(
        &tools,
        "snmpget",
        &agent,
        &["-Oqv", "1.3.6.1.6.3.10.2.1.1.0"],
    );
    agent.kill();

    let mut spec = AgentSpec::three_disks(dir.path());
    // The disks exist now: no sizes.
    spec.disks = (1..=3).map(|i| format!("disk{i}.img")).collect();
    spec.ports = Some(ports);
    let agent = AgentProcess::start(spec, &tools);
    assert_eq!(boots(&agent), "2");
    let again = v3_run(
        &tools,
        "snmpget",
        &agent,
        &["-Oqv", "1.3.6.1.6.3.10.2.1.1.0"],
    );
    assert_eq!(stdout(&engine_id), stdout(&again), "engineID kept");
    let text = v3_run(&tools, "snmpbulkwalk", &agent, &[OBJECTS]);
    let text = stdout(&text);
    assert!(
        text.contains("\"vol1\"") && text.contains("\"vol2\""),
        "{text}"
    );
    assert!(text.contains("\"127.0.0.1\""), "{text}");
    let out = qemu_io(&agent, "vol1", "read -P 0x33 0 1M");
    assert!(
        out.status.success(),
        "data lost: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let (status, _) = agent.terminate();
    assert!(status.success());
}

#[test]
fn bad_agent_flags_exit_with_one_line_naming_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (&["agent", "--snmp-user", "u"], "disks"),
        (
            &["agent", "--disk", "x.img=12Q", "--snmp-user", "u"],
            "disks",
        ),
        (
            &[
                "agent",
                "--disk",
                "x.img",
                "--low-threshold",
                "140",
                "--snmp-user",
                "u",
            ],
            "low_threshold",
        ),
        (&["agent", "--disk", "x.img"], "snmp.user"),
        (
            &[
                "agent",
                "--disk",
                "x.img",
                "--station",
                "host:notaport",
                "--snmp-user",
                "u",
            ],
            "stations",
        ),
    ];
    for (args, key) in cases {
        let out = dvsan()
            .args(*args)
            .env("DVSAN_SNMP_AUTH_PASS", V3_AUTH)
            .env("DVSAN_SNMP_PRIV_PASS", V3_PRIV)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} accepted");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("dvsan:")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].contains(key), "{args:?}: {err}");
    }
}
