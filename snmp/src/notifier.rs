//! Sending notifications: SNMPv2 traps and informs to many sinks at once.
//!
//! An inform is retried with exponential back-off until the sink answers or
//! a bound on attempts is reached, then given up and logged as an error; a
//! trap is sent once. Sinks are plain addresses with credentials, so the
//! caller may replace them at any time (after a DNS SRV re-resolution, say).
//! The agent's own sink table is not used: its VACM notify view would skip
//! sinks silently (`NotInNotifyView`), and a skipped sink must be an error.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_snmp::{ClientBuilder, Retry, UdpTransport};

use crate::error::SnmpError;
use crate::manager::MAX_UDP_MESSAGE;
use crate::oid::Oid;
use crate::usm::{Credentials, EngineIdentity};
use crate::value::VarBind;

/// Confirmed (inform) or not (trap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyKind {
    /// SNMPv2-Trap: sent once, never acknowledged.
    Trap,
    /// InformRequest: acknowledged, retried until it is.
    Inform,
}

/// One receiver of notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink {
    /// How the sink was named (a DNS name and port, say), for logs.
    pub name: String,
    /// Where to send.
    pub addr: SocketAddr,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Trap or inform.
    pub kind: NotifyKind,
}

/// Retry policy for informs.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Local address of the sending socket.
    pub bind: SocketAddr,
    /// Wait for an acknowledgement this long on the first attempt.
    pub first_timeout: Duration,
    /// Longest wait for one attempt (the wait doubles each time).
    pub max_timeout: Duration,
    /// Attempts before an inform is given up.
    pub max_attempts: u32,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            bind: "0.0.0.0:0".parse().expect("literal address"),
            first_timeout: Duration::from_millis(500),
            max_timeout: Duration::from_secs(4),
            max_attempts: 5,
        }
    }
}

/// What happened at one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOutcome {
    /// The sink's name.
    pub sink: String,
    /// Acknowledged (inform) or sent (trap).
    pub delivered: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// Sends notifications to the current sinks.
pub struct Notifier {
    transport: UdpTransport,
    engine: EngineIdentity,
    config: NotifierConfig,
    sinks: RwLock<Arc<Vec<Sink>>>,
    started: Instant,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("sinks", &self.sinks())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier speaking for the engine `engine` (SNMPv3 traps are sent
    /// as that authoritative engine), sysUpTime counted from `started`.
    pub async fn new(
        config: NotifierConfig,
        engine: EngineIdentity,
        started: Instant,
    ) -> Result<Self, SnmpError> {
        let transport = UdpTransport::builder()
            .bind(config.bind.to_string())
            .max_message_size(MAX_UDP_MESSAGE)
            .build()
            .await
            .map_err(|e| {
                SnmpError::Config(format!(
                    "binding the notification socket {}: {e}",
                    config.bind
                ))
            })?;
        Ok(Notifier {
            transport,
            engine,
            config,
            sinks: RwLock::new(Arc::new(Vec::new())),
            started,
        })
    }

    /// Replaces the sinks.
    pub fn set_sinks(&self, sinks: Vec<Sink>) {
        *self.sinks.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sinks);
    }

    /// The current sinks.
    pub fn sinks(&self) -> Vec<Sink> {
        self.sinks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .to_vec()
    }

    fn uptime(&self) -> u32 {
        (self.started.elapsed().as_millis() / 10) as u32
    }

    /// Sends the notification `trap_oid` with `varbinds` (after sysUpTime.0
    /// and snmpTrapOID.0, which are added) to every sink at once, and
    /// returns when each has been delivered or given up.
    pub async fn notify(&self, trap_oid: &Oid, varbinds: &[VarBind]) -> Vec<SinkOutcome> {
        let sinks = Arc::clone(&self.sinks.read().unwrap_or_else(|e| e.into_inner()));
        self.notify_sinks(&sinks, trap_oid, varbinds).await
    }

    /// Like [`Notifier::notify`], to `sinks` instead of the current ones.
    pub async fn notify_sinks(
        &self,
        sinks: &[Sink],
        trap_oid: &Oid,
        varbinds: &[VarBind],
    ) -> Vec<SinkOutcome> {
        let uptime = self.uptime();
        let mut tasks = Vec::with_capacity(sinks.len());
        for sink in sinks.iter() {
            tasks.push(self.send_one(sink, trap_oid, uptime, varbinds));
        }
        let outcomes = futures_util::future::join_all(tasks).await;
        for outcome in &outcomes {
            if outcome.delivered {
                tracing::debug!(sink = %outcome.sink, %trap_oid, attempts = outcome.attempts, "notification delivered");
            } else {
                tracing::error!(
                    sink = %outcome.sink,
                    %trap_oid,
                    attempts = outcome.attempts,
                    error = outcome.error.as_deref().unwrap_or("unknown"),
                    "notification not delivered; giving up"
                );
            }
        }
        outcomes
    }

    async fn send_one(
        &self,
        sink: &Sink,
        trap_oid: &Oid,
        uptime: u32,
        varbinds: &[VarBind],
    ) -> SinkOutcome {
        let mut outcome = SinkOutcome {
            sink: sink.name.clone(),
            delivered: false,
            attempts: 0,
            error: None,
        };
        let vbs: Vec<async_snmp::VarBind> = varbinds.iter().cloned().map(Into::into).collect();
        let auth = match sink.credentials.client_auth() {
            Ok(auth) => auth,
            Err(e) => {
                outcome.error = Some(e.to_string());
                return outcome;
            }
        };
        match sink.kind {
            NotifyKind::Trap => {
                outcome.attempts = 1;
                let client = ClientBuilder::new(auth)
                    .target(sink.addr)
                    .local_authoritative_engine(self.engine.engine.clone())
                    .retry(Retry::none())
                    .build_with(&self.transport)
                    .await;
                let result = match client {
                    Ok(c) => c.send_trap(&trap_oid.0, uptime, vbs).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => outcome.delivered = true,
                    Err(e) => outcome.error = Some(SnmpError::from_engine(e).to_string()),
                }
            }
            NotifyKind::Inform => {
                let mut timeout = self.config.first_timeout;
                while outcome.attempts < self.config.max_attempts {
                    outcome.attempts += 1;
                    let client = ClientBuilder::new(auth.clone())
                        .target(sink.addr)
                        .request_timeout(timeout)
                        .retry(Retry::none())
                        .build_with(&self.transport)
                        .await;
                    let result = match client {
                        Ok(c) => c.send_inform(&trap_oid.0, uptime, vbs.clone()).await,
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(()) => {
                            outcome.delivered = true;
                            outcome.error = None;
                            break;
                        }
                        Err(e) => {
                            let e = SnmpError::from_engine(e);
                            tracing::warn!(sink = %sink.name, attempt = outcome.attempts, error = %e, "inform not acknowledged");
                            outcome.error = Some(e.to_string());
                            // Back off: the wait for the next answer doubles.
                            timeout = (timeout * 2).min(self.config.max_timeout);
                        }
                    }
                }
            }
        }
        outcome
    }
}
