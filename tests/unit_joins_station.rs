//! The thinnest whole path: a real `dvsan station` and a real `dvsan agent`.
//! The unit announces itself with coldStart; the station walks its
//! DVSAN-MIB and records it online with its RAID group and volumes (made by
//! snmpset before the announcement is repeated by a restart); at SIGTERM
//! the unit's linkDown takes it offline.

#[path = "../snmp/tests/support/net_snmp.rs"]
mod net_snmp;
mod support {
    pub mod agent_process;
    pub mod binary;
    pub mod station_process;
}

use std::time::{Duration, Instant};

use dvsan_station::{Inventory, UnitState};
use net_snmp::{NetSnmp, V3_AUTH, V3_PRIV, V3_USER};
use support::agent_process::{AgentProcess, AgentSpec, v3_run};
use support::station_process::start_station;

const OBJECTS: &str = "1.3.6.1.4.1.8072.9999.9999.1.1";

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_unit_joins_a_real_station_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("station.db").display());
    let (_station, trap_addr) = start_station(&db, V3_USER, V3_AUTH, V3_PRIV);
    let unit_dir = dir.path().join("unit");
    std::fs::create_dir_all(&unit_dir).unwrap();

    // First start: configure a RAID 5 group and a volume by SET.
    let spec = move |unit_dir: &std::path::Path, sizes: bool| {
        let mut spec = AgentSpec::three_disks(unit_dir);
        if !sizes {
            spec.disks = (1..=3).map(|i| format!("disk{i}.img")).collect();
        }
        spec.args = vec!["--station".into(), trap_addr.to_string()];
        spec
    };
    let first = unit_dir.clone();
    let (agent, tools) = tokio::task::spawn_blocking(move || {
        let tools = NetSnmp::new();
        let agent = AgentProcess::start(spec(&first, true), &tools);
        for args in [
            vec![
                format!("{OBJECTS}.3.1.3.1"),
                "i".into(),
                "5".into(),
                format!("{OBJECTS}.3.1.6.1"),
                "s".into(),
                "1,2,3".into(),
                format!("{OBJECTS}.3.1.11.1"),
                "i".into(),
                "4".into(),
            ],
            vec![
                format!("{OBJECTS}.4.1.2.1"),
                "s".into(),
                "data".into(),
                format!("{OBJECTS}.4.1.4.1"),
                "u".into(),
                "1".into(),
                format!("{OBJECTS}.4.1.6.1"),
                "u".into(),
                "32".into(),
                format!("{OBJECTS}.4.1.14.1"),
                "i".into(),
                "4".into(),
            ],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = v3_run(&tools, "snmpset", &agent, &args);
            assert!(out.status.success(), "{}", net_snmp::stderr(&out));
        }
        (agent, tools)
    })
    .await
    .unwrap();

    let inventory = Inventory::open(&db).await.unwrap();
    wait_for("the station to learn the unit", async || {
        inventory.units().await.is_ok_and(|u| u.len() == 1)
    })
    .await;
    let uuid = inventory.units().await.unwrap()[0].uuid.clone();
    assert_eq!(
        inventory.unit(&uuid).await.unwrap().unwrap().unit_state(),
        UnitState::Online
    );

    // SIGTERM: linkDown takes it offline; a restart's coldStart brings it
    // back with the group and volume made before, read from the disks.
    let (status, log) = tokio::task::spawn_blocking(move || agent.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{log}");
    wait_for("linkDown to take the unit offline", async || {
        inventory
            .unit(&uuid)
            .await
            .ok()
            .flatten()
            .is_some_and(|u| u.unit_state() == UnitState::Offline)
    })
    .await;
    let again = unit_dir.clone();
    let agent =
        tokio::task::spawn_blocking(move || AgentProcess::start(spec(&again, false), &tools))
            .await
            .unwrap();
    wait_for("the unit back online with its volume", async || {
        let online = inventory
            .unit(&uuid)
            .await
            .ok()
            .flatten()
            .is_some_and(|u| u.unit_state() == UnitState::Online);
        online
            && inventory
                .volumes_of(&uuid)
                .await
                .is_ok_and(|v| v.len() == 1)
    })
    .await;
    drop(agent);
}
