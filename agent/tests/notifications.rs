//! DVSAN-MIB notifications from a running unit, received by the SNMP
//! crate's receiver standing in for a monitoring tool's trap sink (v2c
//! traps): volumeCreated when a SET creates a volume, capacityLow once when
//! free capacity falls under the threshold, and diskFailed plus
//! raidDegraded when a member of a RAID 5 group fails under I/O.

use std::time::Duration;

use dvsan_agent::daemon::{AgentSettings, DiskArg, RunningAgent};
use dvsan_snmp::dvsan_mib as m;
use dvsan_snmp::{
    Credentials, EngineIdentity, Manager, ManagerConfig, Notification, NotifierConfig,
    ReceiverConfig, TrapReceiver, UsmUser, Value, VarBind,
};

async fn next(receiver: &TrapReceiver, what: &str) -> Notification {
    match tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await {
        Ok(n) => n.unwrap(),
        Err(_) => panic!("no {what}"),
    }
}

/// The next notification that is `oid`, skipping others (bounded).
async fn expect(receiver: &TrapReceiver, oid: &dvsan_snmp::Oid, what: &str) -> Notification {
    for _ in 0..20 {
        let n = next(receiver, what).await;
        if &n.trap_oid == oid {
            return n;
        }
    }
    panic!("no {what} among 20 notifications");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_capacity_and_failure_notifications() {
    let user = UsmUser::sha256_aes("dvsanadmin", "auth-pass-123", "priv-pass-456").unwrap();
    let sink = TrapReceiver::bind(ReceiverConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        engine: EngineIdentity::ephemeral().unwrap(),
        users: vec![],
        communities: vec!["public".into()],
        recv_buffer: 1 << 20,
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = AgentSettings {
        advertise_host: None,
        maintenance: Default::default(),
        nbd_tls: None,
        name: Some("unit-n".into()),
        data_dir: dir.path().join("data"),
        disks: (1..=3)
            .map(|i| DiskArg {
                path: dir.path().join(format!("d{i}.img")),
                size: Some(34 << 20),
            })
            .collect(),
        snmp_listen: "127.0.0.1:0".parse().unwrap(),
        nbd_listen: "127.0.0.1:0".parse().unwrap(),
        stations: None,
        stations_text: String::new(),
        trap_sinks: vec![("sink".into(), sink.local_addr())],
        trap_community: "public".into(),
        user: user.clone(),
        read_community: None,
        write_community: None,
        low_threshold: 50,
        watch_interfaces: vec![],
        sysfs_net: "/sys/class/net".into(),
        inform: NotifierConfig::default(),
        shutdown_wait: Duration::from_secs(2),
    };
    let agent = RunningAgent::start(settings).await.unwrap();
    let cold = next(&sink, "coldStart").await;
    assert_eq!(cold.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.1");
    assert!(!cold.inform, "trap sinks get traps");

    let manager = Manager::bind(ManagerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..ManagerConfig::default()
    })
    .await
    .unwrap();
    let session = manager
        .session(agent.snmp_addr(), &Credentials::V3(user))
        .await
        .unwrap();
    let text = |s: &str| Value::text(s.to_owned());
    // A RAID 5 group over three 32 MiB data areas: 64 MiB usable.
    session
        .set(&[
            VarBind::new(m::DVSAN_RAID_GROUP_LEVEL.instance(&[1]), Value::Integer(5)),
            VarBind::new(m::DVSAN_RAID_GROUP_MEMBERS.instance(&[1]), text("1,2,3")),
            VarBind::new(
                m::DVSAN_RAID_GROUP_ROW_STATUS.instance(&[1]),
                Value::Integer(4),
            ),
        ])
        .await
        .unwrap();
    // 40 of 64 MiB: free falls to 37%, under the 50% threshold.
    session
        .set(&[
            VarBind::new(m::DVSAN_VOLUME_NAME.instance(&[1]), text("big")),
            VarBind::new(m::DVSAN_VOLUME_RAID_GROUP.instance(&[1]), Value::Gauge32(1)),
            VarBind::new(m::DVSAN_VOLUME_SIZE.instance(&[1]), Value::Gauge32(40)),
            VarBind::new(m::DVSAN_VOLUME_ROW_STATUS.instance(&[1]), Value::Integer(4)),
        ])
        .await
        .unwrap();
    let created = expect(&sink, &m::DVSAN_VOLUME_CREATED.oid(), "volumeCreated").await;
    assert!(
        created
            .varbinds
            .iter()
            .any(|vb| vb.oid == m::DVSAN_VOLUME_NAME.instance(&[1]) && vb.value == text("big"))
    );
    let low = expect(&sink, &m::DVSAN_CAPACITY_LOW.oid(), "capacityLow").await;
    assert!(low.varbinds.iter().any(|vb| vb.oid
        == m::DVSAN_UNIT_CAPACITY_LOW_THRESHOLD.instance(&[0])
        && vb.value == Value::Gauge32(50)));

    // A member fails under I/O: the write still succeeds from redundancy,
    // and the sink hears of the disk and the group.
    let unit = agent.unit().clone();
    unit.disks()[1].fail_for_test();
    tokio::task::spawn_blocking(move || {
        let v = unit.volume("big").unwrap().unwrap();
        let data = vec![0x5au8; 1 << 20];
        v.write(&data, 0).unwrap();
        let mut back = vec![0u8; 1 << 20];
        v.read(&mut back, 0).unwrap();
        assert_eq!(back, data);
    })
    .await
    .unwrap();
    let failed = expect(&sink, &m::DVSAN_DISK_FAILED.oid(), "diskFailed").await;
    assert!(
        failed
            .varbinds
            .iter()
            .any(|vb| vb.oid == m::DVSAN_DISK_STATE.instance(&[2])
                && vb.value == Value::Integer(m::DiskState::Failed.as_i32()))
    );
    let degraded = expect(&sink, &m::DVSAN_RAID_DEGRADED.oid(), "raidDegraded").await;
    assert!(
        degraded
            .varbinds
            .iter()
            .any(|vb| vb.oid == m::DVSAN_RAID_GROUP_STATE.instance(&[1])
                && vb.value == Value::Integer(m::RaidGroupState::Degraded.as_i32()))
    );
    agent.shutdown().await;
}
