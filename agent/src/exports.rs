//! The unit's NBD exports: one per volume, named as the volume, admitted by
//! the volume's access list (dvsanAccessTable).
//!
//! The registry reads the unit's metadata at every lookup, so a volume
//! created or deleted by SNMP SET appears in or leaves `NBD_OPT_LIST` at
//! once, and an access entry added or removed applies to the next
//! connection. A client whose entry (or the volume) is read-only gets a
//! read-only view: the export advertises `READ_ONLY` and refuses writes.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use dvsan_nbd::{
    BlockSizes, Export, ExportEntry, ExportFlags, ExportRegistry, ExportStats, Extent, PeerAddr,
};
use uuid::Uuid;

use crate::storage::Unit;
use crate::storage::metadata::{AccessRecord, VolumeRecord};

/// An address or a CIDR network, as dvsanAccessClient holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNet {
    addr: IpAddr,
    prefix: u8,
}

impl ClientNet {
    /// Parses `192.0.2.7`, `192.0.2.0/24`, `2001:db8::1` or `2001:db8::/64`.
    pub fn parse(text: &str) -> Result<ClientNet, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{text:?}: prefix length must be 0 to {max}")),
            },
        };
        Ok(ClientNet { addr, prefix })
    }

    /// Whether `ip` lies in the network (an IPv4-mapped IPv6 peer counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// What a peer may do with a volume: `None` when it may not connect.
pub fn peer_access(volume: &VolumeRecord, peer: &PeerAddr) -> Option<bool> {
    let read_only = match peer {
        // File permissions guard a Unix socket.
        PeerAddr::Unix(_) => false,
        PeerAddr::Tcp(addr) => {
            let entries: Vec<&AccessRecord> = volume
                .access
                .iter()
                .filter(|a| ClientNet::parse(&a.client).is_ok_and(|n| n.contains(addr.ip())))
                .collect();
            if entries.is_empty() {
                return None;
            }
            // The most permissive matching entry wins.
            entries.iter().all(|a| a.read_only)
        }
    };
    Some(read_only || volume.read_only)
}

/// The unit's volumes as an NBD export registry.
#[derive(Debug)]
pub struct VolumeExports {
    unit: Arc<Unit>,
    stats: Mutex<HashMap<Uuid, Arc<ExportStats>>>,
}

impl VolumeExports {
    /// Exports of `unit`'s volumes.
    pub fn new(unit: Arc<Unit>) -> Self {
        VolumeExports {
            unit,
            stats: Mutex::default(),
        }
    }

    /// The counters of the volume with this UUID (zeros until it is used).
    pub fn stats(&self, volume: Uuid) -> Arc<ExportStats> {
        Arc::clone(
            self.stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(volume)
                .or_default(),
        )
    }

    fn record(&self, name: &str) -> Option<VolumeRecord> {
        self.unit
            .metadata()
            .volumes
            .into_iter()
            .find(|v| v.name == name)
    }
}

fn describe(v: &VolumeRecord) -> String {
    format!("dvsan volume {} ({} MiB)", v.uuid, v.size >> 20)
}

impl ExportRegistry for VolumeExports {
    fn lookup(&self, peer: &PeerAddr, name: &str) -> Option<ExportEntry> {
        let record = self.record(name)?;
        let volume = match self.unit.volume(name) {
            Ok(v) => v?,
            Err(e) => {
                tracing::error!(volume = name, error = %e, "volume cannot be opened");
                return None;
            }
        };
        let read_only = peer_access(&record, peer).unwrap_or(true);
        let export: Arc<dyn Export> = if read_only {
            Arc::new(ReadOnly(volume))
        } else {
            volume
        };
        Some(ExportEntry {
            export,
            description: describe(&record),
            stats: self.stats(record.uuid),
        })
    }

    fn list(&self) -> Vec<(String, String)> {
        self.unit
            .metadata()
            .volumes
            .iter()
            .map(|v| (v.name.clone(), describe(v)))
            .collect()
    }

    fn allow(&self, peer: &PeerAddr, name: &str) -> bool {
        self.record(name)
            .is_some_and(|v| peer_access(&v, peer).is_some())
    }
}

/// A read-only view of an export.
struct ReadOnly<E>(Arc<E>);

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "read-only access")
}

impl<E: Export> Export for ReadOnly<E> {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn flags(&self) -> ExportFlags {
        ExportFlags {
            read_only: true,
            can_trim: false,
            can_zero: false,
            fast_zero: false,
            ..self.0.flags()
        }
    }

    fn block_sizes(&self) -> BlockSizes {
        self.0.block_sizes()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_at(buf, offset)
    }

    fn read_resident(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        self.0.read_resident(buf, offset)
    }

    fn write_at(&self, _buf: &[u8], _offset: u64, _fua: bool) -> io::Result<()> {
        Err(refused())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn trim(&self, _offset: u64, _len: u64, _fua: bool) -> io::Result<()> {
        Err(refused())
    }

    fn write_zeroes(
        &self,
        _offset: u64,
        _len: u64,
        _no_hole: bool,
        _fast: bool,
        _fua: bool,
    ) -> io::Result<()> {
        Err(refused())
    }

    fn cache(&self, offset: u64, len: u64) -> io::Result<()> {
        self.0.cache(offset, len)
    }

    fn block_status(&self, offset: u64, len: u64) -> io::Result<Vec<Extent>> {
        self.0.block_status(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let n = ClientNet::parse("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.9".parse().unwrap()));
        let one = ClientNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all = ClientNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        let v6 = ClientNet::parse("2001:db8::/64").unwrap();
        assert!(v6.contains("2001:db8::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn bad_networks_are_refused_with_a_reason() {
        for bad in ["", "host", "192.0.2.0/33", "::/129", "1.2.3.4/x"] {
            let e = ClientNet::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
