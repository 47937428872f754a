//! The unit's lifecycle: assemble the storage from its disks, serve NBD and
//! SNMP, announce the unit (coldStart), watch links and health, and at
//! shutdown withdraw it (linkDown, waiting a bounded time for the stations'
//! acknowledgement), stop the NBD server after its in-flight requests and
//! flush every volume.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dvsan_snmp::dvsan_mib::DVSAN_MIB;
use dvsan_snmp::if_mib::{Interfaces, OperStatus};
use dvsan_snmp::system_group::{SystemGroup, SystemInfo};
use dvsan_snmp::{
    AgentConfig, AgentHandle, Credentials, EngineIdentity, Notifier, NotifierConfig, NotifyKind,
    Sink, SinkOutcome, SnmpAgent, UsmUser,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::announce::{Announcer, Lifecycle, LinkState, station_sinks};
use crate::discovery::{StationDirectory, StationSource};
use crate::exports::VolumeExports;
use crate::mib::{UnitContext, UnitInfo, dvsan_module, nbd_tls};
use crate::storage::{DiskSpec, MaintenanceConfig, StorageError, Unit};

/// Where a station's notifications go when no port is given.
pub const STATION_PORT: u16 = 162;

/// One `--disk PATH[=SIZE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskArg {
    /// File or block device.
    pub path: PathBuf,
    /// Create the file sparse with this many bytes when it does not exist.
    pub size: Option<u64>,
}

/// Everything `dvsan agent` runs with, checked.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The unit's name (sysName, dvsanUnitName); `None` keeps the recorded
    /// one, or the host name.
    pub name: Option<String>,
    /// Engine state and other local files.
    pub data_dir: PathBuf,
    /// The unit's disks.
    pub disks: Vec<DiskArg>,
    /// SNMP agent address.
    pub snmp_listen: SocketAddr,
    /// NBD server address.
    pub nbd_listen: SocketAddr,
    /// Stations to announce to (informs): addresses, or a DNS SRV domain
    /// re-resolved when sends fail.
    pub stations: Option<StationSource>,
    /// How the stations were configured, for dvsanUnitStationAddress.
    pub stations_text: String,
    /// Monitoring tools that get plain traps.
    pub trap_sinks: Vec<(String, SocketAddr)>,
    /// Community of those traps.
    pub trap_community: String,
    /// The SNMPv3 user stations manage the unit as (and informs go as).
    pub user: UsmUser,
    /// Read-only v2c community for monitoring tools.
    pub read_community: Option<String>,
    /// Read-write v2c community (only when explicitly configured).
    pub write_community: Option<String>,
    /// capacityLow threshold, percent free.
    pub low_threshold: u32,
    /// Interfaces whose return to up sends linkUp; empty: the one the SNMP
    /// address is on, when it is on one.
    pub watch_interfaces: Vec<String>,
    /// Where interfaces are read from (normally /sys/class/net).
    pub sysfs_net: PathBuf,
    /// Inform retry policy.
    pub inform: NotifierConfig,
    /// Longest wait for the stations' acknowledgement of linkDown.
    pub shutdown_wait: Duration,
    /// The DNS name stations and clients reach the unit by; when set, the
    /// SNMP and NBD endpoints the unit advertises name it instead of an
    /// address, so a renumbered unit keeps its identity.
    pub advertise_host: Option<String>,
    /// How RAID groups are rebuilt and resynchronised: the rate limit, and
    /// whether any free disk (not only a designated hot spare) replaces a
    /// lost member by itself.
    pub maintenance: MaintenanceConfig,
    /// TLS for the NBD server (`NBD_OPT_STARTTLS`), optional or required;
    /// `None`: none offered.
    pub nbd_tls: Option<Arc<dvsan_nbd::TlsPolicy>>,
}

/// Start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Storage could not be assembled.
    #[error("assembling the unit's disks: {0}")]
    Storage(#[from] StorageError),
    /// A socket could not be bound.
    #[error("{what} {addr}: {source}")]
    Bind {
        /// Which server.
        what: &'static str,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SNMP failed to start.
    #[error("{0}")]
    Snmp(Box<dvsan_snmp::SnmpError>),
    /// Local files.
    #[error("{context}: {source}")]
    Io {
        /// What was done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl From<dvsan_snmp::SnmpError> for AgentError {
    fn from(e: dvsan_snmp::SnmpError) -> Self {
        AgentError::Snmp(Box::new(e))
    }
}

/// Times measured at start, for the start-up benchmark and the log.
#[derive(Debug, Clone, Copy)]
pub struct StartTimes {
    /// Until the first NBD export could answer (listener bound, storage open).
    pub nbd_ready: Duration,
    /// Until the coldStart went out.
    pub announced: Duration,
}

/// A running unit.
pub struct RunningAgent {
    ctx: UnitContext,
    snmp: Option<AgentHandle>,
    snmp_addr: SocketAddr,
    nbd_addr: SocketAddr,
    nbd_stop: watch::Sender<bool>,
    nbd_task: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
    announcer: Announcer,
    link: LinkState,
    shutdown_wait: Duration,
    cold_start: Option<JoinHandle<Vec<SinkOutcome>>>,
    times: StartTimes,
}

impl std::fmt::Debug for RunningAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningAgent")
            .field("snmp", &self.snmp_addr)
            .field("nbd", &self.nbd_addr)
            .finish_non_exhaustive()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "dvsan-unit".into())
}

/// Opens the unit on `disks`: creates missing files of a given size,
/// formats a new unit when no disk carries dvsan's superblock yet, else
/// reassembles the unit from the disks. Maintenance (rebuilds, resyncs)
/// runs with the defaults.
pub fn assemble(disks: &[DiskArg]) -> Result<Unit, AgentError> {
    assemble_with(disks, MaintenanceConfig::default())
}

/// [`assemble`], with maintenance running as `maintenance` says from the
/// start.
pub fn assemble_with(
    disks: &[DiskArg],
    maintenance: MaintenanceConfig,
) -> Result<Unit, AgentError> {
    let mut fresh = Vec::new();
    let mut formatted = Vec::new();
    for d in disks {
        let exists = d.path.exists();
        if !exists && d.size.is_none() {
            return Err(AgentError::Io {
                context: format!("disk {}", d.path.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "does not exist (give PATH=SIZE to create a file)",
                ),
            });
        }
        if exists && crate::storage::disk::Disk::open(&d.path).is_ok() {
            formatted.push(d.path.clone());
        } else {
            let size = match (d.size, std::fs::metadata(&d.path)) {
                (Some(s), _) => s,
                (None, Ok(m)) => m.len(),
                (None, Err(e)) => {
                    return Err(AgentError::Io {
                        context: format!("disk {}", d.path.display()),
                        source: e,
                    });
                }
            };
            fresh.push(DiskSpec {
                path: d.path.clone(),
                size,
            });
        }
    }
    if formatted.is_empty() {
        tracing::info!(
            disks = fresh.len(),
            "no dvsan disk found: formatting a new unit"
        );
        return Ok(Unit::create_with(&fresh, maintenance)?);
    }
    let paths: Vec<&std::path::Path> = formatted.iter().map(PathBuf::as_path).collect();
    let mut unit = Unit::open_with(&paths, maintenance)?;
    for spec in &fresh {
        unit.add_disk(spec)?;
        tracing::info!(disk = %spec.path.display(), "new disk added to the unit");
    }
    Ok(unit)
}

/// `HOST:PORT` with the advertised DNS name, else the advertised address.
fn endpoint(host: &Option<String>, listen: SocketAddr, toward: Option<SocketAddr>) -> String {
    match host {
        Some(h) => format!("{h}:{}", listen.port()),
        None => advertised(listen, toward).to_string(),
    }
}

/// The address others reach a listener at: its own, or when it listens on
/// every address, the local address the route to `toward` leaves from.
fn advertised(listen: SocketAddr, toward: Option<SocketAddr>) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let ip = toward.and_then(|peer| {
        let bind: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let s = std::net::UdpSocket::bind(bind).ok()?;
        s.connect(peer).ok()?;
        s.local_addr().ok().map(|a| a.ip())
    });
    SocketAddr::new(ip.unwrap_or(listen.ip()), listen.port())
}

fn interface_for(interfaces: &Interfaces, ip: IpAddr) -> Option<String> {
    if ip.is_loopback() {
        return interfaces
            .snapshot()
            .values()
            .find(|i| i.if_type == 24)
            .map(|i| i.name.clone());
    }
    // Without netlink, the interface of an address is not in sysfs; the
    // administrator names it with --watch-interface.
    None
}

impl RunningAgent {
    /// Starts the unit and announces it.
    pub async fn start(settings: AgentSettings) -> Result<RunningAgent, AgentError> {
        let started = Instant::now();
        // Disk I/O and fsync: off the reactor.
        let disks = settings.disks.clone();
        let name = settings.name.clone();
        let data_dir = settings.data_dir.clone();
        let maintenance = settings.maintenance;
        let (unit, engine) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&data_dir).map_err(|e| AgentError::Io {
                context: format!("creating the data directory {}", data_dir.display()),
                source: e,
            })?;
            let unit = assemble_with(&disks, maintenance)?;
            if let Some(name) = &name
                && unit.metadata().name.as_deref() != Some(name)
            {
                unit.set_name(name)?;
            }
            let engine = EngineIdentity::load_or_create(&data_dir.join("snmp-engine"))?;
            Ok::<_, AgentError>((unit, engine))
        })
        .await
        .map_err(|e| AgentError::Io {
            context: "assembling the unit".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
        let unit = Arc::new(unit);
        let meta = unit.metadata();
        tracing::info!(
            unit = %meta.unit,
            rebuild_mib_per_s = settings.maintenance.rebuild_rate >> 20,
            auto_spare = settings.maintenance.auto_spare,
            disks = unit.disks().len(),
            groups = meta.groups.len(),
            volumes = meta.volumes.len(),
            "unit assembled"
        );

        // NBD first: the exports answer as soon as the listener is bound.
        let exports = Arc::new(VolumeExports::new(Arc::clone(&unit)));
        let listener = TcpListener::bind(settings.nbd_listen)
            .await
            .map_err(|source| AgentError::Bind {
                what: "NBD listener",
                addr: settings.nbd_listen,
                source,
            })?;
        let nbd_addr = listener.local_addr().map_err(|source| AgentError::Bind {
            what: "NBD listener",
            addr: settings.nbd_listen,
            source,
        })?;
        let (nbd_stop, mut stop_rx) = watch::channel(false);
        let registry: Arc<dyn dvsan_nbd::ExportRegistry> = exports.clone();
        let tls = settings.nbd_tls.clone();
        let nbd_task = tokio::spawn(async move {
            dvsan_nbd::serve_with_tls(listener, registry, tls, async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
        });
        let nbd_ready = started.elapsed();

        tracing::info!(
            engine_id = engine.engine_id_hex(),
            boots = engine.engine_boots(),
            "SNMP engine"
        );
        let directory = match settings.stations.clone() {
            Some(source) => {
                let directory = StationDirectory::new(source);
                if let Err(e) = directory.refresh().await {
                    // The unit serves anyway; a later send re-resolves.
                    tracing::error!(error = %e, "no station found; announcing to none for now");
                }
                Some(Arc::new(directory))
            }
            None => None,
        };
        let first_station = directory
            .as_ref()
            .and_then(|d| d.stations().first().copied());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let info = Arc::new(RwLock::new(UnitInfo {
            default_name: host_name(),
            stations: settings.stations_text.clone(),
            nbd_endpoint: endpoint(&settings.advertise_host, nbd_addr, first_station),
            snmp_endpoint: String::new(),
            nbd_tls: nbd_tls(settings.nbd_tls.as_deref()),
            default_low_threshold: settings.low_threshold,
        }));
        let ctx = UnitContext {
            unit: Arc::clone(&unit),
            exports,
            info,
            events: events_tx,
        };
        let system = SystemGroup::new(SystemInfo {
            descr: format!(
                "dvsan SAN unit {} ({} {})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            object_id: DVSAN_MIB.oid(),
            contact: String::new(),
            name: ctx.name(),
            location: String::new(),
            services: 72,
        });
        let interfaces = Interfaces::new(&settings.sysfs_net);
        let snmp = SnmpAgent::spawn(
            AgentConfig {
                listen: settings.snmp_listen,
                engine: engine.clone(),
                users: vec![settings.user.clone()],
                read_community: settings.read_community.clone(),
                write_community: settings.write_community.clone(),
            },
            vec![
                Arc::new(system.module()),
                Arc::new(interfaces.module()),
                Arc::new(dvsan_module(&ctx)),
            ],
        )?;
        system.attach(snmp.agent());
        let snmp_addr = snmp.agent().local_addr();
        ctx.info
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .snmp_endpoint = endpoint(&settings.advertise_host, snmp_addr, first_station);

        let bind_any = |peer: Option<SocketAddr>| -> SocketAddr {
            match peer {
                Some(SocketAddr::V6(_)) => "[::]:0".parse().expect("literal"),
                _ => "0.0.0.0:0".parse().expect("literal"),
            }
        };
        let stations = Notifier::new(
            NotifierConfig {
                bind: bind_any(first_station),
                ..settings.inform.clone()
            },
            engine.clone(),
            started,
        )
        .await?;
        if let Some(d) = &directory {
            stations.set_sinks(station_sinks(&d.stations(), &settings.user));
        }
        let monitors = Notifier::new(
            NotifierConfig {
                bind: bind_any(settings.trap_sinks.first().map(|(_, a)| *a)),
                ..settings.inform.clone()
            },
            engine,
            started,
        )
        .await?;
        monitors.set_sinks(
            settings
                .trap_sinks
                .iter()
                .map(|(name, addr)| Sink {
                    name: name.clone(),
                    addr: *addr,
                    credentials: Credentials::v2c(settings.trap_community.clone()),
                    kind: NotifyKind::Trap,
                })
                .collect(),
        );
        let announcer = Announcer {
            stations: Arc::new(stations),
            monitors: Arc::new(monitors),
            ctx: ctx.clone(),
            system: Arc::clone(&system),
            directory,
            user: settings.user.clone(),
        };

        let mut watch = settings.watch_interfaces.clone();
        if watch.is_empty() {
            watch.extend(interface_for(&interfaces, snmp_addr.ip()));
        }
        let link = watch
            .first()
            .and_then(|n| interfaces.by_name(n))
            .or_else(|| {
                interfaces
                    .snapshot()
                    .values()
                    .find(|i| i.if_type != 24 && i.oper == OperStatus::Up)
                    .cloned()
            })
            .or_else(|| interfaces.snapshot().values().next().cloned())
            .map_or(
                LinkState {
                    index: 1,
                    admin_up: true,
                    oper: OperStatus::Up,
                },
                |i| LinkState {
                    index: i.index,
                    admin_up: i.admin_up,
                    oper: i.oper,
                },
            );

        let tasks = vec![
            tokio::spawn(announcer.clone().run_events(events_rx)),
            tokio::spawn(announcer.clone().watch_health(Duration::from_secs(1))),
            tokio::spawn(announcer.clone().watch_links(
                Arc::clone(&interfaces),
                watch,
                Duration::from_millis(500),
            )),
        ];

        tracing::info!(snmp = %snmp_addr, nbd = %nbd_addr, "unit serving");
        // Sent in the background: a dead station must not hold up serving.
        let announced = started.elapsed();
        let cold_start = {
            let announcer = announcer.clone();
            tokio::spawn(async move { announcer.lifecycle(Lifecycle::ColdStart, None).await })
        };
        Ok(RunningAgent {
            ctx,
            snmp: Some(snmp),
            snmp_addr,
            nbd_addr,
            nbd_stop,
            nbd_task,
            tasks,
            announcer,
            link,
            shutdown_wait: settings.shutdown_wait,
            cold_start: Some(cold_start),
            times: StartTimes {
                nbd_ready,
                announced,
            },
        })
    }

    /// The SNMP agent's address.
    pub fn snmp_addr(&self) -> SocketAddr {
        self.snmp_addr
    }

    /// The NBD server's address.
    pub fn nbd_addr(&self) -> SocketAddr {
        self.nbd_addr
    }

    /// The unit.
    pub fn unit(&self) -> &Arc<Unit> {
        &self.ctx.unit
    }

    /// What became of the coldStart at each sink (waits until each has
    /// been delivered or given up; empty when asked twice).
    pub async fn cold_start(&mut self) -> Vec<SinkOutcome> {
        match self.cold_start.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Start-up times.
    pub fn times(&self) -> StartTimes {
        self.times
    }

    /// Withdraws the unit and stops: linkDown (bounded wait), NBD stopped
    /// after in-flight requests, every volume flushed, SNMP stopped.
    pub async fn shutdown(mut self) -> Vec<SinkOutcome> {
        let link = LinkState {
            index: self.link.index,
            admin_up: false,
            oper: OperStatus::Down,
        };
        let outcomes = match tokio::time::timeout(
            self.shutdown_wait,
            self.announcer.lifecycle(Lifecycle::LinkDown, Some(link)),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => {
                tracing::warn!(
                    wait = ?self.shutdown_wait,
                    "linkDown not acknowledged in time; stopping anyway"
                );
                Vec::new()
            }
        };
        for t in &self.tasks {
            t.abort();
        }
        if let Some(t) = self.cold_start.take() {
            t.abort();
        }
        let _ = self.nbd_stop.send(true);
        if let Err(e) = (&mut self.nbd_task).await {
            tracing::error!(error = %e, "NBD server task failed");
        }
        let unit = Arc::clone(&self.ctx.unit);
        let flushed = tokio::task::spawn_blocking(move || unit.flush_all()).await;
        match flushed {
            Ok(Ok(())) => tracing::info!("every volume flushed"),
            Ok(Err(e)) => tracing::error!(error = %e, "final flush failed"),
            Err(e) => tracing::error!(error = %e, "final flush panicked"),
        }
        if let Some(snmp) = self.snmp.take() {
            snmp.stop();
        }
        outcomes
    }
}
