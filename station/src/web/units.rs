//! The units: the list, and each unit's page with its disks, RAID groups
//! and partitions, and the forms that change them (create or delete a
//! group, replace a lost member, create, grow or delete a partition,
//! approve a pending unit).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::http::AppState;
use crate::inventory::{DiskRecord, GroupRecord, UnitRow, UnitState};
use crate::operations::{GroupRequest, OpError, PartitionRequest, UnitDetail, lost_members};
use crate::web::auth::{Admin, CurrentUser};
use crate::web::csrf::CsrfForm;
use crate::web::display::{domain_of, mib, parse_size_mib, percent, time};
use crate::web::events::Choice;
use crate::web::layout::Layout;
use crate::web::{Params, WebError, form_message, form_status, render, see_other};

/// The RAID levels a group can have: (value, label).
pub const LEVELS: &[(&str, &str)] = &[
    ("raid5", "RAID 5 (one parity disk)"),
    ("raid6", "RAID 6 (two parity disks)"),
    ("raid1", "RAID 1 (mirror)"),
    ("raid10", "RAID 10 (striped mirrors)"),
    ("raid0", "RAID 0 (striped, no redundancy)"),
    ("linear", "Linear (concatenated)"),
];

/// A unit as listed.
#[derive(Debug, Clone)]
pub struct UnitView {
    /// dvsanUnitUuid.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// online | offline | unreachable | pending.
    pub state: String,
    /// Where the station polls it.
    pub address: String,
    /// Where clients reach its NBD server, and whether over TLS.
    pub nbd: String,
    /// Its DNS domain.
    pub domain: String,
    /// Capacity, for people.
    pub total: String,
    /// Used capacity, for people.
    pub used: String,
    /// Free capacity, for people.
    pub free: String,
    /// Used, per cent.
    pub used_pct: i64,
    /// Software version.
    pub software: String,
    /// Last answer.
    pub last_seen: String,
}

impl UnitView {
    /// The view of a unit row.
    pub fn of(u: &UnitRow) -> UnitView {
        UnitView {
            uuid: u.uuid.clone(),
            name: u.name.clone(),
            state: u.state.clone(),
            address: u.snmp_address.clone(),
            nbd: match u.nbd_tls.as_str() {
                "required" => format!("{} (TLS only)", u.nbd_endpoint),
                "optional" => format!("{} (TLS offered)", u.nbd_endpoint),
                _ => u.nbd_endpoint.clone(),
            },
            domain: domain_of(&u.name),
            total: mib(u.total_mib),
            used: mib(u.total_mib - u.free_mib),
            free: mib(u.free_mib),
            used_pct: percent(u.total_mib - u.free_mib, u.total_mib),
            software: u.software.clone(),
            last_seen: time(u.last_seen),
        }
    }
}

/// The units page.
#[derive(Template)]
#[template(path = "units.html")]
pub struct UnitsPage {
    layout: Layout,
    units: Vec<UnitView>,
}

/// GET /units.
pub async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Response, WebError> {
    let units = state.ops.inventory().units().await?;
    Ok(render(
        StatusCode::OK,
        &UnitsPage {
            layout: Layout::page(&user, "Units", "units"),
            units: units.iter().map(UnitView::of).collect(),
        },
    ))
}

/// A disk on a unit's page.
#[derive(Debug, Clone)]
pub struct DiskView {
    index: i64,
    path: String,
    size: String,
    state: String,
    group: String,
    /// Free for a new group.
    free: bool,
    /// Ticked in the new-group form.
    checked: bool,
}

/// A RAID group on a unit's page.
#[derive(Debug, Clone)]
pub struct GroupView {
    index: i64,
    name: String,
    level: String,
    chunk: String,
    members: String,
    state: String,
    rebuild_progress: i64,
    capacity: String,
    free: String,
    used_pct: i64,
    /// No partition in it: it may be deleted.
    empty: bool,
    /// Its lost (failed or missing) members, by slot from 1, when it has
    /// the redundancy to rebuild them: the replace form's first choice.
    lost: Vec<Choice>,
    /// Disks that may take a lost member's place: free and spare disks,
    /// and the lost members' own disks where present.
    candidates: Vec<Choice>,
}

/// A partition on a unit's page.
#[derive(Debug, Clone)]
pub struct PartitionView {
    index: i64,
    name: String,
    group: String,
    offset: String,
    size: String,
    size_mib: i64,
    state: String,
    export: String,
    /// The station volume it is an extent of.
    volume: Option<String>,
}

/// The new-group form's values.
#[derive(Debug, Clone, Default)]
pub struct GroupFormValues {
    name: String,
    chunk: String,
    levels: Vec<Choice>,
}

/// The new-partition form's values.
#[derive(Debug, Clone, Default)]
pub struct PartitionFormValues {
    name: String,
    size: String,
    groups: Vec<Choice>,
}

/// Which form a message belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormAt {
    /// The unit's own actions (approve).
    Unit,
    /// The new-group form.
    NewGroup,
    /// A group's row.
    Group(i64),
    /// The new-partition form.
    NewPartition,
    /// A partition's row.
    Partition(i64),
}

/// A unit's page.
#[derive(Template)]
#[template(path = "unit.html")]
pub struct UnitPage {
    layout: Layout,
    unit: UnitView,
    pending: bool,
    disks: Vec<DiskView>,
    free_disks: usize,
    groups: Vec<GroupView>,
    partitions: Vec<PartitionView>,
    group_form: GroupFormValues,
    partition_form: PartitionFormValues,
    /// The message of a refused change and where it goes.
    error: Option<(FormAt, String)>,
    /// The size typed in a partition's grow form.
    grow_value: String,
}

impl UnitPage {
    fn error_at(&self, at: &FormAt) -> Option<&str> {
        match &self.error {
            Some((where_, message)) if where_ == at => Some(message),
            _ => None,
        }
    }

    /// The message for the unit's actions.
    fn unit_error(&self) -> Option<&str> {
        self.error_at(&FormAt::Unit)
    }

    /// The message for the new-group form.
    fn new_group_error(&self) -> Option<&str> {
        self.error_at(&FormAt::NewGroup)
    }

    /// The message for group `index`.
    fn group_error(&self, index: &i64) -> Option<&str> {
        self.error_at(&FormAt::Group(*index))
    }

    /// The message for the new-partition form.
    fn new_partition_error(&self) -> Option<&str> {
        self.error_at(&FormAt::NewPartition)
    }

    /// The message for partition `index`.
    fn partition_error(&self, index: &i64) -> Option<&str> {
        self.error_at(&FormAt::Partition(*index))
    }

    /// The value for partition `index`'s grow form.
    fn grow_value_of(&self, p: &PartitionView) -> String {
        if self.error_at(&FormAt::Partition(p.index)).is_some() {
            self.grow_value.clone()
        } else {
            p.size_mib.to_string()
        }
    }
}

/// What a refused form keeps.
#[derive(Debug, Default)]
struct Kept {
    group_name: String,
    group_level: String,
    group_chunk: String,
    group_disks: Vec<i64>,
    part_name: String,
    part_group: String,
    part_size: String,
    grow_value: String,
    member_slot: String,
    member_disk: String,
}

fn unit_page(
    user: &CurrentUser,
    d: UnitDetail,
    kept: Kept,
    error: Option<(FormAt, String)>,
) -> UnitPage {
    let group_name = |index: i64| {
        d.raid_groups
            .iter()
            .find(|g| g.group_index == index)
            .map_or_else(|| index.to_string(), |g| g.name.clone())
    };
    let disks: Vec<DiskView> = d
        .disks
        .iter()
        .map(|k| DiskView {
            index: k.disk_index,
            path: k.path.clone(),
            size: mib(k.size_mib),
            state: k.state.clone(),
            group: if k.raid_group == 0 {
                "—".to_owned()
            } else {
                group_name(k.raid_group)
            },
            free: k.raid_group == 0 && k.state == "ok",
            checked: kept.group_disks.contains(&k.disk_index),
        })
        .collect();
    let groups = d
        .raid_groups
        .iter()
        .map(|g| {
            let (lost, candidates) = replace_choices(g, &d.disks, &kept);
            GroupView {
                index: g.group_index,
                name: g.name.clone(),
                level: g.level.clone(),
                chunk: if matches!(g.level.as_str(), "linear" | "raid1") {
                    "—".to_owned()
                } else {
                    format!("{} KiB", g.chunk_kib)
                },
                members: g.members.clone(),
                state: g.state.clone(),
                rebuild_progress: g.rebuild_progress,
                capacity: mib(g.capacity_mib),
                free: mib(g.free_mib),
                used_pct: percent(g.capacity_mib - g.free_mib, g.capacity_mib),
                empty: !d.partitions.iter().any(|p| p.raid_group == g.group_index),
                lost,
                candidates,
            }
        })
        .collect();
    let partitions = d
        .partitions
        .iter()
        .map(|p| PartitionView {
            index: p.volume_index,
            name: p.name.clone(),
            group: group_name(p.raid_group),
            offset: mib(p.offset_mib),
            size: mib(p.size_mib),
            size_mib: p.size_mib,
            state: p.state.clone(),
            export: p.export_name.clone(),
            volume: p.station_volume.clone(),
        })
        .collect();
    let level = if kept.group_level.is_empty() {
        "raid5"
    } else {
        kept.group_level.as_str()
    };
    let group_form = GroupFormValues {
        name: kept.group_name,
        chunk: kept.group_chunk,
        levels: LEVELS
            .iter()
            .map(|(v, l)| Choice {
                value: (*v).to_owned(),
                label: (*l).to_owned(),
                selected: *v == level,
            })
            .collect(),
    };
    let partition_form = PartitionFormValues {
        name: kept.part_name,
        size: kept.part_size,
        groups: d
            .raid_groups
            .iter()
            .map(|g| Choice {
                value: g.group_index.to_string(),
                label: format!("{} ({}, {} free)", g.name, g.level, mib(g.free_mib)),
                selected: g.group_index.to_string() == kept.part_group,
            })
            .collect(),
    };
    UnitPage {
        layout: Layout::page(user, d.unit.name.clone(), "units"),
        unit: UnitView::of(&d.unit),
        pending: d.unit.unit_state() == UnitState::Pending,
        free_disks: disks.iter().filter(|k| k.free).count(),
        disks,
        groups,
        partitions,
        group_form,
        partition_form,
        error,
        grow_value: kept.grow_value,
    }
}

/// The replace form's choices for group `g`: its lost members (when it
/// has the redundancy to rebuild them), each with what its own disk back
/// would rebuild if the disk is there; and the disks that may take a lost
/// member's place (free and spare disks, the lost members' own disks
/// where present).
fn replace_choices(
    g: &GroupRecord,
    disks: &[DiskRecord],
    kept: &Kept,
) -> (Vec<Choice>, Vec<Choice>) {
    let lost = lost_members(g, disks);
    let candidates = disks
        .iter()
        .filter(|k| {
            (k.raid_group == 0 && matches!(k.state.as_str(), "ok" | "spare"))
                || (k.state != "missing" && lost.iter().any(|m| m.disk == k.disk_index))
        })
        .map(|k| Choice {
            value: k.disk_index.to_string(),
            label: format!("#{} {} ({})", k.disk_index, mib(k.size_mib), k.state),
            selected: kept.member_disk == k.disk_index.to_string(),
        })
        .collect();
    let lost = lost
        .iter()
        .map(|m| {
            let back = match m.readd_mib {
                Some(mib) => format!("; its own disk back rebuilds {mib} MiB"),
                None => String::new(),
            };
            Choice {
                value: m.slot.to_string(),
                label: format!(
                    "member {} (disk #{}, {}{back})",
                    m.slot, m.disk, m.disk_state
                ),
                selected: kept.member_slot == m.slot.to_string(),
            }
        })
        .collect();
    (lost, candidates)
}

/// GET /units/{unit}.
pub async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Params(unit): Params<String>,
) -> Result<Response, WebError> {
    let detail = state.ops.unit(&unit).await?;
    Ok(render(
        StatusCode::OK,
        &unit_page(&user, detail, Kept::default(), None),
    ))
}

/// After a change: back to the unit's page; after a refusal: the page
/// again with the form's values and the reason.
async fn answer(
    state: &AppState,
    user: &CurrentUser,
    unit: &str,
    result: Result<UnitDetail, OpError>,
    at: FormAt,
    kept: Kept,
) -> Result<Response, WebError> {
    match result {
        Ok(d) => Ok(see_other(&format!("/units/{}", d.unit.uuid))),
        Err(e @ OpError::Inventory(_)) => Err(WebError::Internal(e.to_string())),
        Err(e) => {
            tracing::info!(unit, error = %e, "unit change refused");
            let detail = state.ops.unit(unit).await?;
            Ok(render(
                form_status(&e),
                &unit_page(user, detail, kept, Some((at, form_message(&e)))),
            ))
        }
    }
}

/// A refusal found before asking the station: the page again, 422.
async fn refuse(
    state: &AppState,
    user: &CurrentUser,
    unit: &str,
    at: FormAt,
    kept: Kept,
    message: String,
) -> Result<Response, WebError> {
    answer(state, user, unit, Err(OpError::Invalid(message)), at, kept).await
}

/// The approve form carries only its token.
#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

/// POST /units/{unit}/approve.
pub async fn approve(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(unit): Params<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<Response, WebError> {
    let result = state.ops.approve_unit(&unit).await;
    answer(&state, &user, &unit, result, FormAt::Unit, Kept::default()).await
}

/// POST /units/{unit}/groups: name, level, chunk_kib, disks (repeated).
pub async fn create_group(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(unit): Params<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map_or(String::new(), |(_, v)| v.trim().to_owned())
    };
    let disks: Vec<i64> = pairs
        .iter()
        .filter(|(k, _)| k == "disks")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let kept = Kept {
        group_name: field("name"),
        group_level: field("level"),
        group_chunk: field("chunk_kib"),
        group_disks: disks.clone(),
        ..Kept::default()
    };
    if disks.is_empty() {
        let message = "Choose the free disks the group is built from.".to_owned();
        return refuse(&state, &user, &unit, FormAt::NewGroup, kept, message).await;
    }
    let chunk_kib = if kept.group_chunk.is_empty() {
        None
    } else {
        match kept.group_chunk.parse::<u32>() {
            Ok(c) => Some(c),
            Err(_) => {
                let message = format!(
                    "Chunk {:?} is not a number of KiB: give a power of two from 4 to 4096, or leave it empty for 64.",
                    kept.group_chunk
                );
                return refuse(&state, &user, &unit, FormAt::NewGroup, kept, message).await;
            }
        }
    };
    let request = GroupRequest {
        name: kept.group_name.clone(),
        level: kept.group_level.clone(),
        chunk_kib,
        disks: disks.iter().map(|&d| d as u32).collect(),
    };
    let result = state.ops.create_group(&unit, request).await;
    answer(&state, &user, &unit, result, FormAt::NewGroup, kept).await
}

/// POST /units/{unit}/groups/{group}/delete.
pub async fn delete_group(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params((unit, group)): Params<(String, u32)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<Response, WebError> {
    let result = state.ops.delete_group(&unit, group).await;
    let at = FormAt::Group(i64::from(group));
    answer(&state, &user, &unit, result, at, Kept::default()).await
}

/// The replace-member form.
#[derive(Debug, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    slot: String,
    #[serde(default)]
    disk: String,
}

/// POST /units/{unit}/groups/{group}/replace: slot, disk.
pub async fn replace_member(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params((unit, group)): Params<(String, u32)>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> Result<Response, WebError> {
    let kept = Kept {
        member_slot: form.slot.clone(),
        member_disk: form.disk.clone(),
        ..Kept::default()
    };
    let at = FormAt::Group(i64::from(group));
    let Ok(slot) = form.slot.trim().parse::<u32>() else {
        let message = "Choose the lost member to replace.".to_owned();
        return refuse(&state, &user, &unit, at, kept, message).await;
    };
    let Ok(disk) = form.disk.trim().parse::<u32>() else {
        let message = "Choose the disk that takes the member's place.".to_owned();
        return refuse(&state, &user, &unit, at, kept, message).await;
    };
    let result = state.ops.replace_member(&unit, group, slot, disk).await;
    answer(&state, &user, &unit, result, at, kept).await
}

/// The new-partition form.
#[derive(Debug, Deserialize)]
pub struct PartitionForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    raid_group: String,
    #[serde(default)]
    size: String,
}

/// POST /units/{unit}/partitions.
pub async fn create_partition(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(unit): Params<String>,
    CsrfForm(form): CsrfForm<PartitionForm>,
) -> Result<Response, WebError> {
    let kept = Kept {
        part_name: form.name.trim().to_owned(),
        part_group: form.raid_group.clone(),
        part_size: form.size.clone(),
        ..Kept::default()
    };
    let Ok(raid_group) = form.raid_group.parse::<u32>() else {
        let message = "Choose the RAID group to carve the partition from.".to_owned();
        return refuse(&state, &user, &unit, FormAt::NewPartition, kept, message).await;
    };
    let size_mib = match parse_size_mib(&form.size) {
        Ok(s) => s,
        Err(message) => {
            return refuse(&state, &user, &unit, FormAt::NewPartition, kept, message).await;
        }
    };
    let request = PartitionRequest {
        name: kept.part_name.clone(),
        raid_group,
        size_mib,
    };
    let result = state.ops.create_partition(&unit, request).await;
    answer(&state, &user, &unit, result, FormAt::NewPartition, kept).await
}

/// The grow form.
#[derive(Debug, Deserialize)]
pub struct GrowForm {
    #[serde(default)]
    size: String,
}

/// POST /units/{unit}/partitions/{index}/grow: to the size given.
pub async fn grow_partition(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params((unit, index)): Params<(String, u32)>,
    CsrfForm(form): CsrfForm<GrowForm>,
) -> Result<Response, WebError> {
    let at = FormAt::Partition(i64::from(index));
    let kept = Kept {
        grow_value: form.size.clone(),
        ..Kept::default()
    };
    let size_mib = match parse_size_mib(&form.size) {
        Ok(s) => s,
        Err(message) => return refuse(&state, &user, &unit, at, kept, message).await,
    };
    let result = state.ops.grow_partition(&unit, index, size_mib).await;
    answer(&state, &user, &unit, result, at, kept).await
}

/// POST /units/{unit}/partitions/{index}/delete.
pub async fn delete_partition(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params((unit, index)): Params<(String, u32)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<Response, WebError> {
    let result = state.ops.delete_partition(&unit, index).await;
    let at = FormAt::Partition(i64::from(index));
    answer(&state, &user, &unit, result, at, Kept::default()).await
}
