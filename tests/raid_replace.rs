//! Keeping a RAID group whole over SNMP, against a real `dvsan agent` with
//! four file-backed disks: a RAID 5 group over three of them is built by
//! snmpset and written through NBD (qemu-io). A member whose disk file is
//! cut short fails at its next read; the group shows degraded in a
//! snmpbulkwalk while the fourth disk stays free (automatic spares are off
//! by default); snmpset of dvsanRaidMemberDisk puts the fourth disk in the
//! lost member's place, the group rebuilds in the background to optimal,
//! dvsanRaidRebuilt reaches snmptrapd and the data reads back the same,
//! also after a restart without the broken disk. A disk designated as hot
//! spare by snmpset of dvsanDiskState takes the place of a member missing
//! at a restart by itself. Bad replacements and designations are refused
//! with the MIB's error and change nothing; bad rebuild flags stop the
//! agent with one line.

#[path = "../snmp/tests/support/net_snmp.rs"]
mod net_snmp;
mod support {
    pub mod agent_process;
    pub mod binary;
}

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use net_snmp::{NetSnmp, V3_AUTH, V3_PRIV, repo_path, require_tool, stderr, stdout};
use support::agent_process::{
    AgentProcess, AgentSpec, OBJECTS, dvsan, make_group, make_volume, oid, open_to_loopback,
    set_ok, v3_run, wait_until,
};

/// dvsanRaidDegraded and dvsanRaidRebuilt, as snmptrapd logs them.
const RAID_DEGRADED: &str = ".1.3.6.1.4.1.8072.9999.9999.1.0.2";
const RAID_REBUILT: &str = ".1.3.6.1.4.1.8072.9999.9999.1.0.3";
/// The volume: 32 MiB.
const VOLUME_MIB: u32 = 32;

/// Runs a net-snmp tool with DVSAN-MIB loaded, so objects go by name.
fn named(tools: &NetSnmp, tool: &str, agent: &AgentProcess, args: &[&str]) -> Output {
    let mibs = format!("+{}:{}", net_snmp::ietf_mibs(), repo_path("mibs").display());
    let mut cmd = tools.command(tool);
    cmd.args(net_snmp::v3().args())
        .args(["-m", "+DVSAN-MIB", "-M", &mibs])
        .arg(agent.snmp_peer())
        .args(args);
    net_snmp::run_bounded(cmd, Duration::from_secs(30))
}

/// A SET the agent must refuse with `error`.
fn set_refused(tools: &NetSnmp, agent: &AgentProcess, args: &[&str], error: &str) {
    let out = v3_run(tools, "snmpset", agent, args);
    let text = stdout(&out) + &stderr(&out);
    assert!(
        !out.status.success() && text.contains(error),
        "snmpset {args:?}: wanted {error}, got: {text}"
    );
}

/// The value of one instance, numerically (`-Oqv`).
fn get(tools: &NetSnmp, agent: &AgentProcess, oid: &str) -> String {
    let out = v3_run(tools, "snmpget", agent, &["-Oqv", oid]);
    assert!(out.status.success(), "snmpget {oid}: {}", stderr(&out));
    stdout(&out).trim().trim_matches('"').to_owned()
}

/// DVSAN-MIB walked by name.
fn walk(tools: &NetSnmp, agent: &AgentProcess) -> String {
    let out = named(tools, "snmpbulkwalk", agent, &[OBJECTS]);
    assert!(out.status.success(), "snmpbulkwalk: {}", stderr(&out));
    stdout(&out)
}

fn qemu_io(agent: &AgentProcess, command: &str) -> Output {
    require_tool("qemu-io", "qemu-utils");
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-f", "raw", "-c", command, &agent.nbd_uri("data")]);
    net_snmp::run_bounded(cmd, Duration::from_secs(60))
}

/// Reads the whole volume, expecting every byte to be `pattern`.
fn reads_back(agent: &AgentProcess, pattern: u8) {
    let out = qemu_io(agent, &format!("read -P {pattern:#x} 0 {VOLUME_MIB}M"));
    let text = stdout(&out) + &stderr(&out);
    assert!(
        out.status.success() && !text.contains("Pattern verification failed"),
        "qemu-io read: {text}\nagent log:\n{}",
        agent.log_text()
    );
}

/// RAID 5 group 1 over disks 1–3, volume "data" in it, open to 127.0.0.1,
/// written full of `pattern`.
fn configure(tools: &NetSnmp, agent: &AgentProcess, pattern: u8) {
    make_group(tools, agent, 5);
    make_volume(tools, agent, 1, "data", VOLUME_MIB);
    open_to_loopback(tools, agent, 1);
    let out = qemu_io(agent, &format!("write -P {pattern:#x} 0 {VOLUME_MIB}M"));
    assert!(out.status.success(), "qemu-io write: {}", stderr(&out));
    let out = qemu_io(agent, "flush");
    assert!(out.status.success(), "qemu-io flush: {}", stderr(&out));
}

/// Four 64 MiB disks, automatic spares at their default (off).
fn four_disks(dir: &std::path::Path, trap_sink: Option<std::net::SocketAddr>) -> AgentSpec {
    let mut spec = AgentSpec::three_disks(dir);
    spec.disks = (1..=4).map(|i| format!("disk{i}.img=64M")).collect();
    spec.args = vec!["--rebuild-rate".into(), "50".into()];
    if let Some(addr) = trap_sink {
        spec.args.extend(["--trap-sink".into(), addr.to_string()]);
    }
    spec
}

/// Waits (bounded) until group 1 is optimal with no rebuild running;
/// every state seen meanwhile is rebuilding(3) or optimal(1), and the
/// progress never goes back.
fn rebuilt(tools: &NetSnmp, agent: &AgentProcess) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = 0u32;
    loop {
        let state = get(tools, agent, &oid(3, 9, "1"));
        let progress: u32 = get(tools, agent, &oid(3, 10, "1")).parse().unwrap();
        if state == "1" && progress == 100 {
            return;
        }
        assert_eq!(
            state,
            "3",
            "group state while rebuilding:\n{}",
            agent.log_text()
        );
        assert!(progress >= last, "progress went from {last} to {progress}");
        last = progress;
        assert!(
            Instant::now() < deadline,
            "the rebuild never finished ({progress}%):\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_failed_member_replaced_by_snmpset_is_rebuilt_and_the_data_stays() {
    let tools = NetSnmp::new();
    let trapd = tools.snmptrapd(&[]);
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(four_disks(dir.path(), Some(trapd.addr())), &tools);
    let ports = (agent.snmp_port, agent.nbd_port);
    configure(&tools, &agent, 0xa5);

    // Disk 2 is cut short under the unit: its next read fails, the member
    // goes out of service and the read is served from parity.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("disk2.img"))
        .unwrap()
        .set_len(0)
        .unwrap();
    reads_back(&agent, 0xa5);
    wait_until("group 1 degraded", Duration::from_secs(20), || {
        walk(&tools, &agent).contains("dvsanRaidGroupState.1 = INTEGER: degraded(2)")
    });
    let before = walk(&tools, &agent);
    for line in [
        "dvsanRaidMemberState.1.2 = INTEGER: failed(2)",
        "dvsanRaidMemberDisk.1.2 = Gauge32: 2",
        // Failed by I/O errors: its own disk back would be rebuilt whole
        // (64 MiB less the unit's metadata area).
        "dvsanRaidMemberReaddSize.1.2 = Gauge32: 63 MiB",
        "dvsanRaidMemberReaddSize.1.1 = Gauge32: 0 MiB",
        "dvsanDiskState.2 = INTEGER: failed(2)",
        // Automatic spares are off: the free disk stays free.
        "dvsanDiskState.4 = INTEGER: ok(1)",
        "dvsanDiskRaidGroup.4 = Gauge32: 0",
        "dvsanVolumeState.1 = INTEGER: degraded(3)",
    ] {
        assert!(before.contains(line), "no {line:?} in:\n{before}");
    }
    wait_until(
        "dvsanRaidDegraded at snmptrapd",
        Duration::from_secs(15),
        || trapd.log_text().contains(RAID_DEGRADED),
    );

    // Replacements the unit refuses, changing nothing.
    let member = |slot: &str| oid(6, 2, &format!("1.{slot}"));
    // A member in service.
    set_refused(
        &tools,
        &agent,
        &[&member("1"), "u", "4"],
        "inconsistentValue",
    );
    // A disk in the group already.
    set_refused(
        &tools,
        &agent,
        &[&member("2"), "u", "3"],
        "inconsistentValue",
    );
    // No such disk.
    set_refused(
        &tools,
        &agent,
        &[&member("2"), "u", "9"],
        "inconsistentValue",
    );
    // No such slot.
    set_refused(&tools, &agent, &[&member("4"), "u", "4"], "noCreation");
    // The member state is not writable.
    set_refused(
        &tools,
        &agent,
        &[&oid(6, 3, "1.2"), "i", "1"],
        "notWritable",
    );
    assert_eq!(get(&tools, &agent, &oid(3, 6, "1")), "1,2,3");
    assert_eq!(get(&tools, &agent, &oid(3, 9, "1")), "2");

    // The administrator's replacement, by name as a storage admin types it.
    let out = named(
        &tools,
        "snmpset",
        &agent,
        &["DVSAN-MIB::dvsanRaidMemberDisk.1.2", "u", "4"],
    );
    assert!(
        out.status.success(),
        "snmpset dvsanRaidMemberDisk: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // The slot is the new disk's at once; the rebuild runs behind.
    assert_eq!(get(&tools, &agent, &oid(3, 6, "1")), "1,4,3");
    assert_eq!(get(&tools, &agent, &oid(2, 7, "4")), "1");
    rebuilt(&tools, &agent);
    let after = walk(&tools, &agent);
    for line in [
        "dvsanRaidGroupState.1 = INTEGER: optimal(1)",
        "dvsanRaidGroupRebuildProgress.1 = Gauge32: 100",
        "dvsanRaidMemberDisk.1.2 = Gauge32: 4",
        "dvsanRaidMemberState.1.1 = INTEGER: inSync(1)",
        "dvsanRaidMemberState.1.2 = INTEGER: inSync(1)",
        "dvsanRaidMemberState.1.3 = INTEGER: inSync(1)",
        "dvsanRaidMemberReaddSize.1.2 = Gauge32: 0 MiB",
        "dvsanDiskState.4 = INTEGER: ok(1)",
        "dvsanVolumeState.1 = INTEGER: online(1)",
    ] {
        assert!(after.contains(line), "no {line:?} in:\n{after}");
    }
    wait_until(
        "dvsanRaidRebuilt at snmptrapd",
        Duration::from_secs(15),
        || trapd.log_text().contains(RAID_REBUILT),
    );
    let trap_log = trapd.log_text();
    let rebuilt_trap = trap_log.lines().find(|l| l.contains(RAID_REBUILT)).unwrap();
    // dvsanRaidGroupState.1 = optimal(1).
    let optimal = format!(".{} = INTEGER: 1", oid(3, 9, "1"));
    assert!(rebuilt_trap.contains(&optimal), "{rebuilt_trap}");
    reads_back(&agent, 0xa5);

    // The replacement is on the disks: back without the broken one, the
    // group is whole and the data the same.
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let mut spec = four_disks(dir.path(), None);
    spec.disks = ["disk1.img", "disk3.img", "disk4.img"]
        .map(String::from)
        .to_vec();
    spec.ports = Some(ports);
    let agent = AgentProcess::start(spec, &tools);
    assert_eq!(get(&tools, &agent, &oid(3, 9, "1")), "1");
    assert_eq!(get(&tools, &agent, &oid(3, 6, "1")), "1,4,3");
    reads_back(&agent, 0xa5);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn a_designated_hot_spare_takes_a_missing_members_place() {
    let tools = NetSnmp::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(four_disks(dir.path(), None), &tools);
    let ports = (agent.snmp_port, agent.nbd_port);
    configure(&tools, &agent, 0x5a);
    let state = |agent: &AgentProcess, disk: &str| get(&tools, agent, &oid(2, 6, disk));

    // Designated by name, and the designation lifted and given again.
    let out = named(
        &tools,
        "snmpset",
        &agent,
        &["DVSAN-MIB::dvsanDiskState.4", "i", "spare"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(walk(&tools, &agent).contains("dvsanDiskState.4 = INTEGER: spare(4)"));
    set_ok(&tools, &agent, &[&oid(2, 6, "4"), "i", "1"]);
    assert_eq!(state(&agent, "4"), "1");
    set_ok(&tools, &agent, &[&oid(2, 6, "4"), "i", "4"]);
    assert_eq!(state(&agent, "4"), "4");

    // Designations the unit refuses, changing nothing.
    // A member of a group.
    set_refused(
        &tools,
        &agent,
        &[&oid(2, 6, "1"), "i", "4"],
        "inconsistentValue",
    );
    // States that are the unit's to say.
    set_refused(&tools, &agent, &[&oid(2, 6, "4"), "i", "2"], "wrongValue");
    set_refused(&tools, &agent, &[&oid(2, 6, "4"), "i", "7"], "wrongValue");
    // No such disk.
    set_refused(&tools, &agent, &[&oid(2, 6, "9"), "i", "4"], "noCreation");
    // Other disk columns stay read-only.
    set_refused(&tools, &agent, &[&oid(2, 2, "4"), "s", "/x"], "notWritable");
    // A hot spare is kept out of new groups.
    set_refused(
        &tools,
        &agent,
        &[
            &oid(3, 3, "2"),
            "i",
            "1",
            &oid(3, 6, "2"),
            "s",
            "4",
            &oid(3, 11, "2"),
            "i",
            "4",
        ],
        "inconsistentValue",
    );
    assert_eq!(state(&agent, "1"), "1");
    assert_eq!(state(&agent, "4"), "4");

    // Disk 2 is gone when the unit comes back: the hot spare takes its
    // place by itself and is rebuilt.
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    std::fs::remove_file(dir.path().join("disk2.img")).unwrap();
    let mut spec = four_disks(dir.path(), None);
    spec.disks = ["disk1.img", "disk3.img", "disk4.img"]
        .map(String::from)
        .to_vec();
    spec.ports = Some(ports);
    let agent = AgentProcess::start(spec, &tools);
    wait_until("the hot spare in group 1", Duration::from_secs(20), || {
        get(&tools, &agent, &oid(3, 6, "1")) == "1,4,3"
    });
    rebuilt(&tools, &agent);
    let after = walk(&tools, &agent);
    for line in [
        "dvsanRaidGroupState.1 = INTEGER: optimal(1)",
        "dvsanRaidMemberState.1.2 = INTEGER: inSync(1)",
        "dvsanDiskState.4 = INTEGER: ok(1)",
        "dvsanDiskRaidGroup.4 = Gauge32: 1",
    ] {
        assert!(after.contains(line), "no {line:?} in:\n{after}");
    }
    reads_back(&agent, 0x5a);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn bad_rebuild_flags_exit_with_one_line_naming_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (&["--rebuild-rate", "fast"], "rebuild_rate"),
        (&["--rebuild-rate=-5"], "rebuild_rate"),
        (&["--rebuild-rate", "2000000"], "rebuild_rate"),
        (&["--auto-spare", "maybe"], "auto_spare"),
    ];
    for (args, key) in cases {
        let out = dvsan()
            .args(["agent", "--disk", "x.img", "--snmp-user", "u"])
            .args(*args)
            .env("DVSAN_SNMP_AUTH_PASS", V3_AUTH)
            .env("DVSAN_SNMP_PRIV_PASS", V3_PRIV)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} accepted");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(
            lines[0].starts_with("dvsan:") && lines[0].contains(key),
            "{args:?}: {err}"
        );
    }
}
