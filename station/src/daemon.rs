//! The station daemon's main loop: the notification receiver, the learner
//! and the periodic poll, under one shutdown signal.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dvsan_snmp::manager::{Manager, ManagerConfig};
use dvsan_snmp::{Credentials, EngineIdentity, ReceiverConfig, TrapReceiver, UsmUser};

use crate::http::AppState;
use crate::inventory::Inventory;
use crate::learner::Learner;
use crate::operations::Operations;
use crate::unit_control::UnitControl;

/// Everything the station needs, validated.
#[derive(Debug, Clone)]
pub struct StationConfig {
    /// Inventory database URL (`sqlite://FILE`).
    pub db: String,
    /// Where notifications arrive (UDP).
    pub trap_listen: SocketAddr,
    /// Where the REST API and web console listen (TCP); none when `None`.
    pub web_listen: Option<SocketAddr>,
    /// Time between polls of every unit.
    pub poll_interval: Duration,
    /// How long to wait for a unit's answer.
    pub snmp_timeout: Duration,
    /// The SNMPv3 user units know the station by.
    pub user: UsmUser,
    /// SNMPv2c communities whose notifications are believed as well (for
    /// units configured with plain traps only).
    pub communities: Vec<String>,
    /// Where the station keeps its SNMP engine identity; in memory when
    /// `None` (snmpEngineBoots then restarts at 1).
    pub engine_file: Option<std::path::PathBuf>,
    /// Whether new units serve at once or wait for an admin's approval.
    pub admission: crate::learner::Admission,
}

/// Why the station stopped.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// Opening the inventory failed.
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    /// The SNMP side could not start.
    #[error(transparent)]
    Snmp(#[from] dvsan_snmp::SnmpError),
    /// The web listener could not be bound or failed.
    #[error("web listener {addr}: {source}")]
    Web {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Most notifications handled at once (each may poll a unit).
const LEARN_CONCURRENCY: usize = 64;

/// Most notifications received and not yet handled.
const MAX_PENDING_NOTIFICATIONS: usize = 20_000;

/// A station bound to its sockets, ready to run.
pub struct Station {
    learner: Learner,
    operations: Operations,
    receiver: TrapReceiver,
    web: Option<tokio::net::TcpListener>,
    poll_interval: Duration,
}

impl Station {
    /// Opens the inventory and binds the sockets.
    pub async fn bind(config: StationConfig) -> Result<Self, StationError> {
        let inventory = Inventory::open(&config.db).await?;
        let manager = Manager::bind(ManagerConfig {
            bind: if config.trap_listen.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            }
            .parse()
            .expect("literal address"),
            timeout: config.snmp_timeout,
            ..ManagerConfig::default()
        })
        .await?;
        let engine = match &config.engine_file {
            Some(path) => EngineIdentity::load_or_create(path)?,
            None => EngineIdentity::ephemeral()?,
        };
        let receiver = TrapReceiver::bind(ReceiverConfig {
            listen: config.trap_listen,
            engine,
            users: vec![config.user.clone()],
            communities: config.communities.clone(),
            recv_buffer: 8 << 20,
        })
        .await?;
        let web = match config.web_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StationError::Web { addr, source })?,
            ),
            None => None,
        };
        let credentials = Credentials::V3(config.user);
        let operations = Operations::new(
            inventory.clone(),
            UnitControl::new(manager.clone(), credentials.clone()),
        );
        Ok(Station {
            learner: Learner::new(inventory, manager, credentials).with_admission(config.admission),
            operations,
            receiver,
            web,
            poll_interval: config.poll_interval,
        })
    }

    /// Where notifications are received.
    pub fn trap_address(&self) -> SocketAddr {
        self.receiver.local_addr()
    }

    /// Where the REST API and web console listen, when they do.
    pub fn web_address(&self) -> Option<SocketAddr> {
        self.web.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The station's operations.
    pub fn operations(&self) -> &Operations {
        &self.operations
    }

    /// The learner (and through it, the inventory).
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// Runs until `shutdown` completes. Polling runs in a task of its own,
    /// so a slow or dead unit never delays the handling of notifications.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), StationError> {
        tokio::pin!(shutdown);
        let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
        let web = self.web.take().map(|listener| {
            let state = AppState {
                ops: self.operations.clone(),
            };
            tokio::spawn(crate::http::serve(listener, state, async move {
                let _ = web_stopped.await;
            }))
        });
        let poller = {
            let learner = self.learner.clone();
            let every = self.poll_interval;
            tokio::spawn(async move {
                let mut poll = tokio::time::interval(every);
                poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    // The first tick is immediate: poll what the inventory knows.
                    poll.tick().await;
                    match learner.poll_all().await {
                        Ok(round) => tracing::debug!(?round, "poll round"),
                        Err(e) => tracing::warn!(error = %e, "poll round failed"),
                    }
                }
            })
        };
        let learn_slots = Arc::new(tokio::sync::Semaphore::new(LEARN_CONCURRENCY));
        let unit_turns: Mutex<HashMap<String, tokio::sync::watch::Receiver<bool>>> =
            Mutex::default();
        let mut handlers = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("station stopping");
                    poller.abort();
                    let _ = web_stop.send(());
                    if let Some(web) = web {
                        let _ = tokio::time::timeout(Duration::from_secs(5), web).await;
                    }
                    return Ok(());
                }
                n = self.receiver.recv() => match n {
                    Ok(n) => {
                        // Each notification is handled in a task of its own
                        // (a slow or dead unit must not hold up the others,
                        // nor the acknowledgement of later informs), at most
                        // LEARN_CONCURRENCY at once, and one unit's in the
                        // order they arrived: each waits for the previous
                        // one of its unit to finish.
                        let (done, mine) = tokio::sync::watch::channel(false);
                        let previous = {
                            let mut map = unit_turns.lock().unwrap_or_else(|e| e.into_inner());
                            if map.len() > 4096 {
                                map.retain(|_, t: &mut tokio::sync::watch::Receiver<bool>| !*t.borrow());
                            }
                            map.insert(Learner::unit_key(&n), mine)
                        };
                        let slots = Arc::clone(&learn_slots);
                        let learner = self.learner.clone();
                        handlers.spawn(async move {
                            if let Some(mut previous) = previous {
                                // Err: the previous task is gone; go on.
                                let _ = previous.wait_for(|finished| *finished).await;
                            }
                            let permit = slots.acquire_owned().await;
                            if let Err(e) = learner.handle(&n).await {
                                tracing::warn!(source = %n.source, error = %e, "notification not applied");
                            }
                            drop(permit);
                            let _ = done.send(true);
                        });
                        while handlers.try_join_next().is_some() {}
                        // Back-pressure against a flood: the socket buffer
                        // holds what arrives meanwhile.
                        while handlers.len() > MAX_PENDING_NOTIFICATIONS {
                            let _ = handlers.join_next().await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "notification receiver"),
                },
                Some(refusal) = self.receiver.refused() => {
                    if let Err(e) = self.learner.refused(&refusal).await {
                        tracing::warn!(error = %e, "recording a refused notification");
                    }
                }
            }
        }
    }
}
