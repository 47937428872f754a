//! `dvsan station`: the station daemon's command line and configuration
//! file, validated once at start, each error naming its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use dvsan_snmp::{AuthProtocol, PrivProtocol, UsmUser};
use dvsan_station::{Station, StationConfig};
use serde::Deserialize;

/// Flags of `dvsan station`; each overrides the same key of `--config`.
#[derive(Debug, Args)]
pub struct StationArgs {
    /// TOML configuration file (keys: db, trap_listen, poll_interval,
    /// snmp_timeout_ms, communities, [snmp] user, auth_protocol,
    /// auth_password, priv_protocol, priv_password).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Inventory database URL [default: sqlite://dvsan-station.db]
    #[arg(long, value_name = "URL", env = "DVSAN_DB")]
    pub db: Option<String>,
    /// UDP address notifications arrive on [default: 0.0.0.0:162]
    #[arg(long, value_name = "ADDR")]
    pub trap_listen: Option<SocketAddr>,
    /// Seconds between polls of every unit [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub poll_interval: Option<u64>,
    /// SNMPv3 user name shared with the units
    #[arg(long, value_name = "NAME", env = "DVSAN_SNMP_USER")]
    pub snmp_user: Option<String>,
    /// SNMPv3 authentication protocol: SHA-256 (default), SHA-384, SHA-512, SHA-224, SHA
    #[arg(long, value_name = "PROTOCOL")]
    pub snmp_auth_protocol: Option<String>,
    /// SNMPv3 authentication passphrase (at least 8 characters)
    #[arg(
        long,
        value_name = "PASS",
        env = "DVSAN_SNMP_AUTH_PASS",
        hide_env_values = true
    )]
    pub snmp_auth_password: Option<String>,
    /// SNMPv3 privacy protocol: AES (default) or AES-256
    #[arg(long, value_name = "PROTOCOL")]
    pub snmp_priv_protocol: Option<String>,
    /// SNMPv3 privacy passphrase (at least 8 characters)
    #[arg(
        long,
        value_name = "PASS",
        env = "DVSAN_SNMP_PRIV_PASS",
        hide_env_values = true
    )]
    pub snmp_priv_password: Option<String>,
    /// SNMPv2c community whose notifications are believed too (repeatable)
    #[arg(long, value_name = "COMMUNITY")]
    pub community: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db: Option<String>,
    trap_listen: Option<String>,
    poll_interval: Option<u64>,
    snmp_timeout_ms: Option<u64>,
    #[serde(default)]
    communities: Vec<String>,
    #[serde(default)]
    snmp: SnmpFileConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnmpFileConfig {
    user: Option<String>,
    auth_protocol: Option<String>,
    auth_password: Option<String>,
    priv_protocol: Option<String>,
    priv_password: Option<String>,
}

impl StationArgs {
    /// Merges flags over the file and checks everything once.
    pub fn resolve(self) -> anyhow::Result<StationConfig> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?
            }
            None => FileConfig::default(),
        };
        let db = self
            .db
            .or(file.db)
            .unwrap_or_else(|| "sqlite://dvsan-station.db".into());
        if !db.starts_with("sqlite:") {
            bail!("db: {db:?} is not a sqlite: URL (only SQLite is supported for now)");
        }
        let trap_listen = match (self.trap_listen, file.trap_listen) {
            (Some(a), _) => a,
            (None, Some(text)) => text.parse().map_err(|_| {
                anyhow::anyhow!("trap_listen: {text:?} is not an address like 0.0.0.0:162")
            })?,
            (None, None) => "0.0.0.0:162".parse().expect("literal address"),
        };
        let poll_interval = self.poll_interval.or(file.poll_interval).unwrap_or(30);
        if poll_interval == 0 {
            bail!("poll_interval: must be at least 1 second");
        }
        let snmp_timeout_ms = file.snmp_timeout_ms.unwrap_or(1000);
        if !(10..=60_000).contains(&snmp_timeout_ms) {
            bail!("snmp_timeout_ms: must be from 10 to 60000, got {snmp_timeout_ms}");
        }
        let name = self.snmp_user.or(file.snmp.user).context(
            "snmp.user: not set (--snmp-user, DVSAN_SNMP_USER or [snmp] user in the config file)",
        )?;
        let auth_protocol = match self.snmp_auth_protocol.or(file.snmp.auth_protocol) {
            Some(p) => {
                AuthProtocol::parse(&p).map_err(|e| anyhow::anyhow!("snmp.auth_protocol: {e}"))?
            }
            None => AuthProtocol::Sha256,
        };
        let priv_protocol = match self.snmp_priv_protocol.or(file.snmp.priv_protocol) {
            Some(p) => {
                PrivProtocol::parse(&p).map_err(|e| anyhow::anyhow!("snmp.priv_protocol: {e}"))?
            }
            None => PrivProtocol::Aes128,
        };
        let auth_password = self
            .snmp_auth_password
            .or(file.snmp.auth_password)
            .context(
                "snmp.auth_password: not set (--snmp-auth-password or DVSAN_SNMP_AUTH_PASS)",
            )?;
        let priv_password = self
            .snmp_priv_password
            .or(file.snmp.priv_password)
            .context(
                "snmp.priv_password: not set (--snmp-priv-password or DVSAN_SNMP_PRIV_PASS)",
            )?;
        let user = UsmUser {
            name,
            auth_protocol,
            auth_password,
            priv_protocol,
            priv_password,
        };
        user.validate().map_err(|e| anyhow::anyhow!("snmp: {e}"))?;
        let mut communities = file.communities;
        communities.extend(self.community);
        // The engine identity sits beside the database file.
        let engine_file = db
            .strip_prefix("sqlite://")
            .filter(|p| !p.contains(":memory:"))
            .map(|p| PathBuf::from(format!("{p}.snmp-engine")));
        Ok(StationConfig {
            db,
            trap_listen,
            poll_interval: Duration::from_secs(poll_interval),
            snmp_timeout: Duration::from_millis(snmp_timeout_ms),
            user,
            communities,
            engine_file,
        })
    }
}

/// Runs the station until SIGINT or SIGTERM.
pub async fn run(args: StationArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let db = config.db.clone();
    let station = Station::bind(config)
        .await
        .context("starting the station")?;
    tracing::info!(db = %db, trap_listen = %station.trap_address(), "dvsan station listening for notifications on {}", station.trap_address());
    station.run(crate::shutdown_signal()).await?;
    Ok(())
}
