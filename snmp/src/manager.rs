//! The manager side: GET, GETNEXT, GETBULK walks and SET against agents,
//! over one shared UDP socket.
//!
//! Two things are done here that the engine does not do by itself. The
//! socket advertises a 65,507-byte msgMaxSize (the engine's default, 1,472,
//! makes net-snmp's agent answer a large SNMPv3 GETBULK with genErr), and a
//! walk that still meets tooBig or genErr halves max-repetitions and asks
//! again. And a timeout under SNMPv3 is reported as "timeout (or wrong
//! credentials)", since an agent cannot authenticate its answer to a
//! manager whose key is wrong.

use std::net::SocketAddr;
use std::time::Duration;

use async_snmp::{Client, ClientBuilder, Retry, UdpHandle, UdpTransport};

use crate::error::{ErrorStatus, SnmpError};
use crate::oid::Oid;
use crate::usm::Credentials;
use crate::value::{Value, VarBind};

/// The largest SNMP message over UDP/IPv4 (65,535 − 8 − 20).
pub const MAX_UDP_MESSAGE: usize = 65_507;

/// How a manager talks to agents.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Local address of the shared socket (port 0 picks one).
    pub bind: SocketAddr,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times to resend before giving up.
    pub retries: u32,
    /// max-repetitions a walk starts with.
    pub max_repetitions: u32,
    /// msgMaxSize the socket advertises (SNMPv3): the largest answer it takes.
    pub receive_capacity: usize,
    /// Most bindings one walk may return: a guard against an agent whose
    /// MIB never ends.
    pub max_walk_bindings: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            bind: "0.0.0.0:0".parse().expect("literal address"),
            timeout: Duration::from_secs(2),
            retries: 2,
            max_repetitions: 50,
            receive_capacity: MAX_UDP_MESSAGE,
            max_walk_bindings: 5_000_000,
        }
    }
}

/// What a walk returned and how.
#[derive(Debug, Clone)]
pub struct WalkReport {
    /// The bindings, in OID order.
    pub bindings: Vec<VarBind>,
    /// GETBULK requests sent (retries after tooBig/genErr included).
    pub requests: u32,
    /// max-repetitions at the end of the walk.
    pub max_repetitions: u32,
}

/// A manager: one socket, sessions to many agents.
#[derive(Clone)]
pub struct Manager {
    transport: UdpTransport,
    config: ManagerConfig,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("local_addr", &self.transport.local_addr())
            .finish()
    }
}

/// A conversation with one agent.
#[derive(Clone)]
pub struct Session {
    client: Client<UdpHandle>,
    peer: SocketAddr,
    /// The SNMPv3 user name, for the diagnosis of a timeout.
    v3_user: Option<String>,
    transport: UdpTransport,
    config: ManagerConfig,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("peer", &self.peer).finish()
    }
}

impl Manager {
    /// Binds the shared socket.
    pub async fn bind(config: ManagerConfig) -> Result<Self, SnmpError> {
        let transport = UdpTransport::builder()
            .bind(config.bind.to_string())
            .receive_capacity(config.receive_capacity)
            .send_capacity(MAX_UDP_MESSAGE)
            .recv_buffer_size(4 << 20)
            .build()
            .await
            .map_err(|e| {
                SnmpError::Config(format!(
                    "binding the SNMP manager socket {}: {e}",
                    config.bind
                ))
            })?;
        Ok(Manager { transport, config })
    }

    /// The shared socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// A session with the agent at `peer`.
    pub async fn session(
        &self,
        peer: SocketAddr,
        credentials: &Credentials,
    ) -> Result<Session, SnmpError> {
        let client = ClientBuilder::new(credentials.client_auth()?)
            .target(peer)
            .request_timeout(self.config.timeout)
            .retry(
                Retry::fixed(self.config.retries, Duration::ZERO)
                    .map_err(|e| SnmpError::Config(format!("retries: {e}")))?,
            )
            .build_with(&self.transport)
            .await
            .map_err(SnmpError::from_engine)?;
        Ok(Session {
            client,
            peer,
            v3_user: match credentials {
                Credentials::V3(user) => Some(user.name.clone()),
                Credentials::V2c { .. } => None,
            },
            transport: self.transport.clone(),
            config: self.config.clone(),
        })
    }
}

fn to_engine(oids: &[Oid]) -> Vec<async_snmp::Oid> {
    oids.iter().map(|o| o.0.clone()).collect()
}

impl Session {
    /// The agent's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    async fn error(&self, e: Box<async_snmp::Error>) -> SnmpError {
        let mut err = SnmpError::from_engine(e);
        if let SnmpError::Timeout { report, .. } = &mut err {
            *report = Some(match &self.v3_user {
                Some(user) => self.diagnose_timeout(user).await,
                // A wrong community is dropped silently by agents.
                None => "no answer; a wrong community is dropped silently too".to_owned(),
            });
        }
        err
    }

    /// An agent answers a request whose key is wrong with an unauthenticated
    /// usmStats Report, which a manager must not trust and the engine drops;
    /// so the timeout is all that arrives. To tell the admin more, ask once
    /// at noAuthNoPriv, where Reports are expected: usmStatsUnknownUserNames
    /// means the user does not exist there; usmStatsUnsupportedSecLevels
    /// (or an access-control refusal) means it does, so the keys (or
    /// protocols) are what is wrong.
    async fn diagnose_timeout(&self, user: &str) -> String {
        let probe = ClientBuilder::new(async_snmp::Auth::usm(user.as_bytes()))
            .target(self.peer)
            .request_timeout(self.config.timeout)
            .retry(Retry::none())
            .build_with(&self.transport)
            .await;
        let Ok(probe) = probe else {
            return "no answer".to_owned();
        };
        let sys_up_time = async_snmp::Oid::from_slice(&[1, 3, 6, 1, 2, 1, 1, 3, 0]);
        match probe.get(&sys_up_time).await.map_err(|e| *e) {
            Err(async_snmp::Error::Report { status, .. }) => match *status {
                async_snmp::v3::ReportStatus::UnknownUserName { .. } => {
                    format!("usmStatsUnknownUserNames: user {user:?} is unknown to the agent")
                }
                async_snmp::v3::ReportStatus::UnsupportedSecurityLevel { .. } => format!(
                    "usmStatsUnsupportedSecLevels: user {user:?} exists, so its authentication or privacy key (or protocol) is wrong"
                ),
                other => format!("usmStats Report: {other}"),
            },
            // USM accepted the user at noAuthNoPriv and access control then
            // refused it: the user exists there.
            Err(async_snmp::Error::Snmp { status, .. }) => format!(
                "user {user:?} exists (a noAuthNoPriv probe got {status}), so its authentication or privacy key (or protocol) is wrong"
            ),
            Err(async_snmp::Error::Timeout { .. }) => {
                "no answer at all: agent down or unreachable".to_owned()
            }
            Err(other) => format!("probe failed: {other}"),
            Ok(_) => format!(
                "user {user:?} is accepted without authentication; the authPriv keys are wrong"
            ),
        }
    }

    /// GET of several instances in one request.
    pub async fn get(&self, oids: &[Oid]) -> Result<Vec<VarBind>, SnmpError> {
        let response = self.client.get_many(&to_engine(oids)).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(self.error(e).await),
        };
        Ok(response.varbinds.into_iter().map(VarBind::from).collect())
    }

    /// GET of one instance; `None` when the agent has no such object or
    /// instance.
    pub async fn get_one(&self, oid: &Oid) -> Result<Option<Value>, SnmpError> {
        let mut vbs = self.get(std::slice::from_ref(oid)).await?;
        Ok(vbs.pop().map(|vb| vb.value).filter(|v| !v.is_exception()))
    }

    /// GETNEXT of several OIDs in one request.
    pub async fn get_next(&self, oids: &[Oid]) -> Result<Vec<VarBind>, SnmpError> {
        let response = self.client.get_next_many(&to_engine(oids)).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(self.error(e).await),
        };
        Ok(response.varbinds.into_iter().map(VarBind::from).collect())
    }

    /// SET of several bindings in one request (atomic at the agent).
    pub async fn set(&self, varbinds: &[VarBind]) -> Result<Vec<VarBind>, SnmpError> {
        let pairs: Vec<(async_snmp::Oid, async_snmp::Value)> = varbinds
            .iter()
            .map(|vb| (vb.oid.0.clone(), vb.value.clone().into()))
            .collect();
        let response = self.client.set_many(&pairs).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(self.error(e).await),
        };
        Ok(response.varbinds.into_iter().map(VarBind::from).collect())
    }

    /// Every instance under `root`, by GETBULK. On tooBig or genErr the
    /// request is asked again with half the repetitions, down to one.
    pub async fn walk(&self, root: &Oid) -> Result<Vec<VarBind>, SnmpError> {
        Ok(self.walk_report(root).await?.bindings)
    }

    /// [`Session::walk`], with how it went.
    pub async fn walk_report(&self, root: &Oid) -> Result<WalkReport, SnmpError> {
        let mut requests = 0;
        let mut out: Vec<VarBind> = Vec::new();
        let mut reps = self.config.max_repetitions.max(1);
        let mut from = root.clone();
        loop {
            requests += 1;
            let batch = match self.client.get_bulk(&[from.0.clone()], 0, reps).await {
                Ok(batch) => batch,
                Err(e) => {
                    let err = self.error(e).await;
                    match err.status() {
                        Some(ErrorStatus::TooBig | ErrorStatus::GenErr) if reps > 1 => {
                            reps = (reps / 2).max(1);
                            tracing::debug!(peer = %self.peer, reps, "walk: smaller GETBULK after {err}");
                            continue;
                        }
                        _ => return Err(err),
                    }
                }
            };
            if batch.is_empty() {
                return Ok(WalkReport {
                    bindings: out,
                    requests,
                    max_repetitions: reps,
                });
            }
            for vb in batch {
                let vb = VarBind::from(vb);
                if vb.value == Value::EndOfMibView || !vb.oid.starts_with(root) {
                    return Ok(WalkReport {
                        bindings: out,
                        requests,
                        max_repetitions: reps,
                    });
                }
                if vb.oid <= from {
                    return Err(SnmpError::Protocol(format!(
                        "{}: walk of {root} went backwards ({} after {from})",
                        self.peer, vb.oid
                    )));
                }
                from = vb.oid.clone();
                out.push(vb);
                if out.len() > self.config.max_walk_bindings {
                    return Err(SnmpError::Protocol(format!(
                        "{}: walk of {root} passed {} bindings",
                        self.peer, self.config.max_walk_bindings
                    )));
                }
            }
        }
    }
}
