//! `dvsan station` as a process: it starts from flags and environment,
//! learns a unit that announces itself, takes it offline on linkDown, stops
//! cleanly on SIGTERM, and refuses bad configuration with one line naming
//! the key.

#[path = "../station/tests/support/simulated_unit.rs"]
mod simulated_unit;
mod support {
    pub mod binary;
    pub mod station_process;
}

use std::process::Command;
use std::time::{Duration, Instant};

use dvsan_snmp::{Credentials, NotifyKind};
use dvsan_station::{Inventory, UnitState};
use simulated_unit::{AUTH, PRIV, USER, announcement, notifier_to, simulated_unit, user};
use support::station_process::{dvsan, start_station};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_station_process_learns_a_unit_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("station.db").display());
    let (mut station, trap_addr) = start_station(&db, USER, AUTH, PRIV);
    let nbd = "127.0.0.1:10809";
    let (unit, _system) = simulated_unit(nbd);
    let notifier = notifier_to(trap_addr, Credentials::V3(user()), NotifyKind::Inform).await;
    let sent = notifier
        .notify(
            &"1.3.6.1.6.3.1.1.5.1".parse().unwrap(),
            &announcement(&unit, nbd),
        )
        .await;
    assert!(sent[0].delivered, "{sent:?}");
    let inventory = Inventory::open(&db).await.unwrap();
    let uuid = "6f1c2a3b-0000-4000-8000-000000000042";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(u)) = inventory.unit(uuid).await
            && u.unit_state() == UnitState::Online
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the station did not learn the unit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(inventory.volumes_of(uuid).await.unwrap().len(), 2);
    notifier
        .notify(
            &"1.3.6.1.6.3.1.1.5.3".parse().unwrap(),
            &announcement(&unit, nbd),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while inventory.unit(uuid).await.unwrap().unwrap().unit_state() != UnitState::Offline {
        assert!(
            Instant::now() < deadline,
            "linkDown did not take the unit offline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM: a clean stop.
    let pid = station.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = station.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the station did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

/// Arguments, environment, and what the error's first line must say.
type Case = (
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[test]
fn bad_station_configuration_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Case> = vec![
        (
            vec!["station", "--trap-listen", "127.0.0.1:0"],
            vec![],
            "snmp.user",
        ),
        (
            vec![
                "station",
                "--snmp-user",
                "u",
                "--trap-listen",
                "127.0.0.1:0",
            ],
            vec![
                ("DVSAN_SNMP_AUTH_PASS", "short"),
                ("DVSAN_SNMP_PRIV_PASS", "long-enough"),
            ],
            "at least 8 characters",
        ),
        (
            vec!["station", "--snmp-user", "u", "--snmp-auth-protocol", "MD5"],
            vec![
                ("DVSAN_SNMP_AUTH_PASS", "long-enough"),
                ("DVSAN_SNMP_PRIV_PASS", "long-enough"),
            ],
            "snmp.auth_protocol",
        ),
        (vec!["station", "--db", "postgres://x"], vec![], "db:"),
        (
            vec!["station", "--poll-interval", "0", "--snmp-user", "u"],
            vec![],
            "poll_interval",
        ),
        (
            vec!["station", "--trap-listen", "nowhere"],
            vec![],
            "--trap-listen",
        ),
    ];
    for (args, env, want) in cases {
        let mut cmd = dvsan();
        cmd.args(&args).current_dir(dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        assert!(
            first.contains(want),
            "{args:?}: wanted {want:?} in the first line, got:\n{err}"
        );
    }
    // A config file key that does not exist is named too.
    let conf = dir.path().join("station.toml");
    std::fs::write(&conf, "db = \"sqlite://x.db\"\npol_interval = 3\n").unwrap();
    let out = dvsan()
        .args(["station", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("pol_interval"),
        "{err}"
    );
}
