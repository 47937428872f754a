//! An agent for the walk benchmark (bench/snmp-walk.sh): the system group,
//! IF-MIB for this machine's interfaces, and a 10,000-row table shaped like
//! DVSAN-MIB's volume table, registered as production registers them (one
//! handler per module). Prints the port it listens on, then serves until
//! killed.
//!
//! Usage: bench_agent [ROWS]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use dvsan_snmp::if_mib::Interfaces;
use dvsan_snmp::system_group::{SystemGroup, SystemInfo};
use dvsan_snmp::{
    AgentConfig, EngineIdentity, MibModule, SnmpAgent, Table, TableSource, UsmUser, Value,
};

const VOLUME_ENTRY: &[u32] = &[1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 1, 4, 1];

struct Rows<R> {
    columns: Vec<u32>,
    rows: RwLock<BTreeMap<u32, R>>,
    cell: fn(&R, u32) -> Option<Value>,
}

impl<R: Send + Sync> TableSource for Rows<R> {
    fn columns(&self) -> &[u32] {
        &self.columns
    }
    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        let [i] = index else { return None };
        self.rows
            .read()
            .ok()?
            .get(i)
            .and_then(|r| (self.cell)(r, column))
    }
    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        let start = match after {
            None | Some([]) => Bound::Unbounded,
            Some([i, ..]) => Bound::Excluded(*i),
        };
        let rows = self.rows.read().ok()?;
        rows.range((start, Bound::Unbounded))
            .find_map(|(i, r)| (self.cell)(r, column).map(|v| (vec![*i], v)))
    }
}

struct Volume {
    name: String,
    uuid: String,
    group: u32,
    offset: u32,
    size: u32,
    ops: u64,
}

fn volume_cell(v: &Volume, column: u32) -> Option<Value> {
    Some(match column {
        2 => Value::text(v.name.clone()),
        3 => Value::text(v.uuid.clone()),
        4 => Value::Gauge32(v.group),
        5 => Value::Gauge32(v.offset),
        6 => Value::Gauge32(v.size),
        7 => Value::Integer(1),
        8 => Value::text(v.name.clone()),
        9 => Value::Integer(1),
        10 | 11 => Value::Counter64(v.ops),
        12 | 13 => Value::Counter64(v.ops * 4096),
        14 => Value::Integer(1),
        _ => return None,
    })
}

fn main() {
    let rows: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let system = SystemGroup::new(SystemInfo {
        descr: "dvsan bench agent".into(),
        object_id: "1.3.6.1.4.1.8072.9999.9999.2.1".parse().unwrap(),
        contact: "bench".into(),
        name: "bench".into(),
        location: "bench".into(),
        services: 72,
    });
    let volumes = Rows {
        columns: (2..=14).collect(),
        rows: RwLock::new(
            (1..=rows)
                .map(|i| {
                    (
                        i,
                        Volume {
                            name: format!("vol{i:05}"),
                            uuid: format!("6f1c2a3b-0000-4000-8000-{i:012}"),
                            group: 1 + i % 4,
                            offset: i * 1024,
                            size: 1024,
                            ops: u64::from(i) * 1_000_003,
                        },
                    )
                })
                .collect(),
        ),
        cell: volume_cell,
    };
    let interfaces = Interfaces::new("/sys/class/net");
    let modules = vec![
        Arc::new(system.module()),
        Arc::new(interfaces.module()),
        Arc::new(
            MibModule::new("DVSAN-MIB", &VOLUME_ENTRY[..9]).with(Table::new(VOLUME_ENTRY, volumes)),
        ),
    ];
    // As production runs it: on a thread of its own, single-threaded.
    let handle = SnmpAgent::spawn(
        AgentConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            engine: EngineIdentity::ephemeral().unwrap(),
            users: vec![
                UsmUser::sha256_aes("dvsanadmin", "auth-pass-123", "priv-pass-456").unwrap(),
            ],
            read_community: Some("public".into()),
            write_community: None,
        },
        modules,
    )
    .expect("agent");
    system.attach(handle.agent());
    println!("{}", handle.agent().local_addr().port());
    loop {
        std::thread::park();
    }
}
