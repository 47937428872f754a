//! The REST API under `/api/v1`: units, RAID groups, partitions, volumes,
//! clients and events as JSON, behind bearer tokens. Errors are JSON
//! `{"code": …, "message": …}` with a stable code. [`OPERATIONS`] lists every
//! route once; the OpenAPI document at `/api/v1/openapi.json` is built from
//! it, and a test checks each listed route is served.

use axum::extract::FromRequestParts;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::AppState;
use crate::inventory::EventFilter;
use crate::operations::{GroupRequest, OpError, PartitionRequest, VolumeRequest};

/// An API error: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let status = match &e {
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            OpError::Conflict(_) => StatusCode::CONFLICT,
            OpError::NoSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            OpError::Unit(_) => StatusCode::BAD_GATEWAY,
            OpError::Inventory(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "API request failed");
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<crate::inventory::InventoryError> for ApiError {
    fn from(e: crate::inventory::InventoryError) -> Self {
        OpError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

/// A JSON body whose rejection is an [`ApiError`].
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::new(e.status(), "invalid", e.body_text())),
        }
    }
}

/// Path parameters whose rejection (a group number that is not one) is an
/// [`ApiError`], as JSON like every other error.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Params(v)),
            Err(e) => Err(ApiError::new(e.status(), "invalid", e.body_text())),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// One documented operation: method, path (OpenAPI syntax), summary, and
/// whether it takes a JSON body.
pub struct Operation {
    /// HTTP method.
    pub method: Method,
    /// Path below `/api/v1`, with `{param}`s.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// The request body's schema name, if any.
    pub body: Option<&'static str>,
    /// The success response's schema name.
    pub response: &'static str,
    /// Success status.
    pub status: u16,
}

const fn op(
    method: Method,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    response: &'static str,
    status: u16,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        body,
        response,
        status,
    }
}

/// Every route of the API.
pub const OPERATIONS: &[Operation] = &[
    op(Method::GET, "/units", "List units", None, "UnitList", 200),
    op(
        Method::GET,
        "/units/{unit}",
        "Show a unit with disks, RAID groups and partitions",
        None,
        "UnitDetail",
        200,
    ),
    op(
        Method::POST,
        "/units/{unit}/approve",
        "Approve a pending unit",
        None,
        "UnitDetail",
        200,
    ),
    op(
        Method::POST,
        "/units/{unit}/groups",
        "Create a RAID group from free disks",
        Some("GroupRequest"),
        "UnitDetail",
        201,
    ),
    op(
        Method::DELETE,
        "/units/{unit}/groups/{group}",
        "Delete an empty RAID group",
        None,
        "UnitDetail",
        200,
    ),
    op(
        Method::POST,
        "/units/{unit}/groups/{group}/members/{slot}",
        "Replace a lost member of a RAID group (rebuilt in the background)",
        Some("MemberRequest"),
        "UnitDetail",
        200,
    ),
    op(
        Method::POST,
        "/units/{unit}/partitions",
        "Create a partition by hand",
        Some("PartitionRequest"),
        "UnitDetail",
        201,
    ),
    op(
        Method::PATCH,
        "/units/{unit}/partitions/{partition}",
        "Grow a partition",
        Some("GrowRequest"),
        "UnitDetail",
        200,
    ),
    op(
        Method::DELETE,
        "/units/{unit}/partitions/{partition}",
        "Delete a partition that is no volume's extent",
        None,
        "UnitDetail",
        200,
    ),
    op(
        Method::GET,
        "/volumes",
        "List volumes",
        None,
        "VolumeList",
        200,
    ),
    op(
        Method::POST,
        "/volumes",
        "Allocate a volume",
        Some("VolumeRequest"),
        "Volume",
        201,
    ),
    op(
        Method::GET,
        "/volumes/{volume}",
        "Show a volume with its extents and NBD URIs",
        None,
        "Volume",
        200,
    ),
    op(
        Method::DELETE,
        "/volumes/{volume}",
        "Delete a volume and its partitions",
        None,
        "Empty",
        204,
    ),
    op(
        Method::POST,
        "/volumes/{volume}/clients",
        "Grant a client host access",
        Some("GrantRequest"),
        "Volume",
        200,
    ),
    op(
        Method::DELETE,
        "/volumes/{volume}/clients/{client}",
        "Revoke a client host (a CIDR's '/' as %2F)",
        None,
        "Volume",
        200,
    ),
    op(
        Method::GET,
        "/clients",
        "List client hosts and their volumes",
        None,
        "ClientList",
        200,
    ),
    op(
        Method::GET,
        "/events",
        "List events, newest first (filters: unit, kind, since, until, before_id, limit)",
        None,
        "EventList",
        200,
    ),
];

/// The API's routes, to nest under `/api/v1`.
pub fn router(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/units", get(units))
        .route("/units/{unit}", get(unit))
        .route("/units/{unit}/approve", post(approve))
        .route("/units/{unit}/groups", post(create_group))
        .route("/units/{unit}/groups/{group}", delete(delete_group))
        .route(
            "/units/{unit}/groups/{group}/members/{slot}",
            post(replace_member),
        )
        .route("/units/{unit}/partitions", post(create_partition))
        .route(
            "/units/{unit}/partitions/{partition}",
            delete(delete_partition).patch(grow_partition),
        )
        .route("/volumes", get(volumes).post(create_volume))
        .route("/volumes/{volume}", get(volume).delete(delete_volume))
        .route("/volumes/{volume}/clients", post(grant))
        .route("/volumes/{volume}/clients/{client}", delete(revoke))
        .route("/clients", get(clients))
        .route("/events", get(events))
        .route_layer(middleware::from_fn_with_state(state, require_token));
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(guarded)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such API route")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(bearer) = bearer else {
        return unauthorized("an API token is needed: Authorization: Bearer TOKEN");
    };
    match state.ops.inventory().check_token(bearer).await {
        Ok(Some(_)) => next.run(req).await,
        Ok(None) => unauthorized("the API token is unknown or revoked"),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"dvsan\""),
    );
    r
}

async fn units(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.ops.inventory().units().await?).into_response())
}

async fn unit(State(s): State<AppState>, Params(unit): Params<String>) -> ApiResult<Response> {
    Ok(Json(s.ops.unit(&unit).await?).into_response())
}

async fn approve(State(s): State<AppState>, Params(unit): Params<String>) -> ApiResult<Response> {
    Ok(Json(s.ops.approve_unit(&unit).await?).into_response())
}

async fn create_group(
    State(s): State<AppState>,
    Params(unit): Params<String>,
    Body(req): Body<GroupRequest>,
) -> ApiResult<Response> {
    let detail = s.ops.create_group(&unit, req).await?;
    Ok((StatusCode::CREATED, Json(detail)).into_response())
}

async fn delete_group(
    State(s): State<AppState>,
    Params((unit, group)): Params<(String, u32)>,
) -> ApiResult<Response> {
    Ok(Json(s.ops.delete_group(&unit, group).await?).into_response())
}

/// The disk to put in a lost member's slot.
#[derive(Debug, Deserialize, Serialize)]
pub struct MemberRequest {
    /// Its dvsanDiskIndex.
    pub disk: u32,
}

async fn replace_member(
    State(s): State<AppState>,
    Params((unit, group, slot)): Params<(String, u32, u32)>,
    Body(req): Body<MemberRequest>,
) -> ApiResult<Response> {
    let detail = s.ops.replace_member(&unit, group, slot, req.disk).await?;
    Ok(Json(detail).into_response())
}

async fn create_partition(
    State(s): State<AppState>,
    Params(unit): Params<String>,
    Body(req): Body<PartitionRequest>,
) -> ApiResult<Response> {
    let detail = s.ops.create_partition(&unit, req).await?;
    Ok((StatusCode::CREATED, Json(detail)).into_response())
}

/// A partition's new size.
#[derive(Debug, Deserialize, Serialize)]
pub struct GrowRequest {
    /// The new size, MiB (larger than now).
    pub size_mib: u64,
}

async fn grow_partition(
    State(s): State<AppState>,
    Params((unit, partition)): Params<(String, u32)>,
    Body(req): Body<GrowRequest>,
) -> ApiResult<Response> {
    Ok(Json(s.ops.grow_partition(&unit, partition, req.size_mib).await?).into_response())
}

async fn delete_partition(
    State(s): State<AppState>,
    Params((unit, partition)): Params<(String, u32)>,
) -> ApiResult<Response> {
    Ok(Json(s.ops.delete_partition(&unit, partition).await?).into_response())
}

async fn volumes(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.ops.volumes().await?).into_response())
}

async fn create_volume(
    State(s): State<AppState>,
    Body(req): Body<VolumeRequest>,
) -> ApiResult<Response> {
    let v = s.ops.create_volume(req).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn volume(State(s): State<AppState>, Params(name): Params<String>) -> ApiResult<Response> {
    Ok(Json(s.ops.volume(&name).await?).into_response())
}

async fn delete_volume(
    State(s): State<AppState>,
    Params(name): Params<String>,
) -> ApiResult<Response> {
    s.ops.delete_volume(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A client host to grant.
#[derive(Debug, Deserialize, Serialize)]
pub struct GrantRequest {
    /// Address or CIDR.
    pub client: String,
}

async fn grant(
    State(s): State<AppState>,
    Params(name): Params<String>,
    Body(req): Body<GrantRequest>,
) -> ApiResult<Response> {
    Ok(Json(s.ops.grant(&name, &req.client).await?).into_response())
}

async fn revoke(
    State(s): State<AppState>,
    Params((name, client)): Params<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(s.ops.revoke(&name, &client).await?).into_response())
}

async fn clients(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.ops.inventory().client_grants().await?).into_response())
}

async fn events(
    State(s): State<AppState>,
    filter: Result<Query<EventFilter>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(filter) =
        filter.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.body_text()))?;
    Ok(Json(s.ops.inventory().events_matching(&filter).await?).into_response())
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The OpenAPI 3.1 document of [`OPERATIONS`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for o in OPERATIONS {
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| {
                let ty = if matches!(p, "group" | "partition" | "slot") {
                    "integer"
                } else {
                    "string"
                };
                json!({"name": p, "in": "path", "required": true, "schema": {"type": ty}})
            })
            .collect();
        let mut operation = json!({
            "summary": o.summary,
            "operationId": format!("{}{}", o.method.as_str().to_lowercase(), o.path.replace(['/', '{', '}'], "_")),
            "parameters": params,
            "security": [{"bearer": []}],
            "responses": {
                o.status.to_string(): if o.response == "Empty" {
                    json!({"description": "done"})
                } else {
                    json!({"description": "done", "content": {"application/json": {"schema": schema_ref(o.response)}}})
                },
                "default": {"description": "an error", "content": {"application/json": {"schema": schema_ref("Error")}}}
            }
        });
        if o.path == "/events" {
            let q = |name: &str, ty: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}});
            operation["parameters"] = json!([
                q("unit", "string"),
                q("kind", "string"),
                q("since", "integer"),
                q("until", "integer"),
                q("before_id", "integer"),
                q("limit", "integer")
            ]);
        }
        if let Some(body) = o.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema_ref(body)}}
            });
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method.as_str().to_lowercase()] = operation;
    }
    let string = json!({"type": "string"});
    let int = json!({"type": "integer"});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dvsan station API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Units, RAID groups, partitions, volumes, clients and events of a dvsan virtual SAN."
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": ["not_found", "invalid", "conflict", "no_space", "unit_error", "internal", "unauthorized", "no_route", "method_not_allowed"]},
                    "message": string}},
                "Unit": {"type": "object", "properties": {
                    "uuid": string, "name": string, "snmp_address": string, "nbd_endpoint": string,
                    "nbd_tls": {"type": "string", "enum": ["off", "optional", "required"]},
                    "sys_descr": string, "software": string,
                    "state": {"type": "string", "enum": ["online", "offline", "unreachable", "pending"]},
                    "total_mib": int, "free_mib": int, "missed_polls": int, "last_seen": int}},
                "UnitList": {"type": "array", "items": schema_ref("Unit")},
                "Disk": {"type": "object", "properties": {"disk_index": int, "path": string, "size_mib": int, "state": string, "raid_group": int}},
                "RaidGroup": {"type": "object", "properties": {"group_index": int, "name": string, "level": string, "chunk_kib": int, "member_count": int, "members": string, "capacity_mib": int, "free_mib": int, "state": string, "rebuild_progress": int, "readd_mib": string}},
                "Partition": {"type": "object", "properties": {"unit_uuid": string, "volume_index": int, "uuid": string, "name": string, "raid_group": int, "offset_mib": int, "size_mib": int, "state": string, "export_name": string, "access_mode": string, "available": int, "station_volume": {"type": ["string", "null"]}}},
                "UnitDetail": {"type": "object", "properties": {
                    "unit": schema_ref("Unit"),
                    "disks": {"type": "array", "items": schema_ref("Disk")},
                    "raid_groups": {"type": "array", "items": schema_ref("RaidGroup")},
                    "partitions": {"type": "array", "items": schema_ref("Partition")}}},
                "GroupRequest": {"type": "object", "required": ["name", "level", "disks"], "properties": {
                    "name": string,
                    "level": {"type": "string", "enum": ["linear", "raid0", "raid1", "raid10", "raid5", "raid6"]},
                    "chunk_kib": {"type": ["integer", "null"]},
                    "disks": {"type": "array", "items": int}}},
                "PartitionRequest": {"type": "object", "required": ["name", "raid_group", "size_mib"], "properties": {"name": string, "raid_group": int, "size_mib": int}},
                "GrowRequest": {"type": "object", "required": ["size_mib"], "properties": {"size_mib": int}},
                "MemberRequest": {"type": "object", "required": ["disk"], "properties": {"disk": int}},
                "Placement": {"type": "object", "properties": {"unit": string, "domain": string, "level": string}},
                "VolumeRequest": {"type": "object", "required": ["name", "size_mib"], "properties": {
                    "name": string, "size_mib": int,
                    "clients": {"type": "array", "items": string},
                    "placement": schema_ref("Placement")}},
                "Extent": {"type": "object", "properties": {"seq": int, "unit_uuid": string, "unit_name": string, "volume_index": int, "raid_group": int, "start_mib": int, "size_mib": int, "export_name": string, "nbd_uri": string, "nbd_tls": {"type": "string", "enum": ["off", "optional", "required", ""]}, "available": {"type": "boolean"}}},
                "Volume": {"type": "object", "properties": {
                    "name": string, "uuid": string, "size_mib": int,
                    "state": {"type": "string", "enum": ["online", "unavailable"]},
                    "created_at": int,
                    "extents": {"type": "array", "items": schema_ref("Extent")},
                    "clients": {"type": "array", "items": string}}},
                "VolumeList": {"type": "array", "items": schema_ref("Volume")},
                "GrantRequest": {"type": "object", "required": ["client"], "properties": {"client": string}},
                "ClientList": {"type": "array", "items": {"type": "object", "properties": {"client": string, "volume": string, "granted_at": int}}},
                "EventList": {"type": "array", "items": {"type": "object", "properties": {"id": int, "at": int, "unit_uuid": {"type": ["string", "null"]}, "source": string, "kind": string, "severity": string, "message": string}}}
            }
        }
    })
}
