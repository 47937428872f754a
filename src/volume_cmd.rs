//! `dvsan unit list|show` and `dvsan volume create|list|show|grant|revoke|
//! delete|attach`: the station's REST API for people (tables) and scripts
//! (`--json`).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dvsan_station::inventory::{UnitRow, VolumeRecord};
use dvsan_station::operations::{Placement, UnitDetail, VolumeRequest, VolumeView, lost_members};
use serde::Serialize;

use crate::station_client::{ApiClient, StationUrl, human_mib, print_table, segment};

/// `dvsan unit …`
#[derive(Debug, Args)]
pub struct UnitArgs {
    #[command(subcommand)]
    command: UnitCommand,
    #[command(flatten)]
    station: StationUrl,
    /// Print JSON for scripts instead of a table
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum UnitCommand {
    /// List the units the station knows.
    List,
    /// Show a unit's disks, RAID groups and partitions.
    Show {
        /// The unit's name or UUID
        unit: String,
    },
    /// Put a disk in place of a lost (failed or missing) member of a RAID
    /// group; the unit rebuilds it in the background (only what it missed,
    /// for a member's own disk back in its slot).
    ReplaceMember {
        /// The unit's name or UUID
        unit: String,
        /// The RAID group's index (`dvsan unit show`)
        group: u32,
        /// The member's slot in the group, from 1
        slot: u32,
        /// The disk that takes its place (its index on the unit)
        #[arg(long)]
        disk: u32,
    },
}

/// `dvsan volume …`
#[derive(Debug, Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
    #[command(flatten)]
    station: StationUrl,
    /// Print JSON for scripts instead of a table
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum VolumeCommand {
    /// Allocate a volume on one unit, or across several when none has the space.
    Create {
        /// Its name (letters, digits, '-', '_', '.')
        name: String,
        /// Its size, like 512M, 10G or 1T
        #[arg(long, value_parser = parse_size_mib)]
        size: u64,
        /// A client host (address or CIDR) granted read-write access (repeatable)
        #[arg(long = "client", value_name = "ADDR")]
        clients: Vec<String>,
        /// Only on this unit (name or UUID)
        #[arg(long)]
        unit: Option<String>,
        /// Only on units whose name is in this DNS domain
        #[arg(long)]
        domain: Option<String>,
        /// Only on RAID groups of this level (linear, raid0, raid1, raid10, raid5, raid6)
        #[arg(long)]
        level: Option<String>,
    },
    /// List volumes.
    List,
    /// Show a volume's extents and NBD URIs.
    Show {
        /// The volume's name
        name: String,
    },
    /// Grant a client host (address or CIDR) access to a volume.
    Grant {
        /// The volume's name
        name: String,
        /// Address or CIDR
        client: String,
    },
    /// Revoke a client host's access to a volume.
    Revoke {
        /// The volume's name
        name: String,
        /// Address or CIDR
        client: String,
    },
    /// Delete a volume and its partitions on every unit.
    Delete {
        /// The volume's name
        name: String,
    },
    /// Serve a volume locally over NBD, talking to each of its units directly.
    Attach {
        /// The volume's name
        name: String,
        /// Where to serve it: ADDR (host:port) or unix:PATH
        #[arg(long, default_value = "127.0.0.1:10809")]
        listen: String,
        #[command(flatten)]
        tls: AttachTls,
    },
}

/// TLS towards the units, for volumes with extents on units that serve
/// NBD over TLS.
#[derive(Debug, Args)]
pub struct AttachTls {
    /// CA certificate(s) (PEM) that signed the units' NBD certificates;
    /// extents on units offering TLS are then reached over TLS
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// This host's certificate (PEM), for units that ask clients for one
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

impl AttachTls {
    /// The client TLS settings, if a CA was given; unusable files are an
    /// error naming them.
    fn load(&self) -> anyhow::Result<Option<dvsan_nbd::ClientTls>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        dvsan_nbd::ClientTls::from_pem_files(ca, identity)
            .map(Some)
            .context("--tls-ca/--tls-cert/--tls-key")
    }
}

/// Parses `10G` and the like into whole MiB.
fn parse_size_mib(text: &str) -> Result<u64, String> {
    let bytes = crate::byte_size::parse(text)?;
    if bytes < 1 << 20 {
        return Err(format!("{text:?} is less than 1 MiB"));
    }
    if bytes % (1 << 20) != 0 {
        return Err(format!("{text:?} is not a whole number of MiB"));
    }
    Ok(bytes >> 20)
}

fn emit<T: Serialize>(json: bool, value: &T, table: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        table(value);
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("the request task failed")?
}

/// Runs `dvsan unit …`.
pub async fn run_unit(args: UnitArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.station)?;
    let json = args.json;
    match args.command {
        UnitCommand::List => {
            let units: Vec<UnitRow> = blocking(move || api.get("listing units", "/units")).await?;
            emit(json, &units, |units| {
                let rows: Vec<Vec<String>> = units
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.state.clone(),
                            u.snmp_address.clone(),
                            match u.nbd_tls.as_str() {
                                "off" => u.nbd_endpoint.clone(),
                                tls => format!("{} (tls {tls})", u.nbd_endpoint),
                            },
                            human_mib(u.free_mib.max(0) as u64),
                            human_mib(u.total_mib.max(0) as u64),
                            u.uuid.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &["NAME", "STATE", "SNMP", "NBD", "FREE", "TOTAL", "UUID"],
                    &rows,
                );
            })
        }
        UnitCommand::Show { unit } => {
            let path = format!("/units/{}", segment(&unit));
            let d: UnitDetail =
                blocking(move || api.get(&format!("showing unit {unit}"), &path)).await?;
            emit(json, &d, print_unit)
        }
        UnitCommand::ReplaceMember {
            unit,
            group,
            slot,
            disk,
        } => {
            let path = format!("/units/{}/groups/{group}/members/{slot}", segment(&unit));
            let body = serde_json::json!({ "disk": disk });
            let what = format!("replacing member {slot} of RAID group {group} on {unit}");
            let d: UnitDetail = blocking(move || api.post(&what, &path, &body)).await?;
            emit(json, &d, print_unit)
        }
    }
}

fn print_unit(d: &UnitDetail) {
    let u = &d.unit;
    println!("unit      {} ({})", u.name, u.uuid);
    println!("state     {}", u.state);
    println!("snmp      {}", u.snmp_address);
    println!("nbd       {} (tls {})", u.nbd_endpoint, u.nbd_tls);
    println!(
        "capacity  {} free of {}",
        human_mib(u.free_mib.max(0) as u64),
        human_mib(u.total_mib.max(0) as u64)
    );
    println!("software  {}", u.software);
    println!();
    let disks: Vec<Vec<String>> = d
        .disks
        .iter()
        .map(|x| {
            vec![
                x.disk_index.to_string(),
                x.state.clone(),
                human_mib(x.size_mib.max(0) as u64),
                if x.raid_group == 0 {
                    "-".into()
                } else {
                    x.raid_group.to_string()
                },
                x.path.clone(),
            ]
        })
        .collect();
    print_table(&["DISK", "STATE", "SIZE", "GROUP", "PATH"], &disks);
    println!();
    let groups: Vec<Vec<String>> = d
        .raid_groups
        .iter()
        .map(|g| {
            vec![
                g.group_index.to_string(),
                g.name.clone(),
                g.level.clone(),
                format!("{}K", g.chunk_kib),
                g.members.clone(),
                g.state.clone(),
                format!("{}%", g.rebuild_progress),
                human_mib(g.free_mib.max(0) as u64),
                human_mib(g.capacity_mib.max(0) as u64),
            ]
        })
        .collect();
    print_table(
        &[
            "GROUP", "NAME", "LEVEL", "CHUNK", "DISKS", "STATE", "SYNC", "FREE", "CAPACITY",
        ],
        &groups,
    );
    for g in &d.raid_groups {
        for m in lost_members(g, &d.disks) {
            let back = match m.readd_mib {
                Some(mib) => format!("; its own disk back rebuilds {}", human_mib(mib)),
                None => String::new(),
            };
            println!(
                "group {} member {} lost (disk {}, {}{back}): dvsan unit replace-member {} {} {} --disk N",
                g.group_index, m.slot, m.disk, m.disk_state, u.name, g.group_index, m.slot
            );
        }
    }
    println!();
    let parts: Vec<Vec<String>> = d
        .partitions
        .iter()
        .map(|p: &VolumeRecord| {
            vec![
                p.volume_index.to_string(),
                p.name.clone(),
                p.raid_group.to_string(),
                human_mib(p.offset_mib.max(0) as u64),
                human_mib(p.size_mib.max(0) as u64),
                p.state.clone(),
                p.station_volume.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "PARTITION",
            "NAME",
            "GROUP",
            "OFFSET",
            "SIZE",
            "STATE",
            "VOLUME",
        ],
        &parts,
    );
}

fn print_volume(v: &VolumeView) {
    println!("volume   {} ({})", v.name, v.uuid);
    println!("size     {}", human_mib(v.size_mib));
    println!("state    {}", v.state);
    println!(
        "clients  {}",
        if v.clients.is_empty() {
            "none (nobody may connect)".to_string()
        } else {
            v.clients.join(", ")
        }
    );
    println!();
    let rows: Vec<Vec<String>> = v
        .extents
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                human_mib(e.start_mib),
                human_mib(e.size_mib),
                e.unit_name.clone(),
                if e.available { "yes" } else { "no" }.into(),
                e.nbd_uri.clone(),
            ]
        })
        .collect();
    print_table(&["EXTENT", "START", "SIZE", "UNIT", "UP", "NBD URI"], &rows);
    if v.extents.len() > 1 {
        println!();
        println!(
            "spans {} units; on a client host: dvsan volume attach {}",
            v.extents.len(),
            v.name
        );
    }
}

fn print_volumes(vs: &[VolumeView]) {
    let rows: Vec<Vec<String>> = vs
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                human_mib(v.size_mib),
                v.state.clone(),
                v.extents.len().to_string(),
                v.clients.join(","),
                v.extents
                    .first()
                    .map(|e| e.nbd_uri.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "SIZE",
            "STATE",
            "EXTENTS",
            "CLIENTS",
            "FIRST NBD URI",
        ],
        &rows,
    );
}

/// Runs `dvsan volume …`.
pub async fn run_volume(args: VolumeArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.station)?;
    let json = args.json;
    match args.command {
        VolumeCommand::Create {
            name,
            size,
            clients,
            unit,
            domain,
            level,
        } => {
            let req = VolumeRequest {
                name: name.clone(),
                size_mib: size,
                clients,
                placement: Placement {
                    unit,
                    domain,
                    level,
                },
            };
            let v: VolumeView =
                blocking(move || api.post(&format!("creating volume {name}"), "/volumes", &req))
                    .await?;
            emit(json, &v, print_volume)
        }
        VolumeCommand::List => {
            let vs: Vec<VolumeView> =
                blocking(move || api.get("listing volumes", "/volumes")).await?;
            emit(json, &vs, |vs| print_volumes(vs))
        }
        VolumeCommand::Show { name } => {
            let path = format!("/volumes/{}", segment(&name));
            let v: VolumeView =
                blocking(move || api.get(&format!("showing volume {name}"), &path)).await?;
            emit(json, &v, print_volume)
        }
        VolumeCommand::Grant { name, client } => {
            let path = format!("/volumes/{}/clients", segment(&name));
            let body = serde_json::json!({ "client": client });
            let what = format!("granting {client} on {name}");
            let v: VolumeView = blocking(move || api.post(&what, &path, &body)).await?;
            emit(json, &v, print_volume)
        }
        VolumeCommand::Revoke { name, client } => {
            let path = format!("/volumes/{}/clients/{}", segment(&name), segment(&client));
            let what = format!("revoking {client} on {name}");
            let v: Option<VolumeView> = blocking(move || api.delete(&what, &path)).await?;
            match v {
                Some(v) => emit(json, &v, print_volume),
                None => bail!("revoking: the station answered nothing"),
            }
        }
        VolumeCommand::Delete { name } => {
            let path = format!("/volumes/{}", segment(&name));
            let what = format!("deleting volume {name}");
            let _: Option<serde_json::Value> = blocking(move || api.delete(&what, &path)).await?;
            if json {
                println!("{}", serde_json::json!({ "deleted": name }));
            } else {
                println!("volume {name} deleted");
            }
            Ok(())
        }
        VolumeCommand::Attach { name, listen, tls } => {
            // PEM files: read off the reactor, like the API calls.
            let tls = blocking(move || tls.load()).await?;
            let path = format!("/volumes/{}", segment(&name));
            let what = format!("looking up volume {name}");
            let v: VolumeView = blocking(move || api.get(&what, &path)).await?;
            crate::attach_cmd::run(v, &listen, tls).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_mib() {
        assert_eq!(parse_size_mib("10G"), Ok(10240));
        assert_eq!(parse_size_mib("512M"), Ok(512));
        assert!(parse_size_mib("12Q").is_err());
        assert!(parse_size_mib("1000").is_err());
        assert!(parse_size_mib("1.5M").is_err());
    }
}
