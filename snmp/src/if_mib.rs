//! IF-MIB (RFC 2863) for the node's network interfaces, read from Linux's
//! `/sys/class/net`: ifNumber, ifTable and the ifXTable counters and names.
//!
//! linkUp and linkDown notifications name an ifIndex, so a station or a
//! monitoring tool must be able to look that index up here. Interfaces are
//! read again at most once a second, so a walk does not reread sysfs for
//! every cell.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::mib_module::{MibModule, ScalarGroup, Table, TableSource};
use crate::value::Value;

/// interfaces (1.3.6.1.2.1.2)
pub const INTERFACES: &[u32] = &[1, 3, 6, 1, 2, 1, 2];
/// ifEntry (1.3.6.1.2.1.2.2.1)
pub const IF_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1];
/// ifXEntry (1.3.6.1.2.1.31.1.1.1)
pub const IF_X_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
/// ifIndex column, for notification varbinds (`IF_ENTRY` + 1 + index).
pub const IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 1];
/// ifAdminStatus column.
pub const IF_ADMIN_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 7];
/// ifOperStatus column.
pub const IF_OPER_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 8];

/// ifOperStatus values (RFC 2863).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperStatus {
    /// up(1)
    Up = 1,
    /// down(2)
    Down = 2,
    /// testing(3)
    Testing = 3,
    /// unknown(4)
    Unknown = 4,
    /// dormant(5)
    Dormant = 5,
    /// notPresent(6)
    NotPresent = 6,
    /// lowerLayerDown(7)
    LowerLayerDown = 7,
}

impl OperStatus {
    /// From Linux's `operstate` text.
    pub fn from_linux(text: &str) -> Self {
        match text.trim() {
            "up" => OperStatus::Up,
            "down" => OperStatus::Down,
            "testing" => OperStatus::Testing,
            "dormant" => OperStatus::Dormant,
            "notpresent" => OperStatus::NotPresent,
            "lowerlayerdown" => OperStatus::LowerLayerDown,
            _ => OperStatus::Unknown,
        }
    }
}

/// One interface as IF-MIB describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// ifIndex (the kernel's index).
    pub index: u32,
    /// ifDescr / ifName.
    pub name: String,
    /// ifType (IANAifType).
    pub if_type: i32,
    /// ifMtu.
    pub mtu: i32,
    /// Speed in Mb/s, when the driver knows it.
    pub speed_mbps: Option<u32>,
    /// ifPhysAddress.
    pub phys_address: Vec<u8>,
    /// ifAdminStatus up(1) when IFF_UP is set, else down(2).
    pub admin_up: bool,
    /// ifOperStatus.
    pub oper: OperStatus,
    /// Counters: received and sent octets, packets, discards, errors.
    pub rx_bytes: u64,
    /// Received packets.
    pub rx_packets: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Sent octets.
    pub tx_bytes: u64,
    /// Sent packets.
    pub tx_packets: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// ifLastChange: sysUpTime (from when this reader started) at which
    /// ifOperStatus last changed; 0 when it has not changed since.
    pub last_change: u32,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn number<T: std::str::FromStr>(dir: &Path, file: &str) -> Option<T> {
    read(dir, file)?.parse().ok()
}

/// Reads one interface from its sysfs directory.
pub fn read_interface(dir: &Path) -> Option<Interface> {
    let name = dir.file_name()?.to_str()?.to_owned();
    let index: u32 = number(dir, "ifindex")?;
    let arphrd: u32 = number(dir, "type").unwrap_or(0);
    let flags = read(dir, "flags")
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    let phys_address = read(dir, "address")
        .map(|a| {
            a.split(':')
                .filter_map(|b| u8::from_str_radix(b, 16).ok())
                .collect::<Vec<u8>>()
        })
        .filter(|a| a.iter().any(|b| *b != 0))
        .unwrap_or_default();
    let stat = |f: &str| number::<u64>(&dir.join("statistics"), f).unwrap_or(0);
    Some(Interface {
        index,
        if_type: match arphrd {
            1 => 6,     // ARPHRD_ETHER: ethernetCsmacd
            772 => 24,  // ARPHRD_LOOPBACK: softwareLoopback
            768 => 131, // ARPHRD_TUNNEL: tunnel
            _ => 1,     // other
        },
        mtu: number(dir, "mtu").unwrap_or(0),
        speed_mbps: number::<i64>(dir, "speed").and_then(|s| u32::try_from(s).ok()),
        phys_address,
        // IFF_UP
        admin_up: flags & 0x1 != 0,
        oper: OperStatus::from_linux(&read(dir, "operstate").unwrap_or_default()),
        rx_bytes: stat("rx_bytes"),
        rx_packets: stat("rx_packets"),
        rx_dropped: stat("rx_dropped"),
        rx_errors: stat("rx_errors"),
        tx_bytes: stat("tx_bytes"),
        tx_packets: stat("tx_packets"),
        tx_dropped: stat("tx_dropped"),
        tx_errors: stat("tx_errors"),
        last_change: 0,
        name,
    })
}

/// Every interface under `root` (normally `/sys/class/net`), by ifIndex.
pub fn read_interfaces(root: &Path) -> BTreeMap<u32, Interface> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| read_interface(&e.path()))
        .map(|i| (i.index, i))
        .collect()
}

/// The interfaces, reread when older than a second.
pub struct Interfaces {
    root: PathBuf,
    cache: RwLock<(Instant, Arc<BTreeMap<u32, Interface>>)>,
    started: Instant,
}

impl std::fmt::Debug for Interfaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interfaces")
            .field("root", &self.root)
            .finish()
    }
}

const MAX_AGE: Duration = Duration::from_secs(1);

impl Interfaces {
    /// Interfaces under `root` (normally `/sys/class/net`).
    pub fn new(root: impl Into<PathBuf>) -> Arc<Self> {
        let root = root.into();
        let now = Instant::now();
        let first = Arc::new(read_interfaces(&root));
        Arc::new(Interfaces {
            root,
            cache: RwLock::new((now, first)),
            started: now,
        })
    }

    /// The current interfaces.
    pub fn snapshot(&self) -> Arc<BTreeMap<u32, Interface>> {
        {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if cache.0.elapsed() < MAX_AGE {
                return Arc::clone(&cache.1);
            }
        }
        let mut fresh = read_interfaces(&self.root);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        let now = (self.started.elapsed().as_millis() / 10) as u32;
        for (index, interface) in fresh.iter_mut() {
            interface.last_change = match cache.1.get(index) {
                Some(before) if before.oper == interface.oper => before.last_change,
                Some(_) => now,
                None => 0,
            };
        }
        let fresh = Arc::new(fresh);
        *cache = (Instant::now(), Arc::clone(&fresh));
        fresh
    }

    /// The interface named `name`.
    pub fn by_name(&self, name: &str) -> Option<Interface> {
        self.snapshot().values().find(|i| i.name == name).cloned()
    }

    /// The IF-MIB module over these interfaces.
    pub fn module(self: &Arc<Self>) -> MibModule {
        let me = Arc::clone(self);
        let number = ScalarGroup::new(INTERFACES).scalar(1, move || {
            Value::Integer(i32::try_from(me.snapshot().len()).unwrap_or(i32::MAX))
        });
        MibModule::new("IF-MIB", &[1, 3, 6, 1, 2, 1])
            .with(number)
            .with(Table::new(
                IF_ENTRY,
                IfTable(Arc::clone(self), IF_TABLE_COLUMNS),
            ))
            .with(Table::new(
                IF_X_ENTRY,
                IfTable(Arc::clone(self), IF_X_COLUMNS),
            ))
    }
}

const IF_TABLE_COLUMNS: &[u32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 19, 20];
/// ifXTable columns, offset by 100 internally to tell them from ifTable's.
const IF_X_COLUMNS: &[u32] = &[1, 6, 7, 10, 11, 15, 18];

struct IfTable(Arc<Interfaces>, &'static [u32]);

impl IfTable {
    fn is_x(&self) -> bool {
        std::ptr::eq(self.1, IF_X_COLUMNS)
    }

    fn value(&self, i: &Interface, column: u32) -> Option<Value> {
        let c32 = |v: u64| Value::Counter32(v as u32);
        if self.is_x() {
            return Some(match column {
                1 => Value::text(i.name.clone()),
                6 => Value::Counter64(i.rx_bytes),
                7 => Value::Counter64(i.rx_packets),
                10 => Value::Counter64(i.tx_bytes),
                11 => Value::Counter64(i.tx_packets),
                15 => Value::Gauge32(i.speed_mbps.unwrap_or(0)),
                18 => Value::text(""),
                _ => return None,
            });
        }
        Some(match column {
            1 => Value::Integer(i.index as i32),
            2 => Value::text(i.name.clone()),
            3 => Value::Integer(i.if_type),
            4 => Value::Integer(i.mtu),
            5 => Value::Gauge32(
                i.speed_mbps
                    .map(|m| u32::try_from(u64::from(m) * 1_000_000).unwrap_or(u32::MAX))
                    .unwrap_or(0),
            ),
            6 => Value::OctetString(i.phys_address.clone().into()),
            7 => Value::Integer(if i.admin_up { 1 } else { 2 }),
            8 => Value::Integer(i.oper as i32),
            9 => Value::TimeTicks(i.last_change),
            10 => c32(i.rx_bytes),
            11 => c32(i.rx_packets),
            13 => c32(i.rx_dropped),
            14 => c32(i.rx_errors),
            16 => c32(i.tx_bytes),
            17 => c32(i.tx_packets),
            19 => c32(i.tx_dropped),
            20 => c32(i.tx_errors),
            _ => return None,
        })
    }
}

impl TableSource for IfTable {
    fn columns(&self) -> &[u32] {
        self.1
    }

    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        let [index] = index else { return None };
        let snapshot = self.0.snapshot();
        snapshot.get(index).and_then(|i| self.value(i, column))
    }

    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        let start = match after {
            None | Some([]) => Bound::Unbounded,
            Some([i, ..]) => Bound::Excluded(*i),
        };
        let snapshot = self.0.snapshot();
        snapshot
            .range((start, Bound::Unbounded))
            .find_map(|(k, i)| self.value(i, column).map(|v| (vec![*k], v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_read_from_sysfs() {
        let all = read_interfaces(Path::new("/sys/class/net"));
        let lo = all.values().find(|i| i.name == "lo").expect("lo exists");
        assert_eq!(lo.if_type, 24);
        assert!(lo.admin_up);
        assert!(lo.phys_address.is_empty());
        assert_eq!(
            lo.index,
            std::fs::read_to_string("/sys/class/net/lo/ifindex")
                .unwrap()
                .trim()
                .parse::<u32>()
                .unwrap()
        );
    }

    #[test]
    fn a_walk_of_the_module_lists_every_interface_in_each_column() {
        let interfaces = Interfaces::new("/sys/class/net");
        let n = interfaces.snapshot().len();
        let module = interfaces.module();
        let mut at: Vec<u32> = IF_ENTRY.to_vec();
        let mut descr = 0;
        while let Some((oid, value)) = module.next_value(&at) {
            if !oid.arcs().starts_with(IF_ENTRY) {
                break;
            }
            if oid.arcs()[IF_ENTRY.len()] == 2 {
                descr += 1;
                assert!(value.as_text().is_some());
            }
            at = oid.arcs().to_vec();
        }
        assert_eq!(descr, n);
    }

    #[test]
    fn operstate_texts_map_to_if_oper_status() {
        assert_eq!(OperStatus::from_linux("up\n"), OperStatus::Up);
        assert_eq!(
            OperStatus::from_linux("lowerlayerdown"),
            OperStatus::LowerLayerDown
        );
        assert_eq!(OperStatus::from_linux("weird"), OperStatus::Unknown);
    }
}
