//! The events page: what units announced and what the station did,
//! filtered by unit, kind and time, newest first, a page at a time.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::http::AppState;
use crate::inventory::{EventFilter, EventRow, UnitRow};
use crate::web::auth::CurrentUser;
use crate::web::display::{datetime_input, parse_datetime, time, url_encode};
use crate::web::layout::Layout;
use crate::web::{WebError, render};

/// Events on one page.
pub const PAGE_SIZE: i64 = 50;

/// An event as listed.
#[derive(Debug, Clone)]
pub struct EventView {
    /// Sequence number.
    pub id: i64,
    /// When, for people.
    pub at: String,
    /// The unit's UUID, when one is concerned.
    pub unit_uuid: String,
    /// The unit's name (or UUID when unknown), empty when none.
    pub unit_name: String,
    /// What happened.
    pub kind: String,
    /// info | warning | error.
    pub severity: String,
    /// Where it came from.
    pub source: String,
    /// Text for people.
    pub message: String,
}

/// Events with their units' names.
pub fn views(rows: Vec<EventRow>, units: &[UnitRow]) -> Vec<EventView> {
    let names: HashMap<&str, &str> = units
        .iter()
        .map(|u| (u.uuid.as_str(), u.name.as_str()))
        .collect();
    rows.into_iter()
        .map(|e| {
            let unit_uuid = e.unit_uuid.unwrap_or_default();
            let unit_name = names
                .get(unit_uuid.as_str())
                .map_or_else(|| unit_uuid.clone(), |n| (*n).to_owned());
            EventView {
                id: e.id,
                at: time(e.at),
                unit_uuid,
                unit_name,
                kind: e.kind,
                severity: e.severity,
                source: e.source,
                message: e.message,
            }
        })
        .collect()
}

/// The filter as typed (kept in the form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

/// A choice in a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The submitted value.
    pub value: String,
    /// What people see.
    pub label: String,
    /// Whether it is chosen.
    pub selected: bool,
}

/// The events page.
#[derive(Template)]
#[template(path = "events.html")]
pub struct EventsPage {
    layout: Layout,
    units: Vec<Choice>,
    kind: String,
    since: String,
    until: String,
    events: Vec<EventView>,
    error: Option<String>,
    /// The link to the next (older) page, when there may be one.
    older: Option<String>,
    /// Whether this is not the first page.
    paged: bool,
}

/// GET /events.
pub async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<EventQuery>,
) -> Result<Response, WebError> {
    let inventory = state.ops.inventory();
    let units = inventory.units().await?;
    let mut error = None;
    let mut bound = |text: &str, what: &str| -> Option<i64> {
        if text.trim().is_empty() {
            return None;
        }
        let parsed = parse_datetime(text);
        if parsed.is_none() {
            error = Some(format!(
                "{what} {text:?} is not a time: give it as 2026-04-14 or 2026-04-14T10:30 (UTC)."
            ));
        }
        parsed
    };
    let since = bound(&q.since, "From");
    let until = bound(&q.until, "To");
    let filter = EventFilter {
        unit: Some(q.unit.clone()).filter(|u| !u.is_empty()),
        kind: Some(q.kind.trim().to_owned()).filter(|k| !k.is_empty()),
        since,
        until,
        before_id: q.before,
        limit: PAGE_SIZE,
    };
    let rows = inventory.events_matching(&filter).await?;
    let older = (rows.len() as i64 == PAGE_SIZE)
        .then(|| rows.last().map(|e| e.id))
        .flatten()
        .map(|last| {
            format!(
                "/events?unit={}&kind={}&since={}&until={}&before={last}",
                url_encode(&q.unit),
                url_encode(q.kind.trim()),
                since.map(datetime_input).unwrap_or_default(),
                until.map(datetime_input).unwrap_or_default(),
            )
        });
    let mut choices = vec![Choice {
        value: String::new(),
        label: "every unit".into(),
        selected: q.unit.is_empty(),
    }];
    choices.extend(units.iter().map(|u| Choice {
        value: u.uuid.clone(),
        label: u.name.clone(),
        selected: u.uuid == q.unit,
    }));
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &EventsPage {
            layout: Layout::page(&user, "Events", "events"),
            units: choices,
            kind: q.kind,
            since: q.since,
            until: q.until,
            events: views(rows, &units),
            error,
            older,
            paged: q.before.is_some(),
        },
    ))
}
