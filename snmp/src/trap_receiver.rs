//! Receiving notifications: SNMPv2c and SNMPv3 traps and informs, of which
//! only those that authenticate reach the application.
//!
//! A v2c notification counts as authenticated when its community is one of
//! the configured ones (cleartext, so only as good as the network); a v3 one
//! when USM verified it (authNoPriv or authPriv) for a configured user.
//! Everything else is counted and dropped, and an inform that is dropped is
//! not acknowledged. The socket asks for a large receive buffer so a burst of
//! notifications (every unit announcing itself after a power cut) is not
//! lost in the kernel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_snmp::SecurityLevel;
use async_snmp::notification::{
    Notification as EngineNotification, NotificationAcceptance, NotificationReceiver,
};

use crate::error::SnmpError;
use crate::oid::Oid;
use crate::usm::{EngineIdentity, UsmUser};
use crate::value::VarBind;

/// How the receiver listens and whom it believes.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// UDP address (port 0 picks a free port; 162 is the standard one).
    pub listen: SocketAddr,
    /// This receiver's engine (authoritative for informs it acknowledges).
    pub engine: EngineIdentity,
    /// SNMPv3 users whose notifications are believed.
    pub users: Vec<UsmUser>,
    /// SNMPv2c communities whose notifications are believed.
    pub communities: Vec<String>,
    /// Requested SO_RCVBUF in bytes (the kernel may cap it at rmem_max).
    pub recv_buffer: usize,
}

/// Who sent a notification, as far as SNMP can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// SNMPv2c with this community.
    Community(String),
    /// SNMPv3, authenticated as this user.
    User(String),
}

/// One accepted notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The datagram's source address (not authenticated by SNMP).
    pub source: SocketAddr,
    /// Who sent it.
    pub sender: Sender,
    /// Whether it was an inform (already acknowledged when returned).
    pub inform: bool,
    /// snmpTrapOID.0.
    pub trap_oid: Oid,
    /// sysUpTime.0 of the sender.
    pub uptime: u32,
    /// The bindings after sysUpTime.0 and snmpTrapOID.0.
    pub varbinds: Vec<VarBind>,
}

/// Counts of notifications not delivered to the application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverCounters {
    /// v2c notifications with a community not configured.
    pub bad_community: u64,
    /// v3 notifications without authentication.
    pub unauthenticated: u64,
    /// v1 traps (dvsan does not take SNMPv1).
    pub wrong_version: u64,
    /// usmStatsUnknownUserNames.
    pub unknown_user: u32,
    /// usmStatsWrongDigests.
    pub wrong_digest: u32,
    /// usmStatsDecryptionErrors.
    pub decryption_errors: u32,
    /// usmStatsNotInTimeWindows.
    pub not_in_time_window: u32,
    /// Datagrams dropped by the engine for other reasons (malformed …).
    pub silent_drops: u32,
}

#[derive(Debug, Default)]
struct PolicyCounters {
    bad_community: AtomicU64,
    unauthenticated: AtomicU64,
    wrong_version: AtomicU64,
}

/// A notification refused because it did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Where it came from (not authenticated, by definition).
    pub source: SocketAddr,
    /// Why it was refused.
    pub reason: String,
}

/// The notification receiver.
pub struct TrapReceiver {
    receiver: NotificationReceiver,
    counters: Arc<PolicyCounters>,
    refusals: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Refusal>>,
}

impl std::fmt::Debug for TrapReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrapReceiver")
            .field("local_addr", &self.receiver.local_addr())
            .finish()
    }
}

impl TrapReceiver {
    /// Binds the socket.
    pub async fn bind(config: ReceiverConfig) -> Result<Self, SnmpError> {
        let counters = Arc::new(PolicyCounters::default());
        let communities: Vec<Vec<u8>> = config
            .communities
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let policy_counters = Arc::clone(&counters);
        // Bounded: a flood of spoofed notifications must not grow memory;
        // past the bound refusals are only counted.
        let (refused_tx, refused_rx) = tokio::sync::mpsc::channel::<Refusal>(1024);
        let usm_refused = refused_tx.clone();
        let mut builder = NotificationReceiver::builder()
            .bind(config.listen.to_string())
            .authoritative_engine(config.engine.engine.clone())
            .recv_buffer_size(Some(config.recv_buffer))
            .usm_failure_hook(Arc::new(move |source, counter| {
                // An authenticated message outside the time window is the
                // normal second step of every v3 inform (RFC 3414 4.2.3:
                // the sender learns our boots and time from the Report),
                // and a replayed genuine one changes nothing: not a refusal
                // worth an admin's attention. It is still counted.
                if counter == "usmStatsNotInTimeWindows" {
                    return;
                }
                let reason = match counter {
                    "usmStatsWrongDigests" => "SNMPv3 authentication failed (wrong key)",
                    "usmStatsUnknownUserNames" => "SNMPv3 user unknown",
                    "usmStatsUnsupportedSecLevels" => "SNMPv3 security level not allowed for the user",
                    "usmStatsDecryptionErrors" => "SNMPv3 message does not decrypt (wrong privacy key)",
                    other => other,
                };
                let _ = usm_refused.try_send(Refusal {
                    source,
                    reason: format!("{reason}; {counter}"),
                });
            }))
            .acceptance_policy(move |n| {
                let verdict = match (n.security_level, n.community) {
                    (Some(level), _) if level >= SecurityLevel::AuthNoPriv => {
                        NotificationAcceptance::Accept
                    }
                    (Some(_), _) => {
                        policy_counters
                            .unauthenticated
                            .fetch_add(1, Ordering::Relaxed);
                        NotificationAcceptance::Reject
                    }
                    (None, _) if n.version == async_snmp::Version::V1 => {
                        policy_counters
                            .wrong_version
                            .fetch_add(1, Ordering::Relaxed);
                        NotificationAcceptance::Reject
                    }
                    (None, Some(c))
                        if communities.iter().any(|ok| ok.as_slice() == c.as_bytes()) =>
                    {
                        NotificationAcceptance::Accept
                    }
                    (None, _) => {
                        policy_counters
                            .bad_community
                            .fetch_add(1, Ordering::Relaxed);
                        NotificationAcceptance::Reject
                    }
                };
                if verdict == NotificationAcceptance::Reject {
                    let reason = match (n.security_level, n.community) {
                        (Some(_), _) => "SNMPv3 without authentication",
                        (None, _) if n.version == async_snmp::Version::V1 => "SNMPv1",
                        _ => "unknown community",
                    };
                    tracing::warn!(source = %n.source, reason, "notification refused: not authenticated");
                    let _ = refused_tx.try_send(Refusal { source: n.source, reason: reason.to_owned() });
                }
                verdict
            });
        for user in &config.users {
            user.validate()?;
            builder = builder
                .usm_user(user.name.clone().into_bytes(), |u| user.engine_user(u))
                .map_err(|e| SnmpError::Config(format!("SNMPv3 user {:?}: {e}", user.name)))?;
        }
        let receiver = builder.build().await.map_err(|e| {
            SnmpError::Config(format!(
                "listening for notifications on {}: {e}",
                config.listen
            ))
        })?;
        Ok(TrapReceiver {
            receiver,
            counters,
            refusals: tokio::sync::Mutex::new(refused_rx),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.receiver.local_addr()
    }

    /// This receiver's snmpEngineID (senders of v3 informs localize to it).
    pub fn engine_id(&self) -> &[u8] {
        self.receiver.engine_id()
    }

    /// The next accepted notification; informs are acknowledged before it
    /// is returned.
    pub async fn recv(&self) -> Result<Notification, SnmpError> {
        loop {
            let received = self
                .receiver
                .recv()
                .await
                .map_err(|e| SnmpError::Protocol(format!("notification receiver: {e}")))?;
            let source = received.source;
            let (sender, inform, trap_oid, uptime, varbinds) = match received.notification {
                EngineNotification::TrapV2c {
                    community,
                    uptime,
                    trap_oid,
                    varbinds,
                    ..
                } => (
                    Sender::Community(String::from_utf8_lossy(community.as_bytes()).into_owned()),
                    false,
                    trap_oid,
                    uptime,
                    varbinds,
                ),
                EngineNotification::InformV2c {
                    community,
                    uptime,
                    trap_oid,
                    varbinds,
                    ..
                } => (
                    Sender::Community(String::from_utf8_lossy(community.as_bytes()).into_owned()),
                    true,
                    trap_oid,
                    uptime,
                    varbinds,
                ),
                EngineNotification::TrapV3 {
                    username,
                    uptime,
                    trap_oid,
                    varbinds,
                    ..
                } => (
                    Sender::User(String::from_utf8_lossy(&username).into_owned()),
                    false,
                    trap_oid,
                    uptime,
                    varbinds,
                ),
                EngineNotification::InformV3 {
                    username,
                    uptime,
                    trap_oid,
                    varbinds,
                    ..
                } => (
                    Sender::User(String::from_utf8_lossy(&username).into_owned()),
                    true,
                    trap_oid,
                    uptime,
                    varbinds,
                ),
                // Refused by the policy above; never delivered.
                EngineNotification::TrapV1 { .. } => continue,
            };
            // The engine's notification bindings start with sysUpTime.0 and
            // snmpTrapOID.0 when they were sent; keep only the rest.
            let skip = [
                async_snmp::Oid::from_slice(&[1, 3, 6, 1, 2, 1, 1, 3, 0]),
                async_snmp::Oid::from_slice(&[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]),
            ];
            let varbinds = varbinds
                .into_iter()
                .filter(|vb| !skip.contains(&vb.oid))
                .map(VarBind::from)
                .collect();
            return Ok(Notification {
                source,
                sender,
                inform,
                trap_oid: Oid(trap_oid),
                uptime,
                varbinds,
            });
        }
    }

    /// The next notification refused for not authenticating: a wrong
    /// community, v3 without authentication, v1, or a v3 message that USM
    /// refused (unknown user, wrong key, outside the time window).
    pub async fn refused(&self) -> Option<Refusal> {
        self.refusals.lock().await.recv().await
    }

    /// Notifications refused so far, by reason.
    pub fn counters(&self) -> ReceiverCounters {
        ReceiverCounters {
            bad_community: self.counters.bad_community.load(Ordering::Relaxed),
            unauthenticated: self.counters.unauthenticated.load(Ordering::Relaxed),
            wrong_version: self.counters.wrong_version.load(Ordering::Relaxed),
            unknown_user: self.receiver.usm_unknown_usernames(),
            wrong_digest: self.receiver.usm_wrong_digests(),
            decryption_errors: self.receiver.usm_decryption_errors(),
            not_in_time_window: self.receiver.usm_not_in_time_windows(),
            silent_drops: self.receiver.snmp_silent_drops(),
        }
    }
}
