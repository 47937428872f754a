//! Turning notifications into inventory: a coldStart or linkUp from a unit
//! makes the station poll it at once and record what it holds; a linkDown
//! takes it out of service; a DVSAN-MIB notification re-polls it. Only
//! notifications that authenticate get here (the receiver drops the rest);
//! refusals are recorded as warning events with their source.

use std::net::SocketAddr;

use dvsan_snmp::dvsan_mib;
use dvsan_snmp::manager::Manager;
use dvsan_snmp::{Credentials, Notification, Oid, Refusal, Value};

use crate::inventory::{Inventory, InventoryError, NewEvent, UnitState};
use crate::unit_snapshot::{LearnError, UnitSnapshot, uuid_text};

/// snmpTraps: coldStart(1), linkDown(3), linkUp(4).
const COLD_START: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 5, 1];
const LINK_DOWN: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 5, 3];
const LINK_UP: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 5, 4];

/// Why handling a notification failed.
#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// Polling the unit failed.
    #[error(transparent)]
    Learn(#[from] LearnError),
    /// Writing the inventory failed.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// Opening an SNMP session failed.
    #[error("SNMP session with {peer}: {source}")]
    Session {
        /// The unit.
        peer: SocketAddr,
        /// Why.
        #[source]
        source: Box<dvsan_snmp::SnmpError>,
    },
}

/// What a notification led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The unit was polled and recorded (new or known).
    Learned {
        /// Its UUID.
        uuid: String,
        /// Whether it was new.
        new: bool,
    },
    /// The unit was taken out of service.
    Offline {
        /// Its UUID.
        uuid: String,
    },
    /// Nothing to do (unknown unit, or a notification dvsan does not act on).
    Ignored,
}

/// Applies notifications to the inventory.
#[derive(Debug, Clone)]
pub struct Learner {
    inventory: Inventory,
    manager: Manager,
    credentials: Credentials,
}

fn find(n: &Notification, object: &dvsan_mib::MibObject) -> Option<Value> {
    let oid = object.instance(&[0]);
    n.varbinds
        .iter()
        .find(|vb| vb.oid == oid)
        .map(|vb| vb.value.clone())
}

impl Learner {
    /// A learner writing to `inventory`, polling units through `manager`
    /// with `credentials`.
    pub fn new(inventory: Inventory, manager: Manager, credentials: Credentials) -> Self {
        Learner {
            inventory,
            manager,
            credentials,
        }
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Where to poll the unit that sent `n`: the SNMP endpoint it names
    /// (dvsanUnitSnmpEndpoint), else its source address on port 161.
    pub fn snmp_address(n: &Notification) -> SocketAddr {
        find(n, &dvsan_mib::DVSAN_UNIT_SNMP_ENDPOINT)
            .and_then(|v| v.as_text().and_then(|t| t.parse::<SocketAddr>().ok()))
            // A unit that gives a host name or a wildcard address is asked
            // where its notification came from.
            .map(|a| {
                if a.ip().is_unspecified() {
                    SocketAddr::new(n.source.ip(), a.port())
                } else {
                    a
                }
            })
            .unwrap_or_else(|| SocketAddr::new(n.source.ip(), 161))
    }

    /// Polls the unit at `addr` and records it; the unit is then online.
    pub async fn learn(&self, addr: SocketAddr) -> Result<Outcome, LearnerError> {
        let session = self
            .manager
            .session(addr, &self.credentials)
            .await
            .map_err(|source| LearnerError::Session {
                peer: addr,
                source: Box::new(source),
            })?;
        let snapshot = UnitSnapshot::poll(&session).await?;
        let new = self.inventory.upsert_unit(&snapshot).await?;
        self.inventory
            .record_event(NewEvent {
                unit_uuid: Some(&snapshot.uuid),
                source: &addr.to_string(),
                kind: "learned",
                severity: "info",
                message: &format!(
                    "{} {}: {} disks, {} RAID groups, {} volumes, {} of {} MiB free",
                    if new { "new unit" } else { "unit" },
                    snapshot.name,
                    snapshot.disks.len(),
                    snapshot.raid_groups.len(),
                    snapshot.volumes.len(),
                    snapshot.free_mib,
                    snapshot.total_mib
                ),
            })
            .await?;
        tracing::info!(unit = %snapshot.uuid, name = %snapshot.name, %addr, new, "unit learned");
        Ok(Outcome::Learned {
            uuid: snapshot.uuid,
            new,
        })
    }

    /// Acts on one authenticated notification; every notification is
    /// recorded as an event.
    pub async fn handle(&self, n: &Notification) -> Result<Outcome, LearnerError> {
        let source = n.source.to_string();
        let unit_uuid = match find(n, &dvsan_mib::DVSAN_UNIT_UUID) {
            Some(Value::OctetString(b)) => uuid_text(&b),
            _ => None,
        };
        let kind = match n.trap_oid.arcs() {
            COLD_START => "coldStart",
            LINK_UP => "linkUp",
            LINK_DOWN => "linkDown",
            arcs if arcs.starts_with(&dvsan_mib::DVSAN_NOTIFICATIONS.arcs()) => "dvsanNotification",
            _ => "other",
        };
        self.inventory
            .record_event(NewEvent {
                unit_uuid: unit_uuid.as_deref(),
                source: &source,
                kind,
                severity: "info",
                message: &format!("{} from {source} ({:?})", n.trap_oid, n.sender),
            })
            .await?;
        match kind {
            "coldStart" | "linkUp" | "dvsanNotification" => self.learn(Self::snmp_address(n)).await,
            "linkDown" => {
                let Some(uuid) = unit_uuid else {
                    return Ok(Outcome::Ignored);
                };
                if self
                    .inventory
                    .set_unit_state(&uuid, UnitState::Offline)
                    .await?
                {
                    self.inventory
                        .record_event(NewEvent {
                            unit_uuid: Some(&uuid),
                            source: &source,
                            kind: "offline",
                            severity: "warning",
                            message: "unit said linkDown; its capacity is out of service",
                        })
                        .await?;
                    Ok(Outcome::Offline { uuid })
                } else {
                    Ok(Outcome::Ignored)
                }
            }
            _ => Ok(Outcome::Ignored),
        }
    }

    /// Records a refused (unauthenticated) notification as a warning.
    pub async fn refused(&self, r: &Refusal) -> Result<(), LearnerError> {
        self.inventory
            .record_event(NewEvent {
                unit_uuid: None,
                source: &r.source.to_string(),
                kind: "refused",
                severity: "warning",
                message: &format!("notification from {} refused: {}", r.source, r.reason),
            })
            .await?;
        Ok(())
    }
}

/// Polls missed in a row before a unit counts as unreachable.
pub const MISSED_POLLS_UNREACHABLE: i64 = 3;

/// Most units polled at once.
const POLL_CONCURRENCY: usize = 32;

/// What one round of polling found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollRound {
    /// Units that answered.
    pub answered: usize,
    /// Units that did not.
    pub missed: usize,
    /// Units that became unreachable in this round.
    pub became_unreachable: Vec<String>,
    /// Units that came back in this round.
    pub came_back: Vec<String>,
}

impl Learner {
    /// Polls every known unit that is not pending approval, a bounded
    /// number at a time. A unit that answers is recorded afresh (and is
    /// online again if it was unreachable); one that misses
    /// [`MISSED_POLLS_UNREACHABLE`] polls in a row becomes unreachable. So a
    /// lost notification delays the inventory but never corrupts it.
    pub async fn poll_all(&self) -> Result<PollRound, LearnerError> {
        use futures_util::stream::{self, StreamExt};
        let units = self.inventory.units().await?;
        let polled: Vec<_> = stream::iter(
            units
                .into_iter()
                .filter(|u| u.unit_state() != UnitState::Pending),
        )
        .map(|unit| async move {
            let result = match unit.snmp_address.parse::<SocketAddr>() {
                Ok(addr) => self.learn(addr).await,
                Err(_) => Ok(Outcome::Ignored),
            };
            (unit, result)
        })
        .buffer_unordered(POLL_CONCURRENCY)
        .collect()
        .await;
        let mut round = PollRound::default();
        for (unit, result) in polled {
            match result {
                Ok(Outcome::Learned { uuid, .. }) => {
                    round.answered += 1;
                    if unit.unit_state() == UnitState::Unreachable {
                        self.inventory
                            .record_event(NewEvent {
                                unit_uuid: Some(&uuid),
                                source: &unit.snmp_address,
                                kind: "reachable",
                                severity: "info",
                                message: "unit answers again",
                            })
                            .await?;
                        round.came_back.push(uuid);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    round.missed += 1;
                    let missed = self.inventory.record_missed_poll(&unit.uuid).await?;
                    tracing::debug!(unit = %unit.uuid, missed, error = %e, "poll missed");
                    if missed >= MISSED_POLLS_UNREACHABLE && unit.unit_state() == UnitState::Online
                    {
                        self.inventory
                            .set_unit_state(&unit.uuid, UnitState::Unreachable)
                            .await?;
                        self.inventory
                            .record_event(NewEvent {
                                unit_uuid: Some(&unit.uuid),
                                source: &unit.snmp_address,
                                kind: "unreachable",
                                severity: "warning",
                                message: &format!("no answer to {missed} polls: {e}"),
                            })
                            .await?;
                        round.became_unreachable.push(unit.uuid.clone());
                    }
                }
            }
        }
        Ok(round)
    }
}

/// The OID of a notification's trap, for callers matching on it.
pub fn is_cold_start(oid: &Oid) -> bool {
    oid.arcs() == COLD_START
}
