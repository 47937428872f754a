//! Station volumes and the client hosts that use them: the list with the
//! allocation form, each volume's page (extents with their NBD URIs, the
//! attach command, grant and revoke), deletion behind a confirmation page,
//! and the clients page.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use crate::http::AppState;
use crate::inventory::UnitState;
use crate::operations::{OpError, Placement, VolumeRequest, VolumeView};
use crate::web::auth::{Admin, CurrentUser};
use crate::web::csrf::CsrfForm;
use crate::web::display::{mib, parse_size_mib, time};
use crate::web::events::Choice;
use crate::web::layout::Layout;
use crate::web::units::LEVELS;
use crate::web::{Params, WebError, form_message, form_status, render, see_other};

/// A volume as listed.
#[derive(Debug, Clone)]
pub struct VolumeRow {
    name: String,
    size: String,
    extents: usize,
    units: String,
    clients: String,
    state: String,
}

impl VolumeRow {
    fn of(v: &VolumeView) -> VolumeRow {
        let mut units: Vec<&str> = v.extents.iter().map(|e| e.unit_name.as_str()).collect();
        units.dedup();
        VolumeRow {
            name: v.name.clone(),
            size: mib(v.size_mib as i64),
            extents: v.extents.len(),
            units: units.join(", "),
            clients: if v.clients.is_empty() {
                "—".to_owned()
            } else {
                v.clients.join(", ")
            },
            state: v.state.clone(),
        }
    }
}

/// The allocation form's values.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AllocateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    size: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    level: String,
}

/// The volumes page.
#[derive(Template)]
#[template(path = "volumes.html")]
pub struct VolumesPage {
    layout: Layout,
    volumes: Vec<VolumeRow>,
    form: AllocateForm,
    units: Vec<Choice>,
    levels: Vec<Choice>,
    error: Option<String>,
}

async fn volumes_page(
    state: &AppState,
    user: &CurrentUser,
    form: AllocateForm,
    error: Option<String>,
) -> Result<VolumesPage, WebError> {
    let volumes = state.ops.volumes().await?;
    let units = state.ops.inventory().units().await?;
    let mut unit_choices = vec![Choice {
        value: String::new(),
        label: "any unit".into(),
        selected: form.unit.is_empty(),
    }];
    unit_choices.extend(
        units
            .iter()
            .filter(|u| u.unit_state() == UnitState::Online)
            .map(|u| Choice {
                value: u.uuid.clone(),
                label: format!("{} ({} free)", u.name, mib(u.free_mib)),
                selected: form.unit == u.uuid || form.unit == u.name,
            }),
    );
    let mut levels = vec![Choice {
        value: String::new(),
        label: "any level".into(),
        selected: form.level.is_empty(),
    }];
    levels.extend(LEVELS.iter().map(|(v, l)| Choice {
        value: (*v).to_owned(),
        label: (*l).to_owned(),
        selected: form.level == *v,
    }));
    Ok(VolumesPage {
        layout: Layout::page(user, "Volumes", "volumes"),
        volumes: volumes.iter().map(VolumeRow::of).collect(),
        form,
        units: unit_choices,
        levels,
        error,
    })
}

/// GET /volumes.
pub async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Response, WebError> {
    let page = volumes_page(&state, &user, AllocateForm::default(), None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// Client hosts typed in a form: separated by commas or spaces.
fn clients_of(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// POST /volumes: allocate.
pub async fn allocate(
    State(state): State<AppState>,
    Admin(user): Admin,
    CsrfForm(form): CsrfForm<AllocateForm>,
) -> Result<Response, WebError> {
    let size_mib = match parse_size_mib(&form.size) {
        Ok(s) => s,
        Err(message) => {
            let page = volumes_page(&state, &user, form, Some(message)).await?;
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let request = VolumeRequest {
        name: form.name.trim().to_owned(),
        size_mib,
        clients: clients_of(&form.client),
        placement: Placement {
            unit: optional(&form.unit),
            domain: optional(&form.domain),
            level: optional(&form.level),
        },
    };
    match state.ops.create_volume(request).await {
        Ok(v) => {
            tracing::info!(volume = %v.name, user = %user.name, "volume allocated");
            Ok(see_other(&format!("/volumes/{}", v.name)))
        }
        Err(e @ OpError::Inventory(_)) => Err(WebError::Internal(e.to_string())),
        Err(e) => {
            tracing::info!(volume = %form.name, error = %e, "allocation refused");
            let status = form_status(&e);
            let page = volumes_page(&state, &user, form, Some(form_message(&e))).await?;
            Ok(render(status, &page))
        }
    }
}

/// An extent on a volume's page.
#[derive(Debug, Clone)]
pub struct ExtentRow {
    seq: u32,
    unit_uuid: String,
    unit_name: String,
    start: String,
    size: String,
    raid_group: u32,
    nbd_uri: String,
    available: bool,
}

/// A volume's page.
#[derive(Template)]
#[template(path = "volume.html")]
pub struct VolumePage {
    layout: Layout,
    name: String,
    uuid: String,
    size: String,
    state: String,
    created: String,
    extents: Vec<ExtentRow>,
    clients: Vec<String>,
    attach: String,
    grant_value: String,
    error: Option<String>,
}

/// The station's own URL as the browser reached it.
fn station_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn volume_page(
    user: &CurrentUser,
    headers: &HeaderMap,
    v: VolumeView,
    grant_value: String,
    error: Option<String>,
) -> VolumePage {
    VolumePage {
        layout: Layout::page(user, format!("Volume {}", v.name), "volumes"),
        attach: format!(
            "dvsan volume attach {} --station-url {}",
            v.name,
            station_url(headers)
        ),
        size: mib(v.size_mib as i64),
        created: time(v.created_at),
        extents: v
            .extents
            .iter()
            .map(|e| ExtentRow {
                seq: e.seq,
                unit_uuid: e.unit_uuid.clone(),
                unit_name: e.unit_name.clone(),
                start: mib(e.start_mib as i64),
                size: mib(e.size_mib as i64),
                raid_group: e.raid_group,
                nbd_uri: e.nbd_uri.clone(),
                available: e.available,
            })
            .collect(),
        name: v.name,
        uuid: v.uuid,
        state: v.state,
        clients: v.clients,
        grant_value,
        error,
    }
}

/// GET /volumes/{name}.
pub async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Params(name): Params<String>,
) -> Result<Response, WebError> {
    let v = state.ops.volume(&name).await?;
    Ok(render(
        StatusCode::OK,
        &volume_page(&user, &headers, v, String::new(), None),
    ))
}

/// The grant and revoke forms.
#[derive(Debug, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    client: String,
}

async fn change_client(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    name: &str,
    client: String,
    grant: bool,
) -> Result<Response, WebError> {
    let client = client.trim().to_owned();
    let result = if client.is_empty() {
        Err(OpError::Invalid(
            "Give the client host's address or network, like 192.0.2.7 or 192.0.2.0/24.".into(),
        ))
    } else if grant {
        state.ops.grant(name, &client).await
    } else {
        state.ops.revoke(name, &client).await
    };
    match result {
        Ok(v) => Ok(see_other(&format!("/volumes/{}", v.name))),
        Err(e @ OpError::Inventory(_)) => Err(WebError::Internal(e.to_string())),
        Err(e) => {
            tracing::info!(volume = name, %client, error = %e, "client change refused");
            let v = state.ops.volume(name).await?;
            let kept = if grant { client } else { String::new() };
            Ok(render(
                form_status(&e),
                &volume_page(user, headers, v, kept, Some(form_message(&e))),
            ))
        }
    }
}

/// POST /volumes/{name}/grant.
pub async fn grant(
    State(state): State<AppState>,
    Admin(user): Admin,
    headers: HeaderMap,
    Params(name): Params<String>,
    CsrfForm(form): CsrfForm<ClientForm>,
) -> Result<Response, WebError> {
    change_client(&state, &user, &headers, &name, form.client, true).await
}

/// POST /volumes/{name}/revoke.
pub async fn revoke(
    State(state): State<AppState>,
    Admin(user): Admin,
    headers: HeaderMap,
    Params(name): Params<String>,
    CsrfForm(form): CsrfForm<ClientForm>,
) -> Result<Response, WebError> {
    change_client(&state, &user, &headers, &name, form.client, false).await
}

/// The deletion's confirmation page.
#[derive(Template)]
#[template(path = "volume_delete.html")]
pub struct ConfirmDeletePage {
    layout: Layout,
    name: String,
    size: String,
    clients: String,
    error: Option<String>,
}

fn confirm_page(user: &CurrentUser, v: &VolumeView, error: Option<String>) -> ConfirmDeletePage {
    ConfirmDeletePage {
        layout: Layout::page(user, format!("Delete volume {}", v.name), "volumes"),
        name: v.name.clone(),
        size: mib(v.size_mib as i64),
        clients: if v.clients.is_empty() {
            "no client".to_owned()
        } else {
            v.clients.join(", ")
        },
        error,
    }
}

/// GET /volumes/{name}/delete: are you sure?
pub async fn confirm_delete(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(name): Params<String>,
) -> Result<Response, WebError> {
    let v = state.ops.volume(&name).await?;
    Ok(render(StatusCode::OK, &confirm_page(&user, &v, None)))
}

/// The confirmation: the volume's name typed again.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// POST /volumes/{name}/delete.
pub async fn delete(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(name): Params<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, WebError> {
    let v = state.ops.volume(&name).await?;
    if form.confirm.trim() != v.name {
        let message = format!("Type the volume's name, {}, to delete it.", v.name);
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &confirm_page(&user, &v, Some(message)),
        ));
    }
    match state.ops.delete_volume(&v.name).await {
        Ok(()) => {
            tracing::info!(volume = %v.name, user = %user.name, "volume deleted");
            Ok(see_other("/volumes"))
        }
        Err(e @ OpError::Inventory(_)) => Err(WebError::Internal(e.to_string())),
        Err(e) => Ok(render(
            form_status(&e),
            &confirm_page(&user, &v, Some(form_message(&e))),
        )),
    }
}

/// A client host with the volumes it may use.
#[derive(Debug, Clone)]
pub struct ClientRow {
    client: String,
    volumes: Vec<String>,
}

/// The clients page.
#[derive(Template)]
#[template(path = "clients.html")]
pub struct ClientsPage {
    layout: Layout,
    clients: Vec<ClientRow>,
}

/// GET /clients.
pub async fn clients(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    let mut by_client: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in state.ops.volumes().await? {
        for c in v.clients {
            by_client.entry(c).or_default().push(v.name.clone());
        }
    }
    Ok(render(
        StatusCode::OK,
        &ClientsPage {
            layout: Layout::page(&user, "Clients", "clients"),
            clients: by_client
                .into_iter()
                .map(|(client, volumes)| ClientRow { client, volumes })
                .collect(),
        },
    ))
}
