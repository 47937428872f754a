//! `dvsan agent`: the SAN unit daemon's command line and configuration
//! file, validated once at start, each error naming its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use dvsan_agent::daemon::{AgentSettings, DiskArg, RunningAgent};
use dvsan_agent::discovery::{StationSource, parse_station, resolve};
use dvsan_agent::storage::MaintenanceConfig;
use dvsan_agent::storage::maintenance::DEFAULT_REBUILD_RATE;
use dvsan_nbd::{TlsMode, TlsPolicy};
use dvsan_snmp::NotifierConfig;
use serde::Deserialize;

use crate::snmp_args::{SnmpArgs, SnmpFileConfig, read_toml};

/// Flags of `dvsan agent`; each overrides the same key of `--config`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// TOML configuration file (keys: name, data_dir, disks, snmp_listen,
    /// nbd_listen, stations, station_domain, station_nameserver, trap_sinks,
    /// trap_community, read_community, write_community, low_threshold,
    /// watch_interfaces, shutdown_wait_ms, advertise_host, rebuild_rate,
    /// auto_spare, nbd_tls_cert, nbd_tls_key, nbd_tls_client_ca,
    /// nbd_tls_optional, [snmp] user, auth_protocol, auth_password,
    /// priv_protocol, priv_password).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The unit's name (sysName) [default: as recorded on the disks, else the host name]
    #[arg(long)]
    pub name: Option<String>,
    /// DNS name the station and clients reach this unit by (advertised in
    /// its SNMP and NBD endpoints instead of an address)
    #[arg(long, value_name = "HOST")]
    pub advertise_host: Option<String>,
    /// Directory for the SNMP engine state [default: /var/lib/dvsan]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A disk: file or block device; with =SIZE (e.g. 10G) a missing file is created sparse (repeatable)
    #[arg(long = "disk", value_name = "PATH[=SIZE]")]
    pub disks: Vec<String>,
    /// UDP address of the SNMP agent [default: 0.0.0.0:161]
    #[arg(long, value_name = "ADDR")]
    pub snmp_listen: Option<SocketAddr>,
    /// TCP address of the NBD server [default: 0.0.0.0:10809]
    #[arg(long, value_name = "ADDR")]
    pub nbd_listen: Option<SocketAddr>,
    /// A station to announce the unit to, HOST[:PORT] (port 162 by default; repeatable)
    #[arg(long = "station", value_name = "HOST[:PORT]")]
    pub stations: Vec<String>,
    /// Find the stations through DNS SRV _dvsan-station._udp.DOMAIN
    #[arg(long, value_name = "DOMAIN", conflicts_with = "stations")]
    pub station_domain: Option<String>,
    /// DNS server for --station-domain [default: the system's resolver]
    #[arg(long, value_name = "ADDR")]
    pub station_nameserver: Option<SocketAddr>,
    /// A monitoring tool that gets plain SNMPv2c traps, HOST[:PORT] (repeatable)
    #[arg(long = "trap-sink", value_name = "HOST[:PORT]")]
    pub trap_sinks: Vec<String>,
    /// Community of the traps to --trap-sink [default: public]
    #[arg(long, value_name = "COMMUNITY")]
    pub trap_community: Option<String>,
    /// SNMPv2c community that may read the MIB (monitoring tools)
    #[arg(long, value_name = "COMMUNITY")]
    pub read_community: Option<String>,
    /// SNMPv2c community that may also write (cleartext: only on a trusted network)
    #[arg(long, value_name = "COMMUNITY")]
    pub write_community: Option<String>,
    /// capacityLow is sent when free capacity falls under this percentage [default: 10]
    #[arg(long, value_name = "PERCENT")]
    pub low_threshold: Option<u32>,
    /// Interface whose return to up sends linkUp (repeatable)
    #[arg(long = "watch-interface", value_name = "NAME")]
    pub watch_interfaces: Vec<String>,
    /// Most MiB per second a RAID rebuild or resync writes, so clients keep
    /// their share of the disks; 0 for no limit [default: 100]
    #[arg(long, value_name = "MIB_PER_S")]
    pub rebuild_rate: Option<String>,
    /// Whether any free disk replaces a lost RAID member by itself. Disks
    /// designated as hot spares (dvsanDiskState spare) always do; with
    /// off, other free disks stay free, e.g. for a new group [default: off]
    #[arg(long, value_name = "on|off")]
    pub auto_spare: Option<String>,
    /// Offer TLS on the NBD server with this certificate chain (PEM, the
    /// unit's certificate first); clients then must use TLS unless
    /// --nbd-tls-optional. SIGHUP reads the TLS files again
    #[arg(long, value_name = "FILE")]
    pub nbd_tls_cert: Option<PathBuf>,
    /// The private key of --nbd-tls-cert (PEM)
    #[arg(long, value_name = "FILE")]
    pub nbd_tls_key: Option<PathBuf>,
    /// Let only NBD clients with a certificate signed by this CA (PEM) in
    #[arg(long, value_name = "FILE")]
    pub nbd_tls_client_ca: Option<PathBuf>,
    /// Serve NBD clients in the clear too, not only inside TLS
    #[arg(long)]
    pub nbd_tls_optional: bool,
    #[command(flatten)]
    pub snmp: SnmpArgs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: Option<String>,
    advertise_host: Option<String>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    disks: Vec<String>,
    snmp_listen: Option<String>,
    nbd_listen: Option<String>,
    #[serde(default)]
    stations: Vec<String>,
    station_domain: Option<String>,
    station_nameserver: Option<String>,
    #[serde(default)]
    trap_sinks: Vec<String>,
    trap_community: Option<String>,
    read_community: Option<String>,
    write_community: Option<String>,
    low_threshold: Option<u32>,
    #[serde(default)]
    watch_interfaces: Vec<String>,
    shutdown_wait_ms: Option<u64>,
    inform_timeout_ms: Option<u64>,
    inform_attempts: Option<u32>,
    rebuild_rate: Option<u64>,
    auto_spare: Option<OnOff>,
    nbd_tls_cert: Option<PathBuf>,
    nbd_tls_key: Option<PathBuf>,
    nbd_tls_client_ca: Option<PathBuf>,
    nbd_tls_optional: Option<bool>,
    #[serde(default)]
    snmp: SnmpFileConfig,
}

/// `on`/`off` in the file, or a TOML boolean.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OnOff {
    Bool(bool),
    Text(String),
}

/// The largest rebuild rate taken, MiB/s (a million: far beyond any disk,
/// so a typo in units is caught).
const MAX_REBUILD_RATE: u64 = 1_000_000;

/// Parses a rebuild rate in MiB/s (0: no limit) into bytes per second.
fn rebuild_rate(text: &str) -> anyhow::Result<u64> {
    let mib: u64 = text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "rebuild_rate: {text:?} is not a whole number of MiB/s like 100 (0: no limit)"
        )
    })?;
    if mib > MAX_REBUILD_RATE {
        bail!("rebuild_rate: {mib} MiB/s is more than {MAX_REBUILD_RATE}");
    }
    Ok(mib << 20)
}

/// Parses `on` or `off`.
fn on_off(key: &str, text: &str) -> anyhow::Result<bool> {
    match text.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => bail!("{key}: {text:?} is neither on nor off"),
    }
}

/// Parses `PATH[=SIZE]`.
pub fn parse_disk(text: &str) -> Result<DiskArg, String> {
    let (path, size) = match text.rsplit_once('=') {
        Some((p, s)) => (p, Some(crate::byte_size::parse(s)?)),
        None => (text, None),
    };
    if path.is_empty() {
        return Err(format!("{text:?} names no path"));
    }
    // Absolute, so the MIB and the logs name the disk unambiguously.
    let path = std::path::absolute(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(DiskArg { path, size })
}

/// The NBD server's TLS policy, its files read and checked now.
fn nbd_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    optional: bool,
) -> anyhow::Result<Option<Arc<TlsPolicy>>> {
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            if client_ca.is_some() || optional {
                bail!(
                    "nbd_tls_cert: nbd_tls_client_ca and nbd_tls_optional need nbd_tls_cert and nbd_tls_key"
                );
            }
            return Ok(None);
        }
        (Some(_), None) => bail!("nbd_tls_key: nbd_tls_cert is given, its key is not"),
        (None, Some(_)) => bail!("nbd_tls_cert: nbd_tls_key is given, the certificate is not"),
    };
    let mode = if optional {
        TlsMode::Optional
    } else {
        TlsMode::Required
    };
    let policy = TlsPolicy::from_pem_files(&cert, &key, client_ca.as_deref(), mode)
        .map_err(|e| anyhow::anyhow!("nbd_tls: {e}"))?;
    Ok(Some(Arc::new(policy)))
}

fn address(key: &str, text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("{key}: {text:?} is not an address like 0.0.0.0:161"))
}

/// The settings, before stations are resolved.
pub struct Resolved {
    settings: AgentSettings,
    stations: Option<StationSource>,
    trap_sinks: Vec<String>,
}

impl AgentArgs {
    /// Merges flags over the file and checks everything once.
    pub fn resolve(self) -> anyhow::Result<Resolved> {
        let file: FileConfig = read_toml(self.config.as_deref())?;
        let disk_texts = if self.disks.is_empty() {
            file.disks
        } else {
            self.disks
        };
        if disk_texts.is_empty() {
            bail!("disks: none given (--disk PATH[=SIZE], or disks = [...] in the config file)");
        }
        let disks = disk_texts
            .iter()
            .map(|d| parse_disk(d).map_err(|e| anyhow::anyhow!("disks: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let snmp_listen = match (self.snmp_listen, file.snmp_listen) {
            (Some(a), _) => a,
            (None, Some(t)) => address("snmp_listen", &t)?,
            (None, None) => "0.0.0.0:161".parse().expect("literal"),
        };
        let nbd_listen = match (self.nbd_listen, file.nbd_listen) {
            (Some(a), _) => a,
            (None, Some(t)) => address("nbd_listen", &t)?,
            (None, None) => "0.0.0.0:10809".parse().expect("literal"),
        };
        let station_list = if self.stations.is_empty() {
            file.stations
        } else {
            self.stations
        };
        let domain = self.station_domain.or(file.station_domain);
        let nameserver = match (self.station_nameserver, file.station_nameserver) {
            (Some(a), _) => Some(a),
            (None, Some(t)) => Some(address("station_nameserver", &t)?),
            (None, None) => None,
        };
        let (stations, stations_text) = match (domain, station_list.is_empty()) {
            (Some(_), false) => {
                bail!("stations: give either stations or station_domain, not both")
            }
            (Some(domain), true) => {
                let text = format!("_dvsan-station._udp.{domain}");
                (Some(StationSource::Srv { domain, nameserver }), text)
            }
            (None, false) => {
                let text = station_list.join(",");
                (Some(StationSource::Static(station_list)), text)
            }
            (None, true) => (None, String::new()),
        };
        let low_threshold = self.low_threshold.or(file.low_threshold).unwrap_or(10);
        if low_threshold > 100 {
            bail!("low_threshold: {low_threshold} is not a percentage (0 to 100)");
        }
        let rebuild_rate = match (self.rebuild_rate, file.rebuild_rate) {
            (Some(t), _) => rebuild_rate(&t)?,
            (None, Some(n)) => rebuild_rate(&n.to_string())?,
            (None, None) => DEFAULT_REBUILD_RATE,
        };
        let auto_spare = match (self.auto_spare, file.auto_spare) {
            (Some(t), _) => on_off("auto_spare", &t)?,
            (None, Some(OnOff::Bool(b))) => b,
            (None, Some(OnOff::Text(t))) => on_off("auto_spare", &t)?,
            (None, None) => false,
        };
        let nbd_tls = nbd_tls(
            self.nbd_tls_cert.or(file.nbd_tls_cert),
            self.nbd_tls_key.or(file.nbd_tls_key),
            self.nbd_tls_client_ca.or(file.nbd_tls_client_ca),
            self.nbd_tls_optional || file.nbd_tls_optional.unwrap_or(false),
        )?;
        let user = self.snmp.resolve(file.snmp)?;
        let mut inform = NotifierConfig::default();
        if let Some(ms) = file.inform_timeout_ms {
            if !(10..=60_000).contains(&ms) {
                bail!("inform_timeout_ms: must be from 10 to 60000, got {ms}");
            }
            inform.first_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = file.inform_attempts {
            if !(1..=20).contains(&n) {
                bail!("inform_attempts: must be from 1 to 20, got {n}");
            }
            inform.max_attempts = n;
        }
        let mut trap_sinks = file.trap_sinks;
        trap_sinks.extend(self.trap_sinks);
        let mut watch_interfaces = file.watch_interfaces;
        watch_interfaces.extend(self.watch_interfaces);
        let name = self.name.or(file.name);
        let advertise_host = self.advertise_host.or(file.advertise_host);
        if let Some(h) = &advertise_host
            && !is_dns_name(h)
        {
            bail!("advertise_host: {h:?} is not a DNS name like unit-a.san.example");
        }
        if let Some(n) = &name
            && (n.is_empty() || n.len() > 255 || n.chars().any(char::is_control))
        {
            bail!("name: {n:?} must be 1 to 255 printable characters");
        }
        Ok(Resolved {
            settings: AgentSettings {
                name,
                data_dir: self
                    .data_dir
                    .or(file.data_dir)
                    .unwrap_or_else(|| PathBuf::from("/var/lib/dvsan")),
                disks,
                snmp_listen,
                nbd_listen,
                stations: None,
                stations_text,
                trap_sinks: Vec::new(),
                trap_community: self
                    .trap_community
                    .or(file.trap_community)
                    .unwrap_or_else(|| "public".into()),
                user,
                read_community: self.read_community.or(file.read_community),
                write_community: self.write_community.or(file.write_community),
                low_threshold,
                watch_interfaces,
                sysfs_net: PathBuf::from("/sys/class/net"),
                inform,
                shutdown_wait: Duration::from_millis(file.shutdown_wait_ms.unwrap_or(5000)),
                advertise_host,
                maintenance: MaintenanceConfig {
                    rebuild_rate,
                    auto_spare,
                    ..MaintenanceConfig::default()
                },
                nbd_tls,
            },
            stations,
            trap_sinks,
        })
    }
}

impl Resolved {
    /// Resolves stations and trap sinks.
    pub async fn settings(mut self) -> anyhow::Result<AgentSettings> {
        if let Some(StationSource::Static(list)) = &self.stations {
            // Addresses are checked now; names are resolved by the unit.
            for s in list {
                parse_station(s).map_err(|e| anyhow::anyhow!("stations: {e}"))?;
            }
        }
        self.settings.stations = self.stations;
        if !self.trap_sinks.is_empty() {
            let found = resolve(&StationSource::Static(self.trap_sinks.clone()))
                .await
                .context("trap_sinks")?;
            self.settings.trap_sinks = found.into_iter().map(|a| (a.to_string(), a)).collect();
        }
        Ok(self.settings)
    }
}

/// Runs the unit until SIGINT or SIGTERM; SIGHUP reads the NBD TLS
/// certificate, key and client CA files again.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?.settings().await?;
    let tls = settings.nbd_tls.clone();
    let agent = RunningAgent::start(settings)
        .await
        .context("starting the unit")?;
    if let Some(policy) = tls {
        reload_tls_on_hangup(policy)?;
    }
    tracing::info!(
        snmp = %agent.snmp_addr(),
        nbd = %agent.nbd_addr(),
        "dvsan agent serving; SNMP on {}, NBD on {}",
        agent.snmp_addr(),
        agent.nbd_addr()
    );
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    agent.shutdown().await;
    Ok(())
}

/// At every SIGHUP, reads `policy`'s files again: new NBD connections
/// get the renewed certificate (or client CA); files that cannot be used
/// are logged and the previous ones stay in use.
fn reload_tls_on_hangup(policy: Arc<dvsan_nbd::TlsPolicy>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let policy = policy.clone();
            match tokio::task::spawn_blocking(move || policy.reload()).await {
                Ok(Ok(())) => tracing::info!("SIGHUP: NBD TLS certificate and key read again"),
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "SIGHUP: NBD TLS files not usable; the previous ones stay in use"
                ),
                Err(e) => tracing::warn!(error = %e, "SIGHUP: the TLS reload task failed"),
            }
        }
    });
    Ok(())
}

/// Whether `h` is a DNS host name (RFC 1123 labels), not an address.
fn is_dns_name(h: &str) -> bool {
    h.parse::<std::net::IpAddr>().is_err()
        && !h.is_empty()
        && h.len() <= 253
        && h.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
