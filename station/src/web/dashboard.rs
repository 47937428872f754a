//! The dashboard: units by state, the capacity in service, RAID groups
//! that are not optimal, and the latest events; it reloads itself.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::http::AppState;
use crate::inventory::{EventFilter, UnitState};
use crate::web::auth::CurrentUser;
use crate::web::display::{mib, percent};
use crate::web::events::{EventView, views};
use crate::web::layout::Layout;
use crate::web::{WebError, render};

/// Seconds between the dashboard's reloads.
pub const REFRESH_SECS: u32 = 10;

/// A RAID group needing attention.
#[derive(Debug, Clone)]
pub struct GroupAlert {
    unit_uuid: String,
    unit_name: String,
    group: String,
    level: String,
    state: String,
    rebuild_progress: i64,
}

/// The dashboard.
#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    layout: Layout,
    online: usize,
    offline: usize,
    unreachable: usize,
    pending: usize,
    total: String,
    used: String,
    free: String,
    used_pct: i64,
    alerts: Vec<GroupAlert>,
    events: Vec<EventView>,
}

/// GET /.
pub async fn page(State(state): State<AppState>, user: CurrentUser) -> Result<Response, WebError> {
    let inventory = state.ops.inventory();
    let units = inventory.units().await?;
    let count = |s: UnitState| units.iter().filter(|u| u.unit_state() == s).count();
    // Capacity in service: online units only.
    let (total, free) = units
        .iter()
        .filter(|u| u.unit_state() == UnitState::Online)
        .fold((0, 0), |(t, f), u| (t + u.total_mib, f + u.free_mib));
    let mut alerts = Vec::new();
    for unit in &units {
        for g in inventory.groups_of(&unit.uuid).await? {
            if g.state != "optimal" {
                alerts.push(GroupAlert {
                    unit_uuid: unit.uuid.clone(),
                    unit_name: unit.name.clone(),
                    group: g.name,
                    level: g.level,
                    state: g.state,
                    rebuild_progress: g.rebuild_progress,
                });
            }
        }
    }
    let events = inventory
        .events_matching(&EventFilter {
            limit: 10,
            ..EventFilter::default()
        })
        .await?;
    Ok(render(
        StatusCode::OK,
        &DashboardPage {
            layout: Layout::page(&user, "Dashboard", "dashboard").refreshing(REFRESH_SECS),
            online: count(UnitState::Online),
            offline: count(UnitState::Offline),
            unreachable: count(UnitState::Unreachable),
            pending: count(UnitState::Pending),
            total: mib(total),
            used: mib(total - free),
            free: mib(free),
            used_pct: percent(total - free, total),
            alerts,
            events: views(events, &units),
        },
    ))
}
