//! `dvsan demo`: a whole SAN in one process, on loopback: a station and
//! three units whose disks are sparse files in a directory of the demo's
//! own. The units are real agents (storage engine, SNMP agent, NBD
//! server) and join the station by the real notification protocol
//! (coldStart INFORMs over SNMPv3); at Ctrl-C they leave it with linkDown.
//!
//! The first run lays the units out with the storage engine: `san1` gets a
//! RAID 5 group over three disks, `san2` a mirror over two, `san3` three
//! free disks for the visitor to build a group from in the console. Later
//! runs over the same directory find everything on the disks again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use dvsan_agent::daemon::{AgentSettings, DiskArg, RunningAgent, assemble};
use dvsan_agent::discovery::StationSource;
use dvsan_agent::storage::GroupSpec;
use dvsan_agent::storage::metadata::Level;
use dvsan_snmp::{NotifierConfig, UsmUser};
use dvsan_station::daemon::StationError;
use dvsan_station::inventory::{Role, random_token};
use dvsan_station::learner::Admission;
use dvsan_station::operations::Operations;
use dvsan_station::{Station, StationConfig, UnitState};

/// Flags of `dvsan demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the units' disk files, the station's database and the
    /// admin's password; created when missing, reused when it exists
    #[arg(long, value_name = "DIR", default_value = "dvsan-demo")]
    pub dir: PathBuf,
    /// TCP address of the web console and REST API [default: 127.0.0.1:8080,
    /// or a free port when that one is taken]
    #[arg(long, value_name = "ADDR")]
    pub web_listen: Option<SocketAddr>,
    /// New units: `auto` (in service once they announce themselves) or
    /// `manual` (pending until approved in the console)
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = ["auto", "manual"])]
    pub admission: String,
}

/// Size of each demo disk file (sparse).
const DISK_BYTES: u64 = 256 << 20;
/// The console's usual address.
const DEFAULT_WEB: &str = "127.0.0.1:8080";
/// The demo's admin.
pub const ADMIN: &str = "admin";

/// One demo unit: its name, disk count, and the group the first run
/// builds (name, level, members).
struct UnitPlan {
    name: &'static str,
    disks: u32,
    group: Option<(&'static str, Level, &'static [u32])>,
}

const PLAN: &[UnitPlan] = &[
    UnitPlan {
        name: "san1.demo.test",
        disks: 3,
        group: Some(("data", Level::Raid5, &[1, 2, 3])),
    },
    UnitPlan {
        name: "san2.demo.test",
        disks: 2,
        group: Some(("mirror", Level::Raid1, &[1, 2])),
    },
    UnitPlan {
        name: "san3.demo.test",
        disks: 3,
        group: None,
    },
];

fn disks_of(dir: &Path, plan: &UnitPlan) -> Vec<DiskArg> {
    (1..=plan.disks)
        .map(|i| DiskArg {
            path: dir.join(format!("disk{i}.img")),
            size: Some(DISK_BYTES),
        })
        .collect()
}

/// Formats a unit's disks and builds its group, the first time only.
fn lay_out(dir: &Path, plan: &UnitPlan) -> anyhow::Result<()> {
    let disks = disks_of(dir, plan);
    if disks.iter().any(|d| d.path.exists()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let unit = assemble(&disks).with_context(|| format!("formatting {}", plan.name))?;
    unit.set_name(plan.name)
        .with_context(|| format!("naming {}", plan.name))?;
    if let Some((name, level, members)) = plan.group {
        unit.create_group(&GroupSpec {
            index: 1,
            name: name.to_owned(),
            level,
            chunk: 64 << 10,
            members: members.to_vec(),
        })
        .with_context(|| format!("building group {name} on {}", plan.name))?;
    }
    unit.flush_all()
        .with_context(|| format!("flushing {}", plan.name))?;
    tracing::info!(unit = plan.name, "demo unit laid out");
    Ok(())
}

/// The admin's password: kept in the demo directory so that a second run
/// can say it again.
async fn admin_password(
    dir: &Path,
    inventory: &dvsan_station::Inventory,
) -> anyhow::Result<String> {
    let file = dir.join("admin-password");
    let known = inventory.users().await?.iter().any(|u| u.name == ADMIN);
    if known {
        if let Ok(text) = std::fs::read_to_string(&file) {
            return Ok(text.trim().to_owned());
        }
        bail!(
            "user {ADMIN} exists but {} is gone; remove {} to start afresh",
            file.display(),
            dir.display()
        );
    }
    let password = random_token(9);
    inventory.add_user(ADMIN, &password, Role::Admin).await?;
    std::fs::write(&file, format!("{password}\n"))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(password)
}

/// A running demo.
pub struct Demo {
    /// The console's URL.
    pub url: String,
    /// The admin's password.
    pub password: String,
    /// An API token for the client commands (a fresh one each run).
    pub token: String,
    station: tokio::task::JoinHandle<Result<(), StationError>>,
    stop_station: tokio::sync::oneshot::Sender<()>,
    agents: Vec<RunningAgent>,
    operations: Operations,
}

impl Demo {
    /// Lays the units out (first run), starts the station and the units.
    pub async fn start(args: &DemoArgs) -> anyhow::Result<Demo> {
        let dir = std::path::absolute(&args.dir)
            .with_context(|| format!("demo directory {}", args.dir.display()))?;
        {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                PLAN.iter()
                    .try_for_each(|plan| lay_out(&dir.join(unit_dir(plan)), plan))
            })
            .await??;
        }
        // The station and the units share one SNMPv3 user, made up anew
        // each run: nothing outside this process talks to them.
        let user = UsmUser::sha256_aes("dvsandemo", random_token(12), random_token(12))?;
        let admission = if args.admission == "manual" {
            Admission::Manual
        } else {
            Admission::Auto
        };
        let config = |web: SocketAddr| StationConfig {
            db: format!("sqlite://{}", dir.join("station.db").display()),
            trap_listen: "127.0.0.1:0".parse().expect("literal address"),
            web_listen: Some(web),
            poll_interval: Duration::from_secs(10),
            // Three units and a station share the machine's CPUs.
            snmp_timeout: Duration::from_secs(2),
            user: user.clone(),
            communities: Vec::new(),
            engine_file: Some(dir.join("station.snmp-engine")),
            admission,
        };
        let station = match args.web_listen {
            Some(web) => Station::bind(config(web)).await?,
            None => match Station::bind(config(DEFAULT_WEB.parse()?)).await {
                Err(StationError::Web { addr, source }) => {
                    tracing::info!(%addr, error = %source, "taken; the console goes to a free port");
                    Station::bind(config("127.0.0.1:0".parse()?)).await?
                }
                other => other?,
            },
        };
        let web = station
            .web_address()
            .context("the station has no web listener")?;
        let trap = station.trap_address();
        let operations = station.operations().clone();
        let password = admin_password(&dir, operations.inventory()).await?;
        let inventory = operations.inventory();
        for old in inventory.tokens().await? {
            if old.name == "demo" {
                inventory.revoke_token(&old.id).await?;
            }
        }
        let (_, token) = inventory.create_token("demo").await?;
        let (stop_station, stopped) = tokio::sync::oneshot::channel::<()>();
        let station = tokio::spawn(station.run(async move {
            let _ = stopped.await;
        }));
        let mut agents = Vec::new();
        for plan in PLAN {
            let data_dir = dir.join(unit_dir(plan));
            let settings = AgentSettings {
                name: Some(plan.name.to_owned()),
                disks: disks_of(&data_dir, plan),
                data_dir,
                snmp_listen: "127.0.0.1:0".parse()?,
                nbd_listen: "127.0.0.1:0".parse()?,
                stations: Some(StationSource::Static(vec![trap.to_string()])),
                stations_text: trap.to_string(),
                trap_sinks: Vec::new(),
                trap_community: "public".into(),
                user: user.clone(),
                read_community: None,
                write_community: None,
                low_threshold: 10,
                watch_interfaces: Vec::new(),
                sysfs_net: PathBuf::from("/sys/class/net"),
                inform: NotifierConfig::default(),
                shutdown_wait: Duration::from_secs(3),
                // The demo's names are not in any DNS: units are reached
                // by their loopback addresses.
                advertise_host: None,
                maintenance: Default::default(),
                nbd_tls: None,
            };
            let agent = RunningAgent::start(settings)
                .await
                .with_context(|| format!("starting unit {}", plan.name))?;
            agents.push(agent);
        }
        Ok(Demo {
            url: format!("http://{web}/"),
            password,
            token,
            station,
            stop_station,
            agents,
            operations,
        })
    }

    /// The `i`th unit's storage (for tests that break a disk under it).
    #[allow(dead_code)]
    pub fn unit(&self, i: usize) -> &std::sync::Arc<dvsan_agent::storage::Unit> {
        self.agents[i].unit()
    }

    /// The station's operations (for tests that drive the console's
    /// router directly).
    #[allow(dead_code)]
    pub fn operations(&self) -> &Operations {
        &self.operations
    }

    /// Waits until every unit is in `state` in the station's inventory
    /// (online, or pending under manual admission); returns how many are.
    pub async fn wait_for_units(&self, state: UnitState, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let online = self
                .operations
                .inventory()
                .units()
                .await
                .map_or(0, |units| {
                    units.iter().filter(|u| u.unit_state() == state).count()
                });
            if online >= PLAN.len() || Instant::now() >= deadline {
                return online;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the units (each sends linkDown and flushes), then the station.
    pub async fn stop(self) -> anyhow::Result<()> {
        let goodbyes = self.agents.into_iter().map(RunningAgent::shutdown);
        futures_util::future::join_all(goodbyes).await;
        // Let the station record the linkDowns before it stops.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = self.stop_station.send(());
        self.station.await.context("the station task")??;
        Ok(())
    }
}

fn unit_dir(plan: &UnitPlan) -> String {
    plan.name.split('.').next().unwrap_or(plan.name).to_owned()
}

/// Runs the demo until `shutdown` (Ctrl-C) completes.
pub async fn run(
    args: DemoArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let demo = Demo::start(&args).await?;
    let (state, word) = if args.admission == "manual" {
        (UnitState::Pending, "pending approval")
    } else {
        (UnitState::Online, "online")
    };
    let joined = demo.wait_for_units(state, Duration::from_secs(20)).await;
    println!();
    println!(
        "  dvsan demo: a station and {} units on loopback",
        PLAN.len()
    );
    println!("  ({joined} {word}; data in {})", args.dir.display());
    println!();
    println!("  Console:  {}", demo.url);
    println!("  Log in:   {ADMIN} / {}", demo.password);
    println!();
    println!("  From another shell (REST API at {}api/v1/):", demo.url);
    println!(
        "    export DVSAN_STATION_URL={} DVSAN_TOKEN={}",
        demo.url.trim_end_matches('/'),
        demo.token
    );
    println!("    dvsan unit list");
    println!("    dvsan volume create vm1 --size 64M --client 127.0.0.1");
    println!();
    println!("  Ctrl-C stops everything.");
    println!();
    shutdown.await;
    tracing::info!("stopping the demo");
    demo.stop().await?;
    Ok(())
}
