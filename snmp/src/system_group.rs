//! The SNMPv2-MIB system group (RFC 3418) and the parts of its snmp group
//! that the engine counts, as one MIB module.

use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Instant;

use crate::agent::SnmpAgent;
use crate::error::ErrorStatus;
use crate::mib_module::{MibModule, ScalarGroup};
use crate::oid::Oid;
use crate::row_status::Syntax;
use crate::value::Value;

/// system: 1.3.6.1.2.1.1
pub const SYSTEM: &[u32] = &[1, 3, 6, 1, 2, 1, 1];
/// snmp: 1.3.6.1.2.1.11
pub const SNMP_GROUP: &[u32] = &[1, 3, 6, 1, 2, 1, 11];
/// DisplayString (SIZE (0..255)), the syntax of the writable system scalars.
const DISPLAY_255: Syntax = Syntax::Display { min: 0, max: 255 };

/// mib-2, under which this module is registered: it holds both groups.
/// IF-MIB's module registers a longer prefix and so keeps its own objects.
const MODULE_ROOT: &[u32] = &[1, 3, 6, 1, 2, 1];

/// What the system group says about this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    /// sysDescr.
    pub descr: String,
    /// sysObjectID: what kind of node this is.
    pub object_id: Oid,
    /// sysContact (writable).
    pub contact: String,
    /// sysName (writable): the node's name, its DNS name where it has one.
    pub name: String,
    /// sysLocation (writable).
    pub location: String,
    /// sysServices: RFC 3418 layer bits (72 = applications + end-to-end).
    pub services: i32,
}

/// The live system group: writable scalars are kept here, sysUpTime counts
/// from creation.
#[derive(Debug)]
pub struct SystemGroup {
    info: RwLock<SystemInfo>,
    started: Instant,
    /// Weak: this group lives inside the agent's handler.
    agent: OnceLock<Weak<async_snmp::agent::Agent>>,
}

impl SystemGroup {
    /// The group for `info`, its uptime counting from now.
    pub fn new(info: SystemInfo) -> Arc<Self> {
        Arc::new(SystemGroup {
            info: RwLock::new(info),
            started: Instant::now(),
            agent: OnceLock::new(),
        })
    }

    /// Lets the snmp group read the engine's counters once the agent exists.
    pub fn attach(&self, agent: &SnmpAgent) {
        let _ = self.agent.set(agent.counters_source());
    }

    /// sysUpTime in hundredths of a second (wraps as TimeTicks does).
    pub fn uptime(&self) -> u32 {
        (self.started.elapsed().as_millis() / 10) as u32
    }

    /// The current values.
    pub fn info(&self) -> SystemInfo {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The MIB module serving this group.
    pub fn module(self: &Arc<Self>) -> MibModule {
        let text = |f: fn(&SystemInfo) -> &String| {
            let me = Arc::clone(self);
            move || Value::text(f(&me.info.read().unwrap_or_else(|e| e.into_inner())).clone())
        };
        let write = |f: fn(&mut SystemInfo) -> &mut String| {
            let me = Arc::clone(self);
            move |v: &Value| {
                let text = v.as_text().ok_or(ErrorStatus::WrongValue)?.to_owned();
                *f(&mut me.info.write().unwrap_or_else(|e| e.into_inner())) = text;
                Ok(())
            }
        };
        let me = Arc::clone(self);
        let oid = move || Value::ObjectIdentifier(me.info().object_id);
        let me = Arc::clone(self);
        let uptime = move || Value::TimeTicks(me.uptime());
        let me = Arc::clone(self);
        let services = move || Value::Integer(me.info().services);
        let system = ScalarGroup::new(SYSTEM)
            .scalar(1, text(|i| &i.descr))
            .scalar(2, oid)
            .scalar(3, uptime)
            .writable(
                4,
                DISPLAY_255,
                text(|i| &i.contact),
                write(|i| &mut i.contact),
            )
            .writable(5, DISPLAY_255, text(|i| &i.name), write(|i| &mut i.name))
            .writable(
                6,
                DISPLAY_255,
                text(|i| &i.location),
                write(|i| &mut i.location),
            )
            .scalar(7, services);
        let counter = |f: fn(&crate::agent::AgentCounters) -> u32| {
            let me = Arc::clone(self);
            move || {
                let counters = me
                    .agent
                    .get()
                    .and_then(Weak::upgrade)
                    .map(|a| crate::agent::counters_of(&a));
                Value::Counter32(counters.map(|c| f(&c)).unwrap_or(0))
            }
        };
        let snmp = ScalarGroup::new(SNMP_GROUP)
            .scalar(6, counter(|c| c.asn_parse_errors))
            // snmpEnableAuthenTraps: dvsan sends no authenticationFailure traps.
            .scalar(30, || Value::Integer(2))
            .scalar(31, counter(|c| c.silent_drops))
            // snmpProxyDrops: the agent is no proxy.
            .scalar(32, || Value::Counter32(0));
        MibModule::new("SNMPv2-MIB", MODULE_ROOT)
            .with(system)
            .with(snmp)
    }
}
