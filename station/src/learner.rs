//! Turning notifications into inventory: a coldStart or linkUp from a unit
//! makes the station poll it at once and record what it holds; a linkDown
//! takes it out of service; a DVSAN-MIB notification re-polls it. Only
//! notifications that authenticate get here (the receiver drops the rest);
//! refusals are recorded as warning events with their source.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dvsan_snmp::dvsan_mib;
use dvsan_snmp::manager::Manager;
use dvsan_snmp::{Credentials, Notification, Oid, Refusal, Value};

use crate::inventory::{Inventory, InventoryError, NewEvent, UnitState};
use crate::unit_address::{ResolveError, UnitResolver, split_host_port};
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
    /// The unit's DNS name did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
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

/// Whether a new unit serves at once or waits for an admin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Admission {
    /// An authenticated announcement is enough.
    #[default]
    Auto,
    /// New units stay pending until approved.
    Manual,
}

/// Applies notifications to the inventory.
#[derive(Debug, Clone)]
pub struct Learner {
    inventory: Inventory,
    manager: Manager,
    credentials: Credentials,
    resolver: UnitResolver,
    admission: Admission,
    rounds: Arc<AtomicU64>,
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
            resolver: UnitResolver::system(),
            admission: Admission::Auto,
            rounds: Arc::default(),
        }
    }

    /// The same learner admitting new units as `admission` says.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// Resolves a unit endpoint as the inventory keeps it.
    pub async fn resolve(&self, endpoint: &str) -> Result<SocketAddr, ResolveError> {
        self.resolver.resolve(endpoint).await
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Where to poll the unit that sent `n`: the SNMP endpoint it names
    /// (dvsanUnitSnmpEndpoint: an address, or a DNS name kept as such),
    /// else its source address on port 161.
    pub fn snmp_target(n: &Notification) -> String {
        let named = find(n, &dvsan_mib::DVSAN_UNIT_SNMP_ENDPOINT)
            .and_then(|v| v.as_text().map(str::to_string));
        if let Some(text) = named {
            if let Ok(a) = text.parse::<SocketAddr>() {
                // A unit that gives a wildcard address is asked where its
                // notification came from.
                return if a.ip().is_unspecified() {
                    SocketAddr::new(n.source.ip(), a.port()).to_string()
                } else {
                    a.to_string()
                };
            }
            if split_host_port(&text).is_some() {
                return text;
            }
        }
        SocketAddr::new(n.source.ip(), 161).to_string()
    }

    /// What orders a unit's notifications: its UUID when given, else its
    /// source address.
    pub fn unit_key(n: &Notification) -> String {
        match find(n, &dvsan_mib::DVSAN_UNIT_UUID) {
            Some(Value::OctetString(b)) => {
                uuid_text(&b).unwrap_or_else(|| n.source.ip().to_string())
            }
            _ => n.source.ip().to_string(),
        }
    }

    /// Where to poll the unit that sent `n`: as [`Learner::snmp_target`]
    /// when it names its endpoint; else, when it names its UUID and the
    /// unit is known, where the inventory polls it; else (DVSAN-MIB
    /// notifications carry neither) every known unit polled at the
    /// notification's source address; else that address on port 161.
    async fn targets_of(&self, n: &Notification) -> Result<Vec<String>, LearnerError> {
        if find(n, &dvsan_mib::DVSAN_UNIT_SNMP_ENDPOINT).is_some() {
            return Ok(vec![Self::snmp_target(n)]);
        }
        let uuid = match find(n, &dvsan_mib::DVSAN_UNIT_UUID) {
            Some(Value::OctetString(b)) => uuid_text(&b),
            _ => None,
        };
        if let Some(uuid) = uuid
            && let Some(u) = self.inventory.unit(&uuid).await?
        {
            return Ok(vec![u.snmp_address]);
        }
        let ip = n.source.ip();
        let mut at_source = Vec::new();
        for u in self.inventory.units().await? {
            let resolved = match u.snmp_address.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => self.resolver.resolve(&u.snmp_address).await.ok(),
            };
            if resolved.is_some_and(|a| a.ip() == ip) {
                at_source.push(u.snmp_address);
            }
        }
        if at_source.is_empty() {
            at_source.push(Self::snmp_target(n));
        }
        Ok(at_source)
    }

    /// Polls the unit at `addr` and records it.
    pub async fn learn(&self, addr: SocketAddr) -> Result<Outcome, LearnerError> {
        self.learn_endpoint(&addr.to_string()).await
    }

    /// Polls the unit at `endpoint` (`ADDR:PORT` or `NAME:PORT`, resolved
    /// now) and records it under that endpoint. A known unit keeps its
    /// state if pending, else becomes online; a new one is online, or
    /// pending under manual admission.
    pub async fn learn_endpoint(&self, endpoint: &str) -> Result<Outcome, LearnerError> {
        let addr = self.resolver.resolve(endpoint).await?;
        let session = self
            .manager
            .session(addr, &self.credentials)
            .await
            .map_err(|source| LearnerError::Session {
                peer: addr,
                source: Box::new(source),
            })?;
        let snapshot = UnitSnapshot::poll(&session).await?;
        let known = self.inventory.unit(&snapshot.uuid).await?;
        let state = match &known {
            Some(u) if u.unit_state() == UnitState::Pending => UnitState::Pending,
            None if self.admission == Admission::Manual => UnitState::Pending,
            _ => UnitState::Online,
        };
        let new = self
            .inventory
            .upsert_unit_at(&snapshot, endpoint, state)
            .await?;
        self.inventory
            .record_event(NewEvent {
                unit_uuid: Some(&snapshot.uuid),
                source: endpoint,
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
        if new && state == UnitState::Pending {
            self.inventory
                .record_event(NewEvent {
                    unit_uuid: Some(&snapshot.uuid),
                    source: endpoint,
                    kind: "pending",
                    severity: "warning",
                    message: &format!(
                        "new unit {} waits for an admin's approval before it serves",
                        snapshot.name
                    ),
                })
                .await?;
        }
        tracing::info!(unit = %snapshot.uuid, name = %snapshot.name, %endpoint, new, state = state.as_str(), "unit learned");
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
            "coldStart" | "linkUp" | "dvsanNotification" => {
                let mut outcome = Ok(Outcome::Ignored);
                for target in self.targets_of(n).await? {
                    outcome = self.learn_endpoint(&target).await;
                }
                outcome
            }
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

/// Longest back-off, in poll rounds, for a unit that stopped answering.
pub const MAX_BACKOFF_ROUNDS: u64 = 16;

/// Whether a unit that missed `missed` polls in a row is polled in round
/// `round`: every round until it is unreachable, then every 2, 4 … up to
/// [`MAX_BACKOFF_ROUNDS`] rounds, so dead units cost little and a unit that
/// comes back is seen again within that many rounds (at once if it
/// announces itself).
pub fn due(missed: i64, round: u64) -> bool {
    let over = missed - MISSED_POLLS_UNREACHABLE;
    if over < 0 {
        return true;
    }
    let every = 1u64
        .checked_shl(over.min(6) as u32 + 1)
        .unwrap_or(MAX_BACKOFF_ROUNDS)
        .min(MAX_BACKOFF_ROUNDS);
    round.is_multiple_of(every)
}

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
        let round = self.rounds.fetch_add(1, Ordering::Relaxed);
        let units = self.inventory.units().await?;
        let polled: Vec<_> = stream::iter(
            units
                .into_iter()
                .filter(|u| u.unit_state() != UnitState::Pending)
                .filter(|u| due(u.missed_polls, round)),
        )
        .map(|unit| async move {
            let result = self.learn_endpoint(&unit.snmp_address).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_units_are_polled_less_and_less_often() {
        let polled = |missed: i64| (0..32u64).filter(|r| due(missed, *r)).count();
        assert_eq!(polled(0), 32);
        assert_eq!(polled(2), 32);
        assert_eq!(polled(3), 16, "every 2nd round once unreachable");
        assert_eq!(polled(4), 8);
        assert_eq!(polled(5), 4);
        assert_eq!(polled(6), 2, "every 16th round at most");
        assert_eq!(polled(60), 2);
    }
}
