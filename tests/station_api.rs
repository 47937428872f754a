//! The station's REST API and client commands end to end, with real
//! `dvsan agent` and `dvsan station` processes: a RAID group made through the
//! API, a volume allocated by `dvsan volume create`, seen by net-snmp's
//! `snmpbulkwalk` on the unit and written and read back by `qemu-io` at the
//! NBD URI the station returned; errors as JSON; a spoofed coldStart adds
//! nothing; a unit killed without linkDown becomes unreachable by polling;
//! a unit serving NBD over TLS only is known as such, its volumes handed
//! out as `nbds://`, and `dvsan volume attach` reaches it over TLS; a
//! member lost under a volume is replaced through the API and rebuilt
//! while qemu-io's data stays.

#[path = "../snmp/tests/support/net_snmp.rs"]
mod net_snmp;
#[path = "../nbd/tests/common/pki.rs"]
mod pki;
mod support {
    pub mod agent_process;
    pub mod binary;
    pub mod station_process;
}

use std::time::{Duration, Instant};

use net_snmp::{Auth, NetSnmp, V3_AUTH, V3_PRIV, V3_USER, run_bounded, stderr, stdout};
use serde_json::{Value, json};
use support::agent_process::{AgentProcess, AgentSpec, v3_run};
use support::binary::dvsan;
use support::station_process::{Running, start_station_with};

const VOLUME_NAME_COLUMN: &str = "1.3.6.1.4.1.8072.9999.9999.1.1.4.1.2";
const ACCESS_CLIENT_COLUMN: &str = "1.3.6.1.4.1.8072.9999.9999.1.1.5.1.2";

/// A bearer token made by `dvsan station token create`.
fn token(db: &str) -> String {
    let out = run_bounded(
        {
            let mut c = dvsan();
            c.args(["station", "token", "create", "tests", "--db", db]);
            c
        },
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let t = stdout(&out).trim().to_string();
    assert!(t.starts_with("dvsan_"), "{t}");
    t
}

struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(station: &Running, token: &str) -> Api {
        Api {
            base: station.api(),
            token: token.to_string(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .new_agent(),
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>, auth: bool) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder().method(method).uri(&url);
        let req = if auth {
            req.header("Authorization", format!("Bearer {}", self.token))
        } else {
            req
        };
        let result = match body {
            Some(b) => self.agent.run(
                req.header("Content-Type", "application/json")
                    .body(b.to_string())
                    .unwrap(),
            ),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut r = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = self.send("GET", path, None, true);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn unit_state(api: &Api, name: &str) -> Option<String> {
    api.get("/units")
        .as_array()?
        .iter()
        .find(|u| u["name"] == name)
        .map(|u| u["state"].as_str().unwrap_or("").to_string())
}

fn cli(station: &Running, token: &str, args: &[&str]) -> std::process::Output {
    let mut c = dvsan();
    c.args(args)
        .args(["--station-url", &format!("http://{}", station.web)])
        .env("DVSAN_TOKEN", token);
    run_bounded(c, Duration::from_secs(60))
}

/// qemu-io runs `commands` at `uri` (raw); every pattern checks.
fn qemu_io(uri: &str, commands: &[&str]) {
    qemu_io_opening(&["-f", "raw", uri], commands);
}

/// qemu-io opens its image with `open` (a file name or URI and its
/// options) and runs `commands`; every pattern checks.
fn qemu_io_opening(open: &[&str], commands: &[&str]) {
    let mut qemu = std::process::Command::new("qemu-io");
    qemu.args(open);
    for c in commands {
        qemu.args(["-c", c]);
    }
    let out = run_bounded(qemu, Duration::from_secs(60));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        !stdout(&out).contains("Pattern verification failed"),
        "{}",
        stdout(&out)
    );
}

/// Group 1's entry in the API's view of `unit`.
fn group_one(api: &Api, unit: &str) -> Value {
    api.get(&format!("/units/{unit}"))["raid_groups"][0].clone()
}

/// A RAID group made on `unit` from `group` (a GroupRequest) and then a
/// volume allocated from `volume` (a VolumeRequest), both through the
/// API; the volume as the API returns it.
fn group_and_volume(api: &Api, unit: &str, group: Value, volume: Value) -> Value {
    let (status, body) = api.send("POST", &format!("/units/{unit}/groups"), Some(group), true);
    assert_eq!(status, 201, "{body}");
    let (status, v) = api.send("POST", "/volumes", Some(volume), true);
    assert_eq!(status, 201, "{v}");
    v
}

/// A station (with a token and an API client) in a temp dir, and the
/// net-snmp tools.
struct Rig {
    dir: tempfile::TempDir,
    station: Running,
    trap: std::net::SocketAddr,
    token: String,
    api: Api,
    tools: NetSnmp,
}

impl Rig {
    /// `flags` for `dvsan station`; `snmp_timeout_ms` through its config file.
    fn start(flags: &[&str], snmp_timeout_ms: Option<u64>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("station.db").display());
        let config = dir.path().join("station.toml");
        let mut flags = flags.to_vec();
        if let Some(ms) = snmp_timeout_ms {
            std::fs::write(&config, format!("snmp_timeout_ms = {ms}\n")).unwrap();
            flags.extend(["--config", config.to_str().unwrap()]);
        }
        let (station, trap) = start_station_with(&db, V3_USER, V3_AUTH, V3_PRIV, &flags);
        let token = token(&db);
        let api = Api::new(&station, &token);
        Rig {
            dir,
            station,
            trap,
            token,
            api,
            tools: NetSnmp::new(),
        }
    }
}

fn start_unit(tools: &NetSnmp, dir: &std::path::Path, name: &str, trap: &str) -> AgentProcess {
    start_unit_with(tools, dir, name, trap, 3, &[])
}

/// A unit of `disks` 64 MiB disks announcing itself to `trap`, started
/// with `extra` flags too.
fn start_unit_with(
    tools: &NetSnmp,
    dir: &std::path::Path,
    name: &str,
    trap: &str,
    disks: usize,
    extra: &[String],
) -> AgentProcess {
    let mut spec = AgentSpec::three_disks(&dir.join(name));
    spec.disks = (1..=disks).map(|i| format!("disk{i}.img=64M")).collect();
    std::fs::create_dir_all(&spec.dir).unwrap();
    spec.name = name.into();
    spec.args = vec!["--station".into(), trap.into()];
    spec.args.extend_from_slice(extra);
    AgentProcess::start(spec, tools)
}

/// `dvsan volume attach VOLUME` (with `extra` flags) serving on a Unix
/// socket in `dir`, once the socket is there; its `nbd+unix` URI.
fn attach_on_socket(
    station: &Running,
    token: &str,
    dir: &std::path::Path,
    volume: &str,
    extra: &[&str],
) -> (std::process::Child, String) {
    let sock = dir.join(format!("{volume}.sock"));
    let log = dir.join(format!("attach-{volume}.log"));
    let mut attach = dvsan()
        .args(["volume", "attach", volume, "--listen"])
        .arg(format!("unix:{}", sock.display()))
        .args(extra)
        .args(["--station-url", &format!("http://{}", station.web)])
        .env("DVSAN_TOKEN", token)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("the attach socket", Duration::from_secs(20), || {
        if let Ok(Some(status)) = attach.try_wait() {
            panic!(
                "attach exited {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        sock.exists()
    });
    let uri = format!("nbd+unix:///{volume}?socket={}", sock.display());
    (attach, uri)
}

/// Stops an attach as an admin would (SIGTERM) and waits for it.
fn stop_attach(mut attach: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &attach.id().to_string()])
        .status();
    let _ = attach.wait();
}

#[test]
fn a_volume_made_through_the_api_is_on_the_unit_and_served_to_qemu() {
    net_snmp::require_tool("qemu-io", "qemu-utils");
    let Rig {
        dir,
        station,
        trap,
        token,
        api,
        tools,
    } = Rig::start(&["--poll-interval", "30"], None);

    // No token, a wrong token: 401 with a JSON error.
    let (status, body) = api.send("GET", "/units", None, false);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "unauthorized");
    let wrong = Api {
        token: format!("{token}x"),
        ..Api::new(&station, &token)
    };
    assert_eq!(wrong.send("GET", "/volumes", None, true).0, 401);

    let agent = start_unit(&tools, dir.path(), "unit-a", &trap.to_string());
    let took = wait_for(
        "the unit online in the API",
        Duration::from_secs(20),
        || unit_state(&api, "unit-a").as_deref() == Some("online"),
    );
    eprintln!("agent answered SNMP → unit online in /api/v1/units: {took:?}");
    // A genuine v3 inform (engine discovery and time sync included) is
    // never taken for a spoof.
    let refused = api.get("/events?kind=refused");
    assert!(refused.as_array().unwrap().is_empty(), "{refused}");
    let unit = api.get("/units/unit-a");
    assert_eq!(unit["disks"].as_array().unwrap().len(), 3, "{unit}");
    assert!(unit["raid_groups"].as_array().unwrap().is_empty());

    // A RAID 5 group from the three free disks, by SNMP SET from the station.
    let (status, body) = api.send(
        "POST",
        "/units/unit-a/groups",
        Some(json!({"name": "r5", "level": "raid5", "disks": [1, 2, 3]})),
        true,
    );
    assert_eq!(status, 201, "{body}");
    let groups = body["raid_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{body}");
    assert_eq!(groups[0]["level"], "raid5");
    let free = groups[0]["free_mib"].as_i64().unwrap();
    assert!(free >= 64, "{body}");
    // A bad request changes nothing and says why.
    let (status, body) = api.send(
        "POST",
        "/units/unit-a/groups",
        Some(json!({"name": "again", "level": "raid7", "disks": [1]})),
        true,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );
    let (status, body) = api.send("POST", "/volumes", Some(json!({"name": "x"})), true);
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );

    // More than there is: no_space, and nothing left on the unit.
    let (status, body) = api.send(
        "POST",
        "/volumes",
        Some(json!({"name": "huge", "size_mib": free + 1, "clients": ["127.0.0.1"]})),
        true,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("no_space")),
        "{body}"
    );

    // `dvsan volume create` → one extent on unit-a with its NBD URI.
    let out = cli(
        &station,
        &token,
        &[
            "volume",
            "create",
            "vm1",
            "--size",
            "32M",
            "--client",
            "127.0.0.1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["size_mib"], 32, "{v}");
    let extents = v["extents"].as_array().unwrap();
    assert_eq!(extents.len(), 1, "{v}");
    let uri = extents[0]["nbd_uri"].as_str().unwrap().to_string();
    assert_eq!(uri, agent.nbd_uri("vm1"));
    assert_eq!(v["clients"], json!(["127.0.0.1"]));

    // net-snmp sees the partition and its access entry on the unit.
    let walk = v3_run(&tools, "snmpbulkwalk", &agent, &[VOLUME_NAME_COLUMN]);
    assert!(walk.status.success(), "{}", stderr(&walk));
    assert!(stdout(&walk).contains("\"vm1\""), "{}", stdout(&walk));
    let walk = v3_run(&tools, "snmpbulkwalk", &agent, &[ACCESS_CLIENT_COLUMN]);
    assert!(stdout(&walk).contains("\"127.0.0.1\""), "{}", stdout(&walk));

    // qemu-io writes and reads back a pattern at the URI.
    qemu_io(
        &uri,
        &[
            "write -P 0xab 1M 1M",
            "read -P 0xab 1M 1M",
            "read -P 0 0 1M",
        ],
    );

    // Listing, grant, revoke, clients, events.
    let out = cli(&station, &token, &["volume", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("vm1"), "{}", stdout(&out));
    let (status, body) = api.send(
        "POST",
        "/volumes/vm1/clients",
        Some(json!({"client": "10.9.0.0/16"})),
        true,
    );
    assert_eq!(status, 200, "{body}");
    let mut granted: Vec<&str> = body["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    granted.sort();
    assert_eq!(granted, ["10.9.0.0/16", "127.0.0.1"]);
    let clients = api.get("/clients");
    assert_eq!(clients.as_array().unwrap().len(), 2, "{clients}");
    let out = cli(
        &station,
        &token,
        &["volume", "revoke", "vm1", "10.9.0.0/16"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(api.get("/volumes/vm1")["clients"], json!(["127.0.0.1"]));
    let events = api.get("/events?kind=allocated");
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    let unit = api.get("/units/unit-a");
    let parts = unit["partitions"].as_array().unwrap();
    assert_eq!(parts[0]["station_volume"], "vm1", "{unit}");

    // A name taken, a bad client: refused with a message.
    let out = cli(
        &station,
        &token,
        &["volume", "create", "vm1", "--size", "1M"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already named"), "{}", stderr(&out));
    let out = cli(
        &station,
        &token,
        &["volume", "create", "vm2", "--size", "12Q"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("12Q"), "{}", stderr(&out));

    // Delete: the partition is gone from the unit too.
    let out = cli(&station, &token, &["volume", "delete", "vm1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let walk = v3_run(&tools, "snmpbulkwalk", &agent, &[VOLUME_NAME_COLUMN]);
    assert!(!stdout(&walk).contains("\"vm1\""), "{}", stdout(&walk));
    let (status, body) = api.send("GET", "/volumes/vm1", None, true);
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    // The empty group can go.
    let (status, body) = api.send("DELETE", "/units/unit-a/groups/1", None, true);
    assert_eq!(status, 200, "{body}");
    assert!(body["raid_groups"].as_array().unwrap().is_empty(), "{body}");
    drop(agent);
}

#[test]
fn a_spoofed_cold_start_adds_nothing_and_a_killed_unit_becomes_unreachable() {
    let Rig {
        dir,
        station: _station,
        trap,
        token: _token,
        api,
        tools,
    } = Rig::start(&["--poll-interval", "1"], Some(200));

    // coldStart with a wrong key: a warning event with its source, no unit.
    let wrong_key = Auth::V3 {
        user: V3_USER,
        auth: "not-the-key-9",
        privacy: V3_PRIV,
    };
    let out = tools.run(
        "snmptrap",
        &wrong_key,
        &["-e", "0x8000000001020399"],
        &format!("udp:{trap}"),
        &["", "1.3.6.1.6.3.1.1.5.1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the refusal as an event", Duration::from_secs(10), || {
        api.get("/events?kind=refused")
            .as_array()
            .is_some_and(|e| !e.is_empty())
    });
    let refused = api.get("/events?kind=refused");
    assert_eq!(refused[0]["severity"], "warning", "{refused}");
    assert!(
        refused[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(api.get("/units").as_array().unwrap().is_empty());

    // A real unit joins, then dies without linkDown.
    let agent = start_unit(&tools, dir.path(), "unit-k", &trap.to_string());
    wait_for("the unit online", Duration::from_secs(20), || {
        unit_state(&api, "unit-k").as_deref() == Some("online")
    });
    agent.kill();
    let took = wait_for(
        "polls to mark the killed unit unreachable",
        Duration::from_secs(20),
        || unit_state(&api, "unit-k").as_deref() == Some("unreachable"),
    );
    eprintln!("SIGKILL → unreachable after {took:?} at a 1 s poll interval");
    let events = api.get("/events?kind=unreachable");
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
}

#[test]
fn manual_admission_keeps_a_unit_pending_until_approved_and_dns_names_are_kept() {
    let Rig {
        dir,
        station: _station,
        trap,
        token: _token,
        api,
        tools,
    } = Rig::start(&["--poll-interval", "30", "--admission", "manual"], None);
    let mut spec = AgentSpec::three_disks(&dir.path().join("m"));
    std::fs::create_dir_all(&spec.dir).unwrap();
    spec.name = "unit-m".into();
    spec.args = vec![
        "--station".into(),
        trap.to_string(),
        "--advertise-host".into(),
        "localhost".into(),
    ];
    let agent = AgentProcess::start(spec, &tools);
    wait_for("the unit pending", Duration::from_secs(20), || {
        unit_state(&api, "unit-m").as_deref() == Some("pending")
    });
    let unit = api.get("/units/unit-m");
    assert_eq!(
        unit["unit"]["snmp_address"],
        format!("localhost:{}", agent.snmp_port),
        "the unit's DNS name is kept: {unit}"
    );
    assert_eq!(
        unit["unit"]["nbd_endpoint"],
        format!("localhost:{}", agent.nbd_port)
    );
    assert_eq!(api.get("/events?kind=pending").as_array().unwrap().len(), 1);
    // Pending: no changes, no allocation.
    let (status, body) = api.send(
        "POST",
        "/units/unit-m/groups",
        Some(json!({"name": "lin", "level": "linear", "disks": [1]})),
        true,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );

    let (status, body) = api.send("POST", "/units/unit-m/approve", None, true);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unit"]["state"], "online", "{body}");
    let v = group_and_volume(
        &api,
        "unit-m",
        json!({"name": "lin", "level": "linear", "disks": [1, 2]}),
        json!({"name": "named", "size_mib": 8, "clients": ["127.0.0.1"], "placement": {"level": "linear"}}),
    );
    assert_eq!(
        v["extents"][0]["nbd_uri"],
        format!("nbd://localhost:{}/named", agent.nbd_port)
    );
    // A second approval is refused: it is not pending any more.
    let (status, _) = api.send("POST", "/units/unit-m/approve", None, true);
    assert_eq!(status, 409);
    drop(agent);
}

#[test]
fn a_volume_bigger_than_any_unit_spans_two_and_attach_serves_it_whole() {
    net_snmp::require_tool("nbdcopy", "libnbd-bin");
    let Rig {
        dir,
        station,
        trap,
        token,
        api,
        tools,
    } = Rig::start(&["--poll-interval", "30"], None);
    let a = start_unit(&tools, dir.path(), "unit-a", &trap.to_string());
    let b = start_unit(&tools, dir.path(), "unit-b", &trap.to_string());
    for unit in ["unit-a", "unit-b"] {
        wait_for("both units online", Duration::from_secs(20), || {
            unit_state(&api, unit).as_deref() == Some("online")
        });
        let (status, body) = api.send(
            "POST",
            &format!("/units/{unit}/groups"),
            Some(json!({"name": "one", "level": "linear", "disks": [1]})),
            true,
        );
        assert_eq!(status, 201, "{body}");
    }
    let free: Vec<i64> = ["unit-a", "unit-b"]
        .iter()
        .map(|u| {
            api.get(&format!("/units/{u}"))["raid_groups"][0]["free_mib"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let size = free[0].max(free[1]) + 16;
    assert!(size < free[0] + free[1]);
    let out = cli(
        &station,
        &token,
        &[
            "volume",
            "create",
            "wide",
            "--size",
            &format!("{size}M"),
            "--client",
            "127.0.0.1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let extents = v["extents"].as_array().unwrap();
    assert_eq!(extents.len(), 2, "{v}");
    assert_ne!(extents[0]["unit_name"], extents[1]["unit_name"], "{v}");
    let first = extents[0]["size_mib"].as_u64().unwrap();
    assert!(
        first < 64,
        "the boundary must fall inside the copied 64 MiB: {v}"
    );

    // dvsan volume attach on a Unix socket; nbdcopy writes 64 MiB of random
    // data across the boundary and reads the volume back.
    let (attach, uri) = attach_on_socket(&station, &token, dir.path(), "wide", &[]);
    let data: Vec<u8> = {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..64 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let input = dir.path().join("in.img");
    std::fs::write(&input, &data).unwrap();
    let mut copy_in = std::process::Command::new("nbdcopy");
    copy_in.arg(&input).arg(&uri);
    let out = run_bounded(copy_in, Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    let output = dir.path().join("out.img");
    let mut copy_out = std::process::Command::new("nbdcopy");
    copy_out.arg(&uri).arg(&output);
    let out = run_bounded(copy_out, Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    let back = std::fs::read(&output).unwrap();
    assert_eq!(back.len() as u64, (size as u64) << 20);
    assert!(
        back[..data.len()] == data[..],
        "the 64 MiB read back differ"
    );
    assert!(
        back[data.len()..].iter().all(|b| *b == 0),
        "the rest reads as zeros"
    );
    stop_attach(attach);
    drop((a, b));
}

#[test]
fn an_allocation_that_fails_half_way_leaves_nothing_behind() {
    let Rig {
        dir,
        station: _station,
        trap,
        token: _token,
        api,
        tools,
    } = Rig::start(&["--poll-interval", "60"], Some(300));
    let a = start_unit(&tools, dir.path(), "unit-a", &trap.to_string());
    let b = start_unit(&tools, dir.path(), "unit-b", &trap.to_string());
    for (unit, disks) in [("unit-a", json!([1, 2])), ("unit-b", json!([1]))] {
        wait_for("the unit online", Duration::from_secs(20), || {
            unit_state(&api, unit).as_deref() == Some("online")
        });
        let (status, body) = api.send(
            "POST",
            &format!("/units/{unit}/groups"),
            Some(json!({"name": "lin", "level": "linear", "disks": disks})),
            true,
        );
        assert_eq!(status, 201, "{body}");
    }
    let free_a = api.get("/units/unit-a")["raid_groups"][0]["free_mib"]
        .as_i64()
        .unwrap();
    // unit-b hangs (SIGSTOP): still online in the inventory, but its SET
    // will time out after unit-a's extent was made.
    let pid = b.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (status, body) = api.send(
        "POST",
        "/volumes",
        Some(json!({"name": "half", "size_mib": free_a + 8, "clients": ["127.0.0.1"]})),
        true,
    );
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("unit_error")),
        "{body}"
    );
    // Nothing recorded, and unit-a's partition was removed again.
    assert_eq!(api.get("/volumes"), json!([]));
    let walk = v3_run(&tools, "snmpbulkwalk", &a, &[VOLUME_NAME_COLUMN]);
    assert!(walk.status.success(), "{}", stderr(&walk));
    assert!(!stdout(&walk).contains("half"), "{}", stdout(&walk));
    assert!(
        api.get("/events?kind=orphan")
            .as_array()
            .unwrap()
            .is_empty()
    );
    // With unit-b back, the same request succeeds across both.
    let (status, body) = api.send(
        "POST",
        "/volumes",
        Some(json!({"name": "half", "size_mib": free_a + 8, "clients": ["127.0.0.1"]})),
        true,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["extents"].as_array().unwrap().len(), 2, "{body}");
    drop((a, b));
}

#[test]
fn a_unit_requiring_tls_hands_out_nbds_and_attach_reaches_it_over_tls() {
    net_snmp::require_tool("qemu-io", "qemu-utils");
    let pki = pki::Pki::new();
    let Rig {
        dir,
        station,
        trap,
        token,
        api,
        tools,
    } = Rig::start(&["--poll-interval", "30"], None);
    let tls_flags = [
        "--nbd-tls-cert".into(),
        pki.p("server-cert.pem"),
        "--nbd-tls-key".into(),
        pki.p("server-key.pem"),
    ];
    let unit = start_unit_with(
        &tools,
        dir.path(),
        "unit-t",
        &trap.to_string(),
        3,
        &tls_flags,
    );
    wait_for("the unit online", Duration::from_secs(20), || {
        unit_state(&api, "unit-t").as_deref() == Some("online")
    });
    // The unit says so in its MIB (read by net-snmp) and the station learned it.
    let out = v3_run(
        &tools,
        "snmpget",
        &unit,
        &["1.3.6.1.4.1.8072.9999.9999.1.1.1.10.0"],
    );
    let text = stdout(&out);
    assert!(
        text.contains("required(3)") || text.contains("INTEGER: 3"),
        "{text}{}",
        stderr(&out)
    );
    assert_eq!(api.get("/units/unit-t")["unit"]["nbd_tls"], "required");

    let v = group_and_volume(
        &api,
        "unit-t",
        json!({"name": "lin", "level": "linear", "disks": [1]}),
        json!({"name": "sealed", "size_mib": 8, "clients": ["127.0.0.1"]}),
    );
    let extent = &v["extents"][0];
    assert_eq!(extent["nbd_tls"], "required", "{v}");
    let uri = extent["nbd_uri"].as_str().unwrap();
    assert!(uri.starts_with("nbds://"), "{uri}");

    // Without a CA: one line saying what is missing.
    let out = cli(&station, &token, &["volume", "attach", "sealed"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--tls-ca") && err.trim().lines().count() == 1,
        "{err}"
    );

    // With the CA: served on a local socket, written through it by
    // qemu-io, and the bytes read back from the unit itself over TLS.
    let ca = pki.p("ca-cert.pem");
    let (attach, local) =
        attach_on_socket(&station, &token, dir.path(), "sealed", &["--tls-ca", &ca]);
    qemu_io(&local, &["write -P 0xcd 1M 2M"]);
    let creds = pki.client_dir("trusting", "ca", false);
    qemu_io_opening(
        &[
            "--object",
            &format!("tls-creds-x509,id=tls0,dir={creds},endpoint=client"),
            "--image-opts",
            &format!(
                "driver=nbd,host=localhost,port={},export={},tls-creds=tls0",
                unit.nbd_port,
                extent["export_name"].as_str().unwrap()
            ),
        ],
        &["read -P 0xcd 1M 2M", "read -P 0 0 1M"],
    );
    stop_attach(attach);
    drop(unit);
}

#[test]
fn a_lost_member_is_replaced_through_the_api_and_rebuilt() {
    net_snmp::require_tool("qemu-io", "qemu-utils");
    let Rig {
        dir,
        station,
        trap,
        token,
        api,
        tools,
    } = Rig::start(&["--poll-interval", "1"], None);
    let agent = start_unit_with(&tools, dir.path(), "unit-r", &trap.to_string(), 4, &[]);
    wait_for("the unit online", Duration::from_secs(20), || {
        unit_state(&api, "unit-r").as_deref() == Some("online")
    });
    let v = group_and_volume(
        &api,
        "unit-r",
        json!({"name": "r5", "level": "raid5", "disks": [1, 2, 3]}),
        json!({"name": "vm", "size_mib": 16, "clients": ["127.0.0.1"]}),
    );
    let uri = v["extents"][0]["nbd_uri"].as_str().unwrap().to_string();
    qemu_io(&uri, &["write -P 0x5c 0 8M"]);

    let replace = |slot: u32, disk: u32| {
        api.send(
            "POST",
            &format!("/units/unit-r/groups/1/members/{slot}"),
            Some(json!({ "disk": disk })),
            true,
        )
    };
    // A member in service is not replaced.
    let (status, body) = replace(1, 4);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("in service"),
        "{body}"
    );

    // Disk 2 is cut short under the unit; the next read finds it out and
    // is served from parity.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("unit-r").join("disk2.img"))
        .unwrap()
        .set_len(0)
        .unwrap();
    qemu_io(&uri, &["read -P 0x5c 0 8M"]);
    wait_for(
        "the station to see group 1 degraded",
        Duration::from_secs(30),
        || group_one(&api, "unit-r")["state"] == "degraded",
    );
    // What putting member 2's own disk back would copy, per slot, as the
    // unit reports it (dvsanRaidMemberReaddSize): failed by I/O errors,
    // its whole share.
    let readd = group_one(&api, "unit-r")["readd_mib"]
        .as_str()
        .unwrap()
        .to_string();
    let sizes: Vec<u32> = readd.split(',').map(|m| m.parse().unwrap()).collect();
    assert!(
        sizes.len() == 3 && sizes[0] == 0 && sizes[1] > 0 && sizes[2] == 0,
        "{readd}"
    );
    // `dvsan unit show` names the lost member, what its own disk back
    // would rebuild, and the command that replaces it.
    let out = cli(&station, &token, &["unit", "show", "unit-r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lost = format!(
        "group 1 member 2 lost (disk 2, failed; its own disk back rebuilds {} MiB): \
         dvsan unit replace-member unit-r 1 2 --disk N",
        sizes[1]
    );
    assert!(stdout(&out).contains(&lost), "{}", stdout(&out));

    // Refusals say why and change nothing.
    let (status, body) = replace(7, 4);
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );
    let (status, body) = replace(2, 9);
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = replace(2, 3);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = api.send(
        "POST",
        "/units/unit-r/groups/1/members/2",
        Some(json!({ "disk": "four" })),
        true,
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(group_one(&api, "unit-r")["members"], "1,2,3");

    // A bad argument: one line, exit 2.
    let out = cli(
        &station,
        &token,
        &[
            "unit",
            "replace-member",
            "unit-r",
            "1",
            "two",
            "--disk",
            "4",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));

    // Disk 4 takes the slot, by `dvsan unit replace-member`; the unit
    // rebuilds it behind.
    let out = cli(
        &station,
        &token,
        &[
            "unit",
            "replace-member",
            "unit-r",
            "1",
            "2",
            "--disk",
            "4",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let body: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(body["raid_groups"][0]["members"], "1,4,3", "{body}");
    // The same again: the member is in service now.
    let out = cli(
        &station,
        &token,
        &["unit", "replace-member", "unit-r", "1", "2", "--disk", "4"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in service"), "{}", stderr(&out));
    wait_for("the rebuild to end", Duration::from_secs(90), || {
        group_one(&api, "unit-r")["state"] == "optimal"
    });
    let out = v3_run(
        &tools,
        "snmpget",
        &agent,
        &["-Oqv", "1.3.6.1.4.1.8072.9999.9999.1.1.6.1.2.1.2"],
    );
    assert_eq!(stdout(&out).trim(), "4", "{}", stderr(&out));
    qemu_io(&uri, &["read -P 0x5c 0 8M", "read -P 0 8M 8M"]);
    let out = cli(&station, &token, &["unit", "show", "unit-r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("lost"), "{}", stdout(&out));
    let events = api.get("/events?kind=member-replaced");
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("disk 4 in place of disk 2"),
        "{events:?}"
    );
}
