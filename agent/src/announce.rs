//! What the unit tells its stations and monitoring tools, and when.
//!
//! - coldStart once the unit serves (NBD and SNMP listening), linkDown at
//!   shutdown, linkUp when a watched interface comes back up: the
//!   auto-configuration protocol. Each carries sysName.0 and the unit's UUID
//!   and SNMP and NBD endpoints, so a station can act on it at once; link
//!   notifications also carry ifIndex, ifAdminStatus and ifOperStatus.
//! - DVSAN-MIB notifications as things happen: volume created or deleted,
//!   capacity low (edge-triggered at the threshold), and from a watch of the
//!   storage engine's health: disk failed, RAID degraded, RAID rebuilt.
//!
//! Stations get INFORMs (acknowledged, retried with back-off, bounded);
//! trap sinks get plain TRAPs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dvsan_snmp::dvsan_mib as m;
use dvsan_snmp::if_mib::{IF_ADMIN_STATUS, IF_INDEX, IF_OPER_STATUS, Interfaces, OperStatus};
use dvsan_snmp::system_group::SystemGroup;
use dvsan_snmp::{
    Credentials, Notifier, NotifyKind, Oid, Sink, SinkOutcome, UsmUser, Value, VarBind,
};
use tokio::sync::mpsc;

use crate::discovery::StationDirectory;
use crate::mib::{UnitContext, UnitEvent, group_state};
use crate::storage::{DiskHealth, GroupState};

/// snmpTraps (SNMPv2-MIB).
const SNMP_TRAPS: [u32; 9] = [1, 3, 6, 1, 6, 3, 1, 1, 5];
/// sysName.0.
const SYS_NAME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];

/// A standard notification of SNMPv2-MIB (RFC 3418) / IF-MIB (RFC 2863).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// coldStart: the unit (re)started and serves.
    ColdStart,
    /// linkDown: the unit's link is going down (shutdown).
    LinkDown,
    /// linkUp: the unit's link came back.
    LinkUp,
}

impl Lifecycle {
    /// Its snmpTrapOID.
    pub fn oid(self) -> Oid {
        let last = match self {
            Lifecycle::ColdStart => 1,
            Lifecycle::LinkDown => 3,
            Lifecycle::LinkUp => 4,
        };
        Oid::join(&SNMP_TRAPS, &[last])
    }
}

/// The link a link notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// ifIndex.
    pub index: u32,
    /// ifAdminStatus up(1) or down(2).
    pub admin_up: bool,
    /// ifOperStatus.
    pub oper: OperStatus,
}

fn unit_bindings(ctx: &UnitContext, system: &SystemGroup) -> Vec<VarBind> {
    let info = ctx.info.read().unwrap_or_else(|e| e.into_inner()).clone();
    vec![
        VarBind::new(Oid::from(&SYS_NAME[..]), Value::text(system.info().name)),
        VarBind::new(
            m::DVSAN_UNIT_UUID.instance(&[0]),
            Value::OctetString(bytes::Bytes::copy_from_slice(ctx.unit.uuid().as_bytes())),
        ),
        VarBind::new(
            m::DVSAN_UNIT_SNMP_ENDPOINT.instance(&[0]),
            Value::text(info.snmp_endpoint),
        ),
        VarBind::new(
            m::DVSAN_UNIT_NBD_ENDPOINT.instance(&[0]),
            Value::text(info.nbd_endpoint),
        ),
    ]
}

/// The bindings of a lifecycle notification (sysUpTime.0 and snmpTrapOID.0
/// are added by the notifier).
pub fn lifecycle_bindings(
    ctx: &UnitContext,
    system: &SystemGroup,
    link: Option<LinkState>,
) -> Vec<VarBind> {
    let mut vbs = Vec::new();
    if let Some(l) = link {
        vbs.push(VarBind::new(
            Oid::join(IF_INDEX, &[l.index]),
            Value::Integer(l.index as i32),
        ));
        vbs.push(VarBind::new(
            Oid::join(IF_ADMIN_STATUS, &[l.index]),
            Value::Integer(if l.admin_up { 1 } else { 2 }),
        ));
        vbs.push(VarBind::new(
            Oid::join(IF_OPER_STATUS, &[l.index]),
            Value::Integer(l.oper as i32),
        ));
    }
    vbs.extend(unit_bindings(ctx, system));
    vbs
}

/// The notification and bindings for a unit event, if it is one monitoring
/// tools are told about.
pub fn event_notification(ctx: &UnitContext, event: &UnitEvent) -> Option<(Oid, Vec<VarBind>)> {
    match event {
        UnitEvent::VolumeCreated {
            index,
            name,
            uuid,
            size_mib,
        } => Some((
            m::DVSAN_VOLUME_CREATED.oid(),
            vec![
                VarBind::new(m::DVSAN_VOLUME_NAME.instance(&[*index]), Value::text(name)),
                VarBind::new(
                    m::DVSAN_VOLUME_UUID.instance(&[*index]),
                    Value::OctetString(bytes::Bytes::copy_from_slice(uuid.as_bytes())),
                ),
                VarBind::new(
                    m::DVSAN_VOLUME_SIZE.instance(&[*index]),
                    Value::Gauge32(*size_mib),
                ),
            ],
        )),
        UnitEvent::VolumeDeleted { index, name, uuid } => Some((
            m::DVSAN_VOLUME_DELETED.oid(),
            vec![
                VarBind::new(m::DVSAN_VOLUME_NAME.instance(&[*index]), Value::text(name)),
                VarBind::new(
                    m::DVSAN_VOLUME_UUID.instance(&[*index]),
                    Value::OctetString(bytes::Bytes::copy_from_slice(uuid.as_bytes())),
                ),
            ],
        )),
        UnitEvent::CapacityChanged => {
            let (total, free) = ctx.capacity();
            Some((
                m::DVSAN_CAPACITY_LOW.oid(),
                vec![
                    VarBind::new(
                        m::DVSAN_UNIT_FREE_CAPACITY.instance(&[0]),
                        Value::Gauge32(u32::try_from(free >> 20).unwrap_or(u32::MAX)),
                    ),
                    VarBind::new(
                        m::DVSAN_UNIT_TOTAL_CAPACITY.instance(&[0]),
                        Value::Gauge32(u32::try_from(total >> 20).unwrap_or(u32::MAX)),
                    ),
                    VarBind::new(
                        m::DVSAN_UNIT_CAPACITY_LOW_THRESHOLD.instance(&[0]),
                        Value::Gauge32(ctx.low_threshold()),
                    ),
                ],
            ))
        }
    }
}

/// Whether free capacity is under the threshold (a unit with no groups has
/// no capacity to run low on).
pub fn capacity_low(ctx: &UnitContext) -> bool {
    let (total, free) = ctx.capacity();
    total > 0 && u128::from(free) * 100 < u128::from(total) * u128::from(ctx.low_threshold())
}

/// Sends the unit's notifications.
#[derive(Debug, Clone)]
pub struct Announcer {
    /// To the stations (informs).
    pub stations: Arc<Notifier>,
    /// To the trap sinks (traps).
    pub monitors: Arc<Notifier>,
    /// The unit.
    pub ctx: UnitContext,
    /// sysName and uptime.
    pub system: Arc<SystemGroup>,
    /// Where the stations come from, when they are looked up in DNS.
    pub directory: Option<Arc<StationDirectory>>,
    /// The user informs go as.
    pub user: UsmUser,
}

/// The station sinks for `addrs`: informs as `user`.
pub fn station_sinks(addrs: &[SocketAddr], user: &UsmUser) -> Vec<Sink> {
    addrs
        .iter()
        .map(|addr| Sink {
            name: addr.to_string(),
            addr: *addr,
            credentials: Credentials::V3(user.clone()),
            kind: NotifyKind::Inform,
        })
        .collect()
}

impl Announcer {
    /// Sends `oid` with `varbinds` to stations and trap sinks at once.
    /// When stations come from DNS and one did not acknowledge (or none
    /// was known), the name is resolved again and stations new to the list
    /// get the notification too.
    pub async fn send(&self, oid: &Oid, varbinds: &[VarBind]) -> Vec<SinkOutcome> {
        let (mut a, b) = tokio::join!(
            self.stations.notify(oid, varbinds),
            self.monitors.notify(oid, varbinds)
        );
        if let Some(directory) = &self.directory
            && (a.is_empty() || a.iter().any(|o| !o.delivered))
        {
            let known: Vec<SocketAddr> = self.stations.sinks().iter().map(|s| s.addr).collect();
            match directory.refresh().await {
                Ok(fresh) if fresh != known => {
                    tracing::info!(stations = ?fresh, "stations re-resolved");
                    let new: Vec<SocketAddr> = fresh
                        .iter()
                        .filter(|f| !known.contains(f))
                        .copied()
                        .collect();
                    self.stations.set_sinks(station_sinks(&fresh, &self.user));
                    if !new.is_empty() {
                        let sinks = station_sinks(&new, &self.user);
                        a.extend(self.stations.notify_sinks(&sinks, oid, varbinds).await);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "re-resolving the stations failed"),
            }
        }
        a.extend(b);
        a
    }

    /// Sends a lifecycle notification.
    pub async fn lifecycle(&self, what: Lifecycle, link: Option<LinkState>) -> Vec<SinkOutcome> {
        let vbs = lifecycle_bindings(&self.ctx, &self.system, link);
        tracing::info!(notification = ?what, "announcing");
        self.send(&what.oid(), &vbs).await
    }

    /// Turns unit events into notifications until the channel closes.
    /// capacityLow goes out when free capacity falls under the threshold,
    /// and again only after it has risen above it.
    pub async fn run_events(self, mut events: mpsc::UnboundedReceiver<UnitEvent>) {
        let mut low = capacity_low(&self.ctx);
        while let Some(event) = events.recv().await {
            if event == UnitEvent::CapacityChanged {
                let now = capacity_low(&self.ctx);
                let crossed = now && !low;
                low = now;
                if !crossed {
                    continue;
                }
                tracing::warn!("free capacity is under the threshold");
            }
            if let Some((oid, vbs)) = event_notification(&self.ctx, &event) {
                self.send(&oid, &vbs).await;
            }
        }
    }

    /// Watches disk and group health every `every`, sending diskFailed,
    /// raidDegraded and raidRebuilt on changes.
    pub async fn watch_health(self, every: Duration) {
        let mut disks: BTreeMap<u32, DiskHealth> = BTreeMap::new();
        let mut groups: BTreeMap<u32, GroupState> = BTreeMap::new();
        // Groups that lost a member and are not optimal again yet: their
        // return to optimal is a rebuild done, even through a resync.
        let mut wounded: std::collections::BTreeSet<u32> = Default::default();
        let mut first = true;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let unit = &self.ctx.unit;
            let meta = unit.metadata();
            for d in unit.disks() {
                let sb = d.superblock();
                let Some(health) = unit.disk_health(sb.index) else {
                    continue;
                };
                let before = disks.insert(sb.index, health);
                let failed = matches!(health, DiskHealth::Failed | DiskHealth::Missing);
                let was_failed = matches!(before, Some(DiskHealth::Failed | DiskHealth::Missing));
                if failed && (!was_failed) && !(first && health == DiskHealth::Missing) {
                    let group = meta
                        .groups
                        .iter()
                        .find(|g| g.members.contains(&sb.disk))
                        .map_or(0, |g| g.index);
                    let state = if health == DiskHealth::Failed {
                        m::DiskState::Failed
                    } else {
                        m::DiskState::Missing
                    };
                    tracing::error!(disk = %d.path().display(), "disk out of service");
                    let vbs = vec![
                        VarBind::new(
                            m::DVSAN_DISK_PATH.instance(&[sb.index]),
                            Value::text(d.path().display().to_string()),
                        ),
                        VarBind::new(
                            m::DVSAN_DISK_STATE.instance(&[sb.index]),
                            Value::Integer(state.as_i32()),
                        ),
                        VarBind::new(
                            m::DVSAN_DISK_RAID_GROUP.instance(&[sb.index]),
                            Value::Gauge32(group),
                        ),
                    ];
                    self.send(&m::DVSAN_DISK_FAILED.oid(), &vbs).await;
                }
            }
            for g in &meta.groups {
                let Some(health) = unit.group_health(g.index) else {
                    continue;
                };
                let before = groups.insert(g.index, health.state);
                let which = match (before, health.state) {
                    (
                        Some(GroupState::Optimal) | None,
                        GroupState::Degraded | GroupState::Failed,
                    ) => Some(&m::DVSAN_RAID_DEGRADED),
                    (_, GroupState::Optimal) if wounded.remove(&g.index) => {
                        tracing::info!(group = g.index, name = %g.name, "RAID group optimal again");
                        Some(&m::DVSAN_RAID_REBUILT)
                    }
                    _ => None,
                };
                if matches!(
                    health.state,
                    GroupState::Degraded | GroupState::Rebuilding | GroupState::Failed
                ) {
                    wounded.insert(g.index);
                }
                if let Some(n) = which {
                    let vbs = vec![
                        VarBind::new(
                            m::DVSAN_RAID_GROUP_NAME.instance(&[g.index]),
                            Value::text(g.name.clone()),
                        ),
                        VarBind::new(
                            m::DVSAN_RAID_GROUP_STATE.instance(&[g.index]),
                            Value::Integer(group_state(health.state).as_i32()),
                        ),
                    ];
                    self.send(&n.oid(), &vbs).await;
                }
            }
            groups.retain(|i, _| meta.groups.iter().any(|g| g.index == *i));
            wounded.retain(|i| meta.groups.iter().any(|g| g.index == *i));
            first = false;
        }
    }

    /// Watches the interfaces named `names` every `every` and sends linkUp
    /// when one returns to up after being seen down.
    pub async fn watch_links(
        self,
        interfaces: Arc<Interfaces>,
        names: Vec<String>,
        every: Duration,
    ) {
        let mut last: BTreeMap<String, OperStatus> = BTreeMap::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for name in &names {
                let Some(i) = interfaces.by_name(name) else {
                    last.insert(name.clone(), OperStatus::NotPresent);
                    continue;
                };
                let before = last.insert(name.clone(), i.oper);
                if i.oper == OperStatus::Up && before.is_some_and(|b| b != OperStatus::Up) {
                    tracing::info!(interface = name, "link is up again");
                    let link = LinkState {
                        index: i.index,
                        admin_up: i.admin_up,
                        oper: i.oper,
                    };
                    self.lifecycle(Lifecycle::LinkUp, Some(link)).await;
                } else if i.oper != OperStatus::Up && before == Some(OperStatus::Up) {
                    tracing::warn!(interface = name, state = ?i.oper, "link went down");
                }
            }
        }
    }
}
