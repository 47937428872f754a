//! The station learns units from their notifications: a simulated unit (the
//! SNMP crate's agent serving a DVSAN-MIB with three disks, a RAID 5 group
//! and two volumes) announces itself with a coldStart INFORM over SNMPv3;
//! the station walks it and records it; a linkDown takes it offline; a
//! coldStart with a wrong community adds nothing and leaves a warning.

mod support;

use std::time::{Duration, Instant};

use dvsan_snmp::manager::{Manager, ManagerConfig};
use dvsan_snmp::{Credentials, EngineIdentity, NotifyKind, ReceiverConfig, TrapReceiver};
use dvsan_station::{Inventory, Learner, UnitState};
use support::simulated_unit::{announcement, notifier_to, simulated_unit, simulated_unit_at, user};

struct Station {
    learner: Learner,
    receiver: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

async fn station(dir: &std::path::Path) -> Station {
    let inventory = Inventory::open(&format!("sqlite://{}", dir.join("station.db").display()))
        .await
        .unwrap();
    let manager = Manager::bind(ManagerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        timeout: Duration::from_millis(500),
        retries: 1,
        ..ManagerConfig::default()
    })
    .await
    .unwrap();
    let learner = Learner::new(inventory, manager, Credentials::V3(user()));
    let receiver = TrapReceiver::bind(ReceiverConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        engine: EngineIdentity::ephemeral().unwrap(),
        users: vec![user()],
        communities: vec!["public".into()],
        recv_buffer: 1 << 20,
    })
    .await
    .unwrap();
    let addr = receiver.local_addr();
    let l = learner.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                n = receiver.recv() => match n {
                    Ok(n) => { if let Err(e) = l.handle(&n).await { tracing::warn!(error = %e, "notification not applied"); } }
                    Err(_) => return,
                },
                Some(r) = receiver.refused() => { let _ = l.refused(&r).await; }
            }
        }
    });
    Station {
        learner,
        receiver: addr,
        task,
    }
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_makes_the_station_learn_the_unit_and_link_down_takes_it_offline() {
    let dir = tempfile::tempdir().unwrap();
    let st = station(dir.path()).await;
    let nbd = "127.0.0.1:10809";
    let (unit, _system) = simulated_unit(nbd);
    let notifier = notifier_to(st.receiver, Credentials::V3(user()), NotifyKind::Inform).await;
    let outcome = notifier
        .notify(
            &"1.3.6.1.6.3.1.1.5.1".parse().unwrap(),
            &announcement(&unit, nbd),
        )
        .await;
    assert!(outcome[0].delivered, "{outcome:?}");

    let inv = st.learner.inventory().clone();
    let uuid = "6f1c2a3b-0000-4000-8000-000000000042";
    wait_for("the unit online", || {
        let inv = inv.clone();
        async move { matches!(inv.unit(uuid).await, Ok(Some(u)) if u.unit_state() == UnitState::Online) }
    })
    .await;
    let row = inv.unit(uuid).await.unwrap().unwrap();
    assert_eq!(row.name, "unit-a.example.org");
    assert_eq!(row.snmp_address, unit.agent().local_addr().to_string());
    assert_eq!(row.nbd_endpoint, nbd);
    assert_eq!((row.total_mib, row.free_mib), (2048, 1024));
    assert_eq!(inv.counts_of(uuid).await.unwrap(), (3, 1));
    let volumes = inv.volumes_of(uuid).await.unwrap();
    assert_eq!(volumes.len(), 2);
    assert_eq!(volumes[1].uuid, "6f1c2a3b-0000-4000-8000-000000000002");
    assert!(volumes.iter().all(|v| v.available == 1));

    // linkDown: offline, volumes unavailable.
    notifier
        .notify(
            &"1.3.6.1.6.3.1.1.5.3".parse().unwrap(),
            &announcement(&unit, nbd),
        )
        .await;
    wait_for("the unit offline", || {
        let inv = inv.clone();
        async move {
            matches!(inv.unit(uuid).await, Ok(Some(u)) if u.unit_state() == UnitState::Offline)
        }
    })
    .await;
    assert!(
        inv.volumes_of(uuid)
            .await
            .unwrap()
            .iter()
            .all(|v| v.available == 0)
    );
    let kinds: Vec<String> = inv
        .events(None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for k in ["coldStart", "learned", "linkDown", "offline"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} event in {kinds:?}");
    }
    st.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_that_does_not_authenticate_adds_nothing_and_leaves_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let st = station(dir.path()).await;
    let (unit, _system) = simulated_unit("127.0.0.1:10809");
    let notifier = notifier_to(st.receiver, Credentials::v2c("guessed"), NotifyKind::Trap).await;
    notifier
        .notify(
            &"1.3.6.1.6.3.1.1.5.1".parse().unwrap(),
            &announcement(&unit, "127.0.0.1:10809"),
        )
        .await;
    let inv = st.learner.inventory().clone();
    wait_for("a refused event", || {
        let inv = inv.clone();
        async move { !inv.events(Some("refused"), 10).await.unwrap().is_empty() }
    })
    .await;
    let refused = inv.events(Some("refused"), 10).await.unwrap();
    assert_eq!(refused[0].severity, "warning");
    assert!(refused[0].source.starts_with("127.0.0.1:"), "{refused:?}");
    assert!(
        inv.units().await.unwrap().is_empty(),
        "a spoofed coldStart added a unit"
    );
    st.task.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn the_inventory_survives_a_restart_of_the_station() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("station.db").display());
    {
        let inv = Inventory::open(&url).await.unwrap();
        inv.record_event(dvsan_station::inventory::NewEvent {
            unit_uuid: None,
            source: "test",
            kind: "learned",
            severity: "info",
            message: "kept",
        })
        .await
        .unwrap();
    }
    let inv = Inventory::open(&url).await.unwrap();
    assert_eq!(
        inv.events(Some("learned"), 10).await.unwrap()[0].message,
        "kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_stops_answering_becomes_unreachable_and_comes_back_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let st = station(dir.path()).await;
    let (unit, _system) = simulated_unit("127.0.0.1:10809");
    let addr = unit.agent().local_addr();
    let uuid = "6f1c2a3b-0000-4000-8000-000000000042";
    st.learner.learn(addr).await.unwrap();
    let inv = st.learner.inventory().clone();
    // The unit dies without a word (no linkDown).
    unit.stop();
    for round in 1..=3 {
        let r = st.learner.poll_all().await.unwrap();
        assert_eq!(r.missed, 1);
        let state = inv.unit(uuid).await.unwrap().unwrap().unit_state();
        if round < 3 {
            assert_eq!(state, UnitState::Online, "after {round} missed polls");
        } else {
            assert_eq!(r.became_unreachable, vec![uuid.to_string()]);
            assert_eq!(state, UnitState::Unreachable);
        }
    }
    assert!(
        inv.volumes_of(uuid)
            .await
            .unwrap()
            .iter()
            .all(|v| v.available == 0)
    );
    // It comes back on the same address; a poll finds it within the
    // back-off (unreachable units are polled every 2nd, 4th … round).
    let (back, _system) = simulated_unit_at("127.0.0.1:10809", addr);
    let mut skipped = 0;
    let mut found = false;
    for _ in 0..dvsan_station::learner::MAX_BACKOFF_ROUNDS {
        let r = st.learner.poll_all().await.unwrap();
        if r.answered + r.missed == 0 {
            skipped += 1;
        }
        if r.came_back == vec![uuid.to_string()] {
            found = true;
            break;
        }
    }
    assert!(found, "the unit was not polled again within the back-off");
    assert!(
        skipped <= 1,
        "back-off of one missed poll past unreachable is 2 rounds"
    );
    assert_eq!(
        inv.unit(uuid).await.unwrap().unwrap().unit_state(),
        UnitState::Online
    );
    assert!(
        inv.volumes_of(uuid)
            .await
            .unwrap()
            .iter()
            .all(|v| v.available == 1)
    );
    drop(back);
    st.task.abort();
}
