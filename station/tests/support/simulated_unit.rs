//! A simulated SAN unit for the station's tests: the SNMP crate's agent
//! serving the system group and a DVSAN-MIB with three disks, a RAID 5 group
//! and two volumes, over SNMPv3.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use dvsan_snmp::dvsan_mib::{self as mib, MibObject};
use dvsan_snmp::system_group::{SystemGroup, SystemInfo};
use dvsan_snmp::{
    AgentConfig, AgentHandle, EngineIdentity, MibModule, ScalarGroup, SnmpAgent, Table,
    TableSource, UsmUser, Value, VarBind,
};

pub const USER: &str = "dvsanstation";
pub const AUTH: &str = "station-auth-1";
pub const PRIV: &str = "station-priv-1";
pub const UUID: [u8; 16] = [
    0x6f, 0x1c, 0x2a, 0x3b, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x42,
];

pub fn user() -> UsmUser {
    UsmUser::sha256_aes(USER, AUTH, PRIV).unwrap()
}

/// Rows of one DVSAN-MIB table: column number → value, by row index.
struct Rows(BTreeMap<u32, BTreeMap<u32, Value>>, Vec<u32>);

impl Rows {
    fn new(rows: Vec<(u32, Vec<(&MibObject, Value)>)>) -> Self {
        let mut columns = Vec::new();
        let rows = rows
            .into_iter()
            .map(|(i, cells)| {
                let cells: BTreeMap<u32, Value> = cells
                    .into_iter()
                    .map(|(o, v)| (*o.suffix.last().unwrap(), v))
                    .collect();
                columns = cells.keys().copied().collect();
                (i, cells)
            })
            .collect();
        Rows(rows, columns)
    }
}

impl TableSource for Rows {
    fn columns(&self) -> &[u32] {
        &self.1
    }
    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        let [i] = index else { return None };
        self.0.get(i)?.get(&column).cloned()
    }
    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        let start = match after {
            None | Some([]) => Bound::Unbounded,
            Some([i, ..]) => Bound::Excluded(*i),
        };
        self.0
            .range((start, Bound::Unbounded))
            .find_map(|(i, r)| r.get(&column).map(|v| (vec![*i], v.clone())))
    }
}

fn entry(table: &MibObject) -> Vec<u32> {
    [table.arcs(), vec![1]].concat()
}

/// A unit's agent serving the system group and a DVSAN-MIB.
pub fn simulated_unit(nbd: &str) -> (AgentHandle, Arc<SystemGroup>) {
    simulated_unit_at(nbd, "127.0.0.1:0".parse().unwrap())
}

/// The same, listening on `listen`.
pub fn simulated_unit_at(
    nbd: &str,
    listen: std::net::SocketAddr,
) -> (AgentHandle, Arc<SystemGroup>) {
    simulated_unit_numbered(0, nbd, listen)
}

/// Unit number `n`'s UUID: [`UUID`] for 0, else with `n` in bytes 10..14.
pub fn uuid_of(n: u32) -> [u8; 16] {
    let mut uuid = UUID;
    uuid[10..14].copy_from_slice(&n.to_be_bytes());
    uuid
}

/// Unit number `n`'s name.
pub fn name_of(n: u32) -> String {
    if n == 0 {
        "unit-a.example.org".into()
    } else {
        format!("unit-{n}.example.org")
    }
}

/// Simulated unit number `n` (its own UUID and name) on `listen`.
pub fn simulated_unit_numbered(
    n: u32,
    nbd: &str,
    listen: std::net::SocketAddr,
) -> (AgentHandle, Arc<SystemGroup>) {
    let uuid = uuid_of(n);
    let name = name_of(n);
    let unit_name = name.clone();
    let system = SystemGroup::new(SystemInfo {
        descr: "dvsan unit (simulated)".into(),
        object_id: "1.3.6.1.4.1.8072.9999.9999.1".parse().unwrap(),
        contact: "".into(),
        name: name.clone(),
        location: "".into(),
        services: 72,
    });
    let text = |s: &str| Value::text(s.to_owned());
    let nbd = nbd.to_owned();
    let unit = ScalarGroup::new(&mib::DVSAN_UNIT.arcs())
        .scalar(1, move || Value::text(unit_name.clone()))
        .scalar(2, move || Value::OctetString(uuid.to_vec().into()))
        .scalar(3, || Value::text("0.1.0"))
        .scalar(4, || Value::Gauge32(2048))
        .scalar(5, || Value::Gauge32(1024))
        .scalar(6, || Value::text("127.0.0.1:162"))
        .scalar(7, || Value::Gauge32(10))
        .scalar(8, move || Value::text(nbd.clone()))
        .scalar(9, || Value::text("127.0.0.1:161"));
    let disks = Rows::new(
        (1..=3)
            .map(|i| {
                (
                    i,
                    vec![
                        (
                            &mib::DVSAN_DISK_PATH,
                            text(&format!("/srv/dvsan/disk{i}.img")),
                        ),
                        (&mib::DVSAN_DISK_MODEL, text("")),
                        (&mib::DVSAN_DISK_SERIAL, text(&format!("serial-{i}"))),
                        (&mib::DVSAN_DISK_SIZE, Value::Gauge32(1024)),
                        (&mib::DVSAN_DISK_STATE, Value::Integer(1)),
                        (&mib::DVSAN_DISK_RAID_GROUP, Value::Gauge32(1)),
                    ],
                )
            })
            .collect(),
    );
    let groups = Rows::new(vec![(
        1,
        vec![
            (&mib::DVSAN_RAID_GROUP_NAME, text("r5")),
            (&mib::DVSAN_RAID_GROUP_LEVEL, Value::Integer(5)),
            (&mib::DVSAN_RAID_GROUP_CHUNK_SIZE, Value::Gauge32(64)),
            (&mib::DVSAN_RAID_GROUP_MEMBER_COUNT, Value::Gauge32(3)),
            (&mib::DVSAN_RAID_GROUP_MEMBERS, text("1,2,3")),
            (&mib::DVSAN_RAID_GROUP_CAPACITY, Value::Gauge32(2048)),
            (&mib::DVSAN_RAID_GROUP_FREE, Value::Gauge32(1024)),
            (&mib::DVSAN_RAID_GROUP_STATE, Value::Integer(1)),
            (&mib::DVSAN_RAID_GROUP_REBUILD_PROGRESS, Value::Gauge32(100)),
            (&mib::DVSAN_RAID_GROUP_ROW_STATUS, Value::Integer(1)),
        ],
    )]);
    let volumes = Rows::new(
        (1..=2u32)
            .map(|i| {
                let mut uuid = UUID;
                uuid[15] = i as u8;
                (
                    i,
                    vec![
                        (&mib::DVSAN_VOLUME_NAME, text(&format!("vol{i}"))),
                        (
                            &mib::DVSAN_VOLUME_UUID,
                            Value::OctetString(uuid.to_vec().into()),
                        ),
                        (&mib::DVSAN_VOLUME_RAID_GROUP, Value::Gauge32(1)),
                        (&mib::DVSAN_VOLUME_OFFSET, Value::Gauge32((i - 1) * 512)),
                        (&mib::DVSAN_VOLUME_SIZE, Value::Gauge32(512)),
                        (&mib::DVSAN_VOLUME_STATE, Value::Integer(1)),
                        (&mib::DVSAN_VOLUME_EXPORT_NAME, text(&format!("vol{i}"))),
                        (&mib::DVSAN_VOLUME_ACCESS_MODE, Value::Integer(1)),
                        (&mib::DVSAN_VOLUME_READ_OPS, Value::Counter64(7)),
                        (&mib::DVSAN_VOLUME_WRITE_OPS, Value::Counter64(9)),
                        (&mib::DVSAN_VOLUME_READ_OCTETS, Value::Counter64(7 << 12)),
                        (&mib::DVSAN_VOLUME_WRITE_OCTETS, Value::Counter64(9 << 12)),
                        (&mib::DVSAN_VOLUME_ROW_STATUS, Value::Integer(1)),
                    ],
                )
            })
            .collect(),
    );
    let dvsan = MibModule::new("DVSAN-MIB", &mib::DVSAN_MIB.arcs())
        .with(unit)
        .with(Table::new(&entry(&mib::DVSAN_DISK_TABLE), disks))
        .with(Table::new(&entry(&mib::DVSAN_RAID_GROUP_TABLE), groups))
        .with(Table::new(&entry(&mib::DVSAN_VOLUME_TABLE), volumes));
    let handle = SnmpAgent::spawn(
        AgentConfig {
            listen,
            engine: EngineIdentity::ephemeral().unwrap(),
            users: vec![user()],
            read_community: None,
            write_community: None,
        },
        vec![Arc::new(system.module()), Arc::new(dvsan)],
    )
    .unwrap();
    system.attach(handle.agent());
    (handle, system)
}

/// The bindings a unit's coldStart, linkUp or linkDown carries.
pub fn announcement(agent: &AgentHandle, nbd: &str) -> Vec<VarBind> {
    announcement_numbered(0, agent, nbd)
}

/// [`announcement`] of unit number `n`.
pub fn announcement_numbered(n: u32, agent: &AgentHandle, nbd: &str) -> Vec<VarBind> {
    vec![
        VarBind::new(
            "1.3.6.1.2.1.1.5.0".parse::<dvsan_snmp::Oid>().unwrap(),
            Value::text(name_of(n)),
        ),
        VarBind::new(
            mib::DVSAN_UNIT_UUID.instance(&[0]),
            Value::OctetString(uuid_of(n).to_vec().into()),
        ),
        VarBind::new(
            mib::DVSAN_UNIT_SNMP_ENDPOINT.instance(&[0]),
            Value::text(agent.agent().local_addr().to_string()),
        ),
        VarBind::new(
            mib::DVSAN_UNIT_NBD_ENDPOINT.instance(&[0]),
            Value::text(nbd.to_owned()),
        ),
    ]
}

/// The unit's notifier, pointed at the station's receiver `station` with
/// `credentials`, sending `kind`.
pub async fn notifier_to(
    station: std::net::SocketAddr,
    credentials: dvsan_snmp::Credentials,
    kind: dvsan_snmp::NotifyKind,
) -> dvsan_snmp::Notifier {
    let notifier = dvsan_snmp::Notifier::new(
        dvsan_snmp::NotifierConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..dvsan_snmp::NotifierConfig::default()
        },
        EngineIdentity::ephemeral().unwrap(),
        std::time::Instant::now(),
    )
    .await
    .unwrap();
    notifier.set_sinks(vec![dvsan_snmp::Sink {
        name: "station".into(),
        addr: station,
        credentials,
        kind,
    }]);
    notifier
}
