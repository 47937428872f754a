//! The web console's handlers without units: login and logout, sessions,
//! the redirect of every page to the login form, CSRF and role refusals on
//! every form, the accounts pages (users, API tokens) and the events page's
//! filter and paging. Each test drives the station's whole router
//! (`dvsan_station::http::router`) in-process over a fresh in-memory
//! inventory.

mod support {
    pub mod binary;
    pub mod web;
}

use axum::Router;
use axum::http::StatusCode;
use dvsan_snmp::manager::{Manager, ManagerConfig};
use dvsan_snmp::{Credentials, UsmUser};
use dvsan_station::Inventory;
use dvsan_station::http::{AppState, router};
use dvsan_station::inventory::{NewEvent, Role};
use dvsan_station::operations::Operations;
use dvsan_station::unit_control::UnitControl;
use support::web::{Session, cookie_pair, send};

const ADMIN_PASSWORD: &str = "root password";
const VIEWER_PASSWORD: &str = "eve password";

/// The console over an empty inventory with an admin `root` and a viewer
/// `eve`.
async fn console() -> (Router, Inventory) {
    let inventory = Inventory::open("sqlite::memory:").await.unwrap();
    let manager = Manager::bind(ManagerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..ManagerConfig::default()
    })
    .await
    .unwrap();
    let user = UsmUser::sha256_aes("dvsantest", "auth-secret", "priv-secret").unwrap();
    let ops = Operations::new(
        inventory.clone(),
        UnitControl::new(manager, Credentials::V3(user)),
    );
    inventory
        .add_user("root", ADMIN_PASSWORD, Role::Admin)
        .await
        .unwrap();
    inventory
        .add_user("eve", VIEWER_PASSWORD, Role::Viewer)
        .await
        .unwrap();
    (router(AppState { ops }), inventory)
}

const PAGES: &[&str] = &[
    "/",
    "/units",
    "/units/some-unit",
    "/volumes",
    "/volumes/some-volume",
    "/volumes/some-volume/delete",
    "/clients",
    "/events",
    "/users",
    "/tokens",
];

/// Every form of the console (logout aside), with paths whose objects
/// need not exist: the refusals come first.
const FORMS: &[&str] = &[
    "/units/u/approve",
    "/units/u/groups",
    "/units/u/groups/1/delete",
    "/units/u/partitions",
    "/units/u/partitions/1/grow",
    "/units/u/partitions/1/delete",
    "/volumes",
    "/volumes/v/grant",
    "/volumes/v/revoke",
    "/volumes/v/delete",
    "/users",
    "/users/eve/delete",
    "/tokens",
    "/tokens/abc/revoke",
];

#[tokio::test]
async fn every_page_and_form_sends_a_stranger_to_the_login_page() {
    let (app, _) = console().await;
    for page in PAGES {
        let answer = send(&app, "GET", page, "", None).await;
        answer.expect(StatusCode::SEE_OTHER);
        assert!(
            answer.location().starts_with("/login"),
            "{page} → {}",
            answer.location()
        );
    }
    let answer = send(&app, "GET", "/volumes/v", "", None).await;
    assert_eq!(answer.location(), "/login?next=/volumes/v");
    for form in FORMS {
        let answer = send(&app, "POST", form, "", Some(&[("csrf", "x")])).await;
        answer.expect(StatusCode::SEE_OTHER);
        assert!(answer.location().starts_with("/login"), "{form}");
    }
    // A made-up session cookie is no session.
    let answer = send(&app, "GET", "/", "dvsan_session=00ff", None).await;
    answer.expect(StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/login");
}

#[tokio::test]
async fn an_api_call_without_a_token_gets_401() {
    let (app, _) = console().await;
    for path in ["/api/v1/units", "/api/v1/volumes"] {
        let answer = send(&app, "GET", path, "", None).await;
        answer.expect(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn login_checks_its_token_and_password_and_sets_a_strict_http_only_cookie() {
    let (app, _) = console().await;
    let page = send(&app, "GET", "/login?next=/volumes", "", None).await;
    page.expect(StatusCode::OK)
        .has("<form method=\"post\" action=\"/login\"")
        .has("name=\"next\" value=\"/volumes\"");
    let login_cookie = cookie_pair(&page, "dvsan_login");
    let csrf = page.csrf();

    // No token, or the token without its cookie: 403.
    let fields = [("name", "root"), ("password", ADMIN_PASSWORD)];
    send(&app, "POST", "/login", &login_cookie, Some(&fields))
        .await
        .expect(StatusCode::FORBIDDEN);
    let with_token = [
        ("csrf", csrf.as_str()),
        ("name", "root"),
        ("password", ADMIN_PASSWORD),
    ];
    send(&app, "POST", "/login", "", Some(&with_token))
        .await
        .expect(StatusCode::FORBIDDEN);

    // A wrong password: the form again, the name kept, one message.
    let wrong = [
        ("csrf", csrf.as_str()),
        ("name", "root"),
        ("password", "not it at all"),
        ("next", "/volumes"),
    ];
    send(&app, "POST", "/login", &login_cookie, Some(&wrong))
        .await
        .expect(StatusCode::UNAUTHORIZED)
        .has("Wrong user name or password.")
        .has("name=\"name\" value=\"root\"")
        .lacks("not it at all");

    // The right one: a session cookie, back where the visitor was going.
    let right = [
        ("csrf", csrf.as_str()),
        ("name", "root"),
        ("password", ADMIN_PASSWORD),
        ("next", "/volumes"),
    ];
    let answer = send(&app, "POST", "/login", &login_cookie, Some(&right)).await;
    answer.expect(StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/volumes");
    let set = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("dvsan_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    let cookie = cookie_pair(&answer, "dvsan_session");
    send(&app, "GET", "/", &cookie, None)
        .await
        .expect(StatusCode::OK)
        .has("root <small class=\"role\">admin</small>");
    // Logged in, the login page sends the visitor on.
    let again = send(&app, "GET", "/login", &cookie, None).await;
    again.expect(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let (app, _) = console().await;
    let s = Session::login(&app, "eve", VIEWER_PASSWORD).await;
    s.post_without_token(&app, "/logout", &[])
        .await
        .expect(StatusCode::FORBIDDEN);
    let answer = s.post(&app, "/logout", &[]).await;
    answer.expect(StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/login");
    assert!(
        answer
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("dvsan_session=;") && c.contains("Max-Age=0"))
    );
    let after = s.get(&app, "/").await;
    after.expect(StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/login");
}

#[tokio::test]
async fn every_page_renders_for_a_viewer_without_forms_and_accounts_are_for_admins() {
    let (app, _) = console().await;
    let eve = Session::login(&app, "eve", VIEWER_PASSWORD).await;
    for (path, heading) in [
        ("/", "<h1>Dashboard</h1>"),
        ("/units", "<h1>Units</h1>"),
        ("/volumes", "<h1>Volumes</h1>"),
        ("/clients", "<h1>Clients</h1>"),
        ("/events", "<h1>Events</h1>"),
    ] {
        eve.get(&app, path)
            .await
            .expect(StatusCode::OK)
            .has(heading)
            .has("href=\"/static/dvsan.css\"")
            .lacks("href=\"/users\"")
            .lacks("Allocate a volume");
    }
    eve.get(&app, "/")
        .await
        .has("<meta http-equiv=\"refresh\" content=\"10\">")
        .has("<strong>0</strong> online");
    for path in ["/users", "/tokens", "/volumes/v/delete"] {
        eve.get(&app, path)
            .await
            .expect(StatusCode::FORBIDDEN)
            .has("only an admin");
    }
    let root = Session::login(&app, "root", ADMIN_PASSWORD).await;
    root.get(&app, "/users")
        .await
        .expect(StatusCode::OK)
        .has("<h1>Users</h1>")
        .has("eve");
    root.get(&app, "/tokens")
        .await
        .expect(StatusCode::OK)
        .has("<h1>API tokens</h1>");
    root.get(&app, "/volumes")
        .await
        .expect(StatusCode::OK)
        .has("Allocate a volume")
        .has("href=\"/users\"");
    // Things that are not there are 404 pages.
    root.get(&app, "/units/no-such-unit")
        .await
        .expect(StatusCode::NOT_FOUND);
    root.get(&app, "/volumes/no-such-volume")
        .await
        .expect(StatusCode::NOT_FOUND);
    // A group number that is not one: the console's 404 page too.
    root.post(&app, "/units/no-such-unit/groups/first/delete", &[])
        .await
        .expect(StatusCode::NOT_FOUND)
        .has("No such page")
        .has("<!DOCTYPE html>");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_gets_403() {
    let (app, inventory) = console().await;
    let root = Session::login(&app, "root", ADMIN_PASSWORD).await;
    for form in FORMS {
        root.post_without_token(&app, form, &[("name", "x")])
            .await
            .expect(StatusCode::FORBIDDEN)
            .has("security token");
        let wrong = [("csrf", "0123456789abcdef"), ("name", "x")];
        send(&app, "POST", form, &root.cookie, Some(&wrong))
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    // Another session's token is no good either.
    let eve = Session::login(&app, "eve", VIEWER_PASSWORD).await;
    let borrowed = [
        ("csrf", eve.csrf.as_str()),
        ("name", "mallory"),
        ("password", "long enough"),
        ("role", "admin"),
    ];
    send(&app, "POST", "/users", &root.cookie, Some(&borrowed))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(inventory.user_count().await.unwrap(), 2);
}

#[tokio::test]
async fn a_viewer_may_change_nothing() {
    let (app, inventory) = console().await;
    let eve = Session::login(&app, "eve", VIEWER_PASSWORD).await;
    for form in FORMS {
        eve.post(&app, form, &[("name", "x"), ("size", "1G")])
            .await
            .expect(StatusCode::FORBIDDEN)
            .has("eve is a viewer");
    }
    assert_eq!(inventory.user_count().await.unwrap(), 2);
    assert!(inventory.tokens().await.unwrap().is_empty());
}

#[tokio::test]
async fn admins_add_and_delete_users_and_bad_input_keeps_the_form() {
    let (app, inventory) = console().await;
    let root = Session::login(&app, "root", ADMIN_PASSWORD).await;
    root.post(
        &app,
        "/users",
        &[
            ("name", "bob smith"),
            ("password", "long enough"),
            ("role", "admin"),
        ],
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY)
    .has("A user name is 1 to 32 of letters")
    .has("value=\"bob smith\"")
    .has("<option value=\"admin\" selected>");
    root.post(
        &app,
        "/users",
        &[("name", "bob"), ("password", "short"), ("role", "viewer")],
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY)
    .has("A password is 8 to 128 characters");
    root.post(
        &app,
        "/users",
        &[
            ("name", "eve"),
            ("password", "long enough"),
            ("role", "viewer"),
        ],
    )
    .await
    .expect(StatusCode::CONFLICT)
    .has("User eve exists already.");
    assert_eq!(inventory.user_count().await.unwrap(), 2);

    let added = root
        .post(
            &app,
            "/users",
            &[
                ("name", "bob"),
                ("password", "long enough"),
                ("role", "admin"),
            ],
        )
        .await;
    added.expect(StatusCode::SEE_OTHER);
    assert_eq!(added.location(), "/users");
    let bob = Session::login(&app, "bob", "long enough").await;
    bob.get(&app, "/users")
        .await
        .expect(StatusCode::OK)
        .has("bob <small class=\"muted\">(you)</small>");

    root.post(&app, "/users/eve/delete", &[])
        .await
        .expect(StatusCode::SEE_OTHER);
    root.post(&app, "/users/eve/delete", &[])
        .await
        .expect(StatusCode::NOT_FOUND)
        .has("No user eve.");
    bob.post(&app, "/users/root/delete", &[])
        .await
        .expect(StatusCode::SEE_OTHER);
    // root's session went with root.
    root.get(&app, "/").await.expect(StatusCode::SEE_OTHER);
    bob.post(&app, "/users/bob/delete", &[])
        .await
        .expect(StatusCode::CONFLICT)
        .has("The last admin (bob) cannot be deleted.");
    let names: Vec<String> = inventory
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["bob"]);
}

#[tokio::test]
async fn an_api_token_is_shown_once_works_on_the_api_and_is_revoked() {
    let (app, inventory) = console().await;
    let root = Session::login(&app, "root", ADMIN_PASSWORD).await;
    root.post(&app, "/tokens", &[("name", "  ")])
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .has("Name the token");
    let created = root.post(&app, "/tokens", &[("name", "backup host")]).await;
    created
        .expect(StatusCode::CREATED)
        .has("Token “backup host” created");
    let start = created.body.find("<code>dvsan_").unwrap() + "<code>".len();
    let end = created.body[start..].find('<').unwrap() + start;
    let bearer = created.body[start..end].to_owned();
    // Listed afterwards, never with its secret.
    root.get(&app, "/tokens")
        .await
        .has("backup host")
        .lacks(&bearer);

    let api = |bearer: String| {
        let app = app.clone();
        async move {
            let req = axum::http::Request::get("/api/v1/units")
                .header("authorization", format!("Bearer {bearer}"))
                .body(axum::body::Body::empty())
                .unwrap();
            tower::ServiceExt::oneshot(app, req).await.unwrap().status()
        }
    };
    assert_eq!(api(bearer.clone()).await, StatusCode::OK);
    let id = inventory.tokens().await.unwrap()[0].id.clone();
    root.post(&app, &format!("/tokens/{id}/revoke"), &[])
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(api(bearer).await, StatusCode::UNAUTHORIZED);
    root.post(&app, &format!("/tokens/{id}/revoke"), &[])
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_are_filtered_by_kind_and_time_and_paged() {
    let (app, inventory) = console().await;
    for i in 0..60 {
        inventory
            .record_event(NewEvent {
                unit_uuid: None,
                source: "127.0.0.1:4000",
                kind: "learned",
                severity: "info",
                message: &format!("event number {i}"),
            })
            .await
            .unwrap();
    }
    inventory
        .record_event(NewEvent {
            unit_uuid: None,
            source: "127.0.0.1:4000",
            kind: "linkDown",
            severity: "warning",
            message: "a unit said goodbye",
        })
        .await
        .unwrap();
    let eve = Session::login(&app, "eve", VIEWER_PASSWORD).await;
    let first = eve.get(&app, "/events").await;
    first
        .expect(StatusCode::OK)
        .has("a unit said goodbye")
        .has("event number 59")
        .has("Older events")
        .lacks("event number 10<");
    let start = first.body.find("href=\"/events?unit=").unwrap() + "href=\"".len();
    let end = first.body[start..].find('"').unwrap() + start;
    let older = first.body[start..end].replace("&#38;", "&");
    eve.get(&app, &older)
        .await
        .expect(StatusCode::OK)
        .has("event number 0<")
        .has("event number 10<")
        .lacks("event number 11<")
        .lacks("Older events");

    eve.get(&app, "/events?kind=linkDown")
        .await
        .has("a unit said goodbye")
        .lacks("event number")
        .has("name=\"kind\" value=\"linkDown\"");
    eve.get(&app, "/events?until=2000-01-01")
        .await
        .expect(StatusCode::OK)
        .has("No events.");
    eve.get(&app, "/events?since=2000-01-01T00:00&kind=learned")
        .await
        .has("event number 59");
    eve.get(&app, "/events?since=yesterday")
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .has("is not a time")
        .has("value=\"yesterday\"");
}

#[tokio::test]
async fn the_stylesheet_is_served_by_the_station() {
    let (app, _) = console().await;
    let css = send(&app, "GET", "/static/dvsan.css", "", None).await;
    css.expect(StatusCode::OK).has(".bar");
    assert_eq!(
        css.headers.get("content-type").unwrap(),
        "text/css; charset=utf-8"
    );
    assert!(!css.body.contains("http://") && !css.body.contains("https://"));
}

#[tokio::test]
async fn the_first_admin_is_made_when_there_is_no_user() {
    let inventory = Inventory::open("sqlite::memory:").await.unwrap();
    let password = dvsan_station::web::auth::bootstrap_admin(&inventory)
        .await
        .unwrap()
        .expect("a password");
    let admin = inventory.check_login("admin", &password).await.unwrap();
    assert_eq!(admin.map(|u| u.role), Some(Role::Admin));
    assert_eq!(
        dvsan_station::web::auth::bootstrap_admin(&inventory)
            .await
            .unwrap(),
        None
    );
}

#[test]
fn dvsan_station_user_add_makes_a_user_who_can_log_in() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("station.db").display());
    let mut child = support::binary::dvsan()
        .args(["station", "user", "add", "alice", "--role", "viewer"])
        .args(["--password-stdin", "--db", &db])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice's password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "added viewer user alice"
    );
    // Without --password-stdin a password is made up and printed once.
    let out = support::binary::dvsan()
        .args(["station", "user", "add", "root", "--db", &db])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the password printed")
        .to_owned();
    let again = support::binary::dvsan()
        .args(["station", "user", "add", "root", "--db", &db])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let inventory = Inventory::open(&db).await.unwrap();
        let alice = inventory
            .check_login("alice", "alice's password")
            .await
            .unwrap();
        assert_eq!(alice.map(|u| u.role), Some(Role::Viewer));
        let root = inventory.check_login("root", &password).await.unwrap();
        assert_eq!(root.map(|u| u.role), Some(Role::Admin));
    });
}

#[tokio::test]
async fn password_guessing_is_slowed_and_unknown_pages_are_404() {
    let (app, inventory) = console().await;
    inventory
        .add_user("guesser", "the-right-one-42", Role::Viewer)
        .await
        .unwrap();
    let page = send(&app, "GET", "/login", "", None).await;
    let login_cookie = cookie_pair(&page, "dvsan_login");
    let csrf = page.csrf();
    let attempt = |password: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("name", "guesser".to_string()),
            ("password", password.to_string()),
        ]
    };
    for _ in 0..dvsan_station::web::auth::throttle::FREE_TRIES {
        let fields = attempt("guess");
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        send(&app, "POST", "/login", &login_cookie, Some(&fields))
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits.
    let fields = attempt("the-right-one-42");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(&app, "POST", "/login", &login_cookie, Some(&fields))
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS)
        .has("Too many failed logins");

    send(&app, "GET", "/no/such/page", "", None)
        .await
        .expect(StatusCode::NOT_FOUND)
        .has("There is no page at /no/such/page.");
}
