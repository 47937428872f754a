//! `dvsan station`: the station daemon's command line and configuration
//! file, validated once at start, each error naming its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dvsan_station::learner::Admission;
use dvsan_station::{Station, StationConfig};
use serde::Deserialize;

use crate::snmp_args::{SnmpArgs, SnmpFileConfig, read_toml};

/// Flags of `dvsan station`; each overrides the same key of `--config`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StationArgs {
    /// Administration of the station's database instead of running it
    #[command(subcommand)]
    pub command: Option<StationCommand>,
    /// TOML configuration file (keys: db, trap_listen, web_listen, poll_interval,
    /// snmp_timeout_ms, admission, communities, [snmp] user, auth_protocol,
    /// auth_password, priv_protocol, priv_password).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Inventory database URL [default: sqlite://dvsan-station.db]
    #[arg(long, value_name = "URL", env = "DVSAN_DB")]
    pub db: Option<String>,
    /// TCP address of the REST API and web console [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub web_listen: Option<SocketAddr>,
    /// UDP address notifications arrive on [default: 0.0.0.0:162]
    #[arg(long, value_name = "ADDR")]
    pub trap_listen: Option<SocketAddr>,
    /// Seconds between polls of every unit [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub poll_interval: Option<u64>,
    #[command(flatten)]
    pub snmp: SnmpArgs,
    /// New units: `auto` (serve once they announce themselves) or `manual` (pending until approved) [default: auto]
    #[arg(long, value_name = "MODE")]
    pub admission: Option<String>,
    /// SNMPv2c community whose notifications are believed too (repeatable)
    #[arg(long, value_name = "COMMUNITY")]
    pub community: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db: Option<String>,
    trap_listen: Option<String>,
    web_listen: Option<String>,
    poll_interval: Option<u64>,
    snmp_timeout_ms: Option<u64>,
    admission: Option<String>,
    #[serde(default)]
    communities: Vec<String>,
    #[serde(default)]
    snmp: SnmpFileConfig,
}

impl StationArgs {
    /// Merges flags over the file and checks everything once.
    pub fn resolve(self) -> anyhow::Result<StationConfig> {
        let file: FileConfig = read_toml(self.config.as_deref())?;
        let db = self
            .db
            .or(file.db)
            .unwrap_or_else(|| "sqlite://dvsan-station.db".into());
        check_db(&db)?;
        let trap_listen = match (self.trap_listen, file.trap_listen) {
            (Some(a), _) => a,
            (None, Some(text)) => text.parse().map_err(|_| {
                anyhow::anyhow!("trap_listen: {text:?} is not an address like 0.0.0.0:162")
            })?,
            (None, None) => "0.0.0.0:162".parse().expect("literal address"),
        };
        let web_listen = match (self.web_listen, file.web_listen) {
            (Some(a), _) => a,
            (None, Some(text)) => text.parse().map_err(|_| {
                anyhow::anyhow!("web_listen: {text:?} is not an address like 127.0.0.1:8080")
            })?,
            (None, None) => "127.0.0.1:8080".parse().expect("literal address"),
        };
        let poll_interval = self.poll_interval.or(file.poll_interval).unwrap_or(30);
        if poll_interval == 0 {
            bail!("poll_interval: must be at least 1 second");
        }
        let snmp_timeout_ms = file.snmp_timeout_ms.unwrap_or(1000);
        if !(10..=60_000).contains(&snmp_timeout_ms) {
            bail!("snmp_timeout_ms: must be from 10 to 60000, got {snmp_timeout_ms}");
        }
        let admission = match self.admission.or(file.admission).as_deref() {
            None | Some("auto") => Admission::Auto,
            Some("manual") => Admission::Manual,
            Some(other) => bail!("admission: {other:?} is not auto or manual"),
        };
        let user = self.snmp.resolve(file.snmp)?;
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
            web_listen: Some(web_listen),
            poll_interval: Duration::from_secs(poll_interval),
            snmp_timeout: Duration::from_millis(snmp_timeout_ms),
            user,
            communities,
            engine_file,
            admission,
        })
    }
}

/// `dvsan station SUBCOMMAND`: administration of the station's database.
#[derive(Debug, Subcommand)]
pub enum StationCommand {
    /// REST API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        db: DbArg,
    },
    /// Web console users.
    User {
        #[command(subcommand)]
        command: crate::user_cmd::UserCommand,
        #[command(flatten)]
        db: DbArg,
    },
}

/// The inventory database an administration subcommand works on.
#[derive(Debug, Args)]
pub struct DbArg {
    /// Inventory database URL
    #[arg(
        long,
        value_name = "URL",
        env = "DVSAN_DB",
        default_value = "sqlite://dvsan-station.db",
        global = true
    )]
    pub db: String,
}

/// Refuses a database URL dvsan cannot open.
pub fn check_db(db: &str) -> anyhow::Result<()> {
    if !db.starts_with("sqlite:") {
        bail!("db: {db:?} is not a sqlite: URL (only SQLite is supported for now)");
    }
    Ok(())
}

/// `dvsan station token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once (set it as DVSAN_TOKEN).
    Create {
        /// What the token is for
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id
        id: String,
    },
}

async fn run_token(command: TokenCommand, db: &str) -> anyhow::Result<()> {
    check_db(db)?;
    let inventory = dvsan_station::inventory::Inventory::open(db)
        .await
        .with_context(|| format!("opening {db}"))?;
    match command {
        TokenCommand::Create { name } => {
            if name.trim().is_empty() {
                bail!("a token needs a name that says what it is for");
            }
            let (row, bearer) = inventory.create_token(&name).await?;
            eprintln!("token {} ({name}) created; it is shown only now:", row.id);
            println!("{bearer}");
        }
        TokenCommand::List => {
            for t in inventory.tokens().await? {
                println!(
                    "{}  {}  created {}  last used {}",
                    t.id,
                    t.name,
                    t.created_at,
                    t.last_used.map_or("never".to_string(), |t| t.to_string())
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !inventory.revoke_token(&id).await? {
                bail!("there is no token {id}");
            }
            println!("token {id} revoked");
        }
    }
    Ok(())
}

/// Runs the station until SIGINT or SIGTERM.
pub async fn run(mut args: StationArgs) -> anyhow::Result<()> {
    if let Some(command) = args.command.take() {
        return match command {
            StationCommand::Token { command, db } => run_token(command, &db.db).await,
            StationCommand::User { command, db } => crate::user_cmd::run(command, &db.db).await,
        };
    }
    let config = args.resolve()?;
    let db = config.db.clone();
    let station = Station::bind(config)
        .await
        .context("starting the station")?;
    tracing::info!(db = %db, trap_listen = %station.trap_address(), "dvsan station listening for notifications on {}", station.trap_address());
    if let Some(web) = station.web_address() {
        tracing::info!(web_listen = %web, "REST API and web console on http://{web}/");
    }
    station.run(crate::shutdown_signal()).await?;
    Ok(())
}
