//! The REST API's contract without units: every operation the OpenAPI
//! document lists is served (never the router's "no_route"), nothing
//! answers without a token, and errors are JSON with a stable code.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dvsan_snmp::manager::{Manager, ManagerConfig};
use dvsan_snmp::{AuthProtocol, Credentials, PrivProtocol, UsmUser};
use dvsan_station::Inventory;
use dvsan_station::api::{OPERATIONS, openapi_document};
use dvsan_station::http::{AppState, router};
use dvsan_station::operations::Operations;
use dvsan_station::unit_control::UnitControl;
use serde_json::Value;
use tower::ServiceExt;

async fn app() -> (axum::Router, String) {
    let inventory = Inventory::open("sqlite::memory:").await.unwrap();
    let (_, bearer) = inventory.create_token("tests").await.unwrap();
    let manager = Manager::bind(ManagerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        timeout: Duration::from_millis(200),
        retries: 0,
        ..ManagerConfig::default()
    })
    .await
    .unwrap();
    let user = UsmUser {
        name: "dvsanadmin".into(),
        auth_protocol: AuthProtocol::Sha256,
        auth_password: "auth-pass-123".into(),
        priv_protocol: PrivProtocol::Aes128,
        priv_password: "priv-pass-456".into(),
    };
    let ops = Operations::new(inventory, UnitControl::new(manager, Credentials::V3(user)));
    (router(AppState { ops }), bearer)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, value)
}

fn concrete(path: &str) -> String {
    path.replace("{unit}", "nosuchunit")
        .replace("{group}", "1")
        .replace("{partition}", "1")
        .replace("{slot}", "1")
        .replace("{volume}", "nosuchvolume")
        .replace("{client}", "10.0.0.0%2F8")
}

#[tokio::test]
async fn every_documented_operation_is_served_and_guarded() {
    let (app, token) = app().await;
    for op in OPERATIONS {
        let uri = format!("/api/v1{}", concrete(op.path));
        let body = if op.body.is_some() { "{}" } else { "" };
        let (status, v) = call(&app, op.method.as_str(), &uri, None, body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {uri} without a token: {v}",
            op.method
        );
        assert_eq!(v["code"], "unauthorized");
        let (status, v) = call(&app, op.method.as_str(), &uri, Some(&token), body).await;
        assert_ne!(
            v["code"], "no_route",
            "{} {uri} is documented but not served",
            op.method
        );
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {uri}",
            op.method
        );
        if !status.is_success() {
            assert!(
                v["code"].is_string() && v["message"].is_string(),
                "{} {uri}: {v}",
                op.method
            );
        }
    }
    // A path parameter that is not a number: a JSON error too.
    let (status, v) = call(
        &app,
        "DELETE",
        "/api/v1/units/nosuchunit/groups/first",
        Some(&token),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "invalid", "{v}");
    assert!(v["message"].as_str().unwrap().contains("first"), "{v}");
    let (status, v) = call(&app, "GET", "/api/v1/nothing-here", Some(&token), "").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_route"))
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_operation_and_is_public() {
    let (app, _) = app().await;
    let (status, doc) = call(&app, "GET", "/api/v1/openapi.json", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc, openapi_document());
    assert_eq!(doc["openapi"], "3.1.0");
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            assert!(
                OPERATIONS
                    .iter()
                    .any(|o| o.path == path && o.method.as_str().eq_ignore_ascii_case(method)),
                "{method} {path}"
            );
            for r in op["responses"].as_object().unwrap().values() {
                if let Some(schema) = r["content"]["application/json"]["schema"]["$ref"].as_str() {
                    let name = schema.trim_start_matches("#/components/schemas/");
                    assert!(
                        doc["components"]["schemas"][name].is_object(),
                        "{name} is not defined"
                    );
                }
            }
        }
    }
    assert_eq!(count, OPERATIONS.len());
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_codes() {
    let (app, token) = app().await;
    let t = Some(token.as_str());
    let (status, v) = call(&app, "POST", "/api/v1/volumes", t, "{not json").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid")),
        "{v}"
    );
    let (status, v) = call(
        &app,
        "POST",
        "/api/v1/volumes",
        t,
        r#"{"name":"has space","size_mib":1}"#,
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("may not contain"),
        "{v}"
    );
    let (status, v) = call(
        &app,
        "POST",
        "/api/v1/volumes",
        t,
        r#"{"name":"v","size_mib":1,"clients":["nope"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = call(
        &app,
        "POST",
        "/api/v1/volumes",
        t,
        r#"{"name":"v","size_mib":1}"#,
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, Some("no_space")),
        "{v}"
    );
    let (status, v) = call(&app, "GET", "/api/v1/units/ghost", t, "").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{v}"
    );
    let (status, v) = call(&app, "GET", "/api/v1/events?limit=x", t, "").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid")),
        "{v}"
    );
    let (status, v) = call(&app, "GET", "/api/v1/volumes", t, "").await;
    assert_eq!((status, v), (StatusCode::OK, Value::Array(vec![])));
}
