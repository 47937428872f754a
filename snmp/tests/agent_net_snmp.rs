//! The agent built with dvsan-snmp, asked by net-snmp's own tools: snmpget,
//! snmpgetnext, snmpbulkwalk and snmpset, over SNMPv2c and SNMPv3 authPriv
//! (SHA-256 + AES), with a RowStatus table and every RowStatus error case.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use dvsan_snmp::row_status::RowStatusTable;
use dvsan_snmp::system_group::{SystemGroup, SystemInfo};
use dvsan_snmp::{AgentConfig, EngineIdentity, MibModule, Oid, SnmpAgent, UsmUser, Value};
use support::one_way::{self, OneWay};
use support::row_table::{self, TestTable};
use support::{Auth, NetSnmp, stderr, stdout, v3};

struct TestAgent {
    addr: SocketAddr,
    system: Arc<SystemGroup>,
    table: Arc<TestTable>,
    one_way: OneWay,
    modules: Vec<Arc<MibModule>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestAgent {
    fn start(table: TestTable) -> TestAgent {
        let system = SystemGroup::new(SystemInfo {
            descr: "dvsan test agent".into(),
            object_id: "1.3.6.1.4.1.8072.9999.9999.2.1".parse().unwrap(),
            contact: "storage-admins@example.org".into(),
            name: "unit-a.example.org".into(),
            location: "rack 4".into(),
            services: 72,
        });
        let table = Arc::new(table);
        let one_way = OneWay::default();
        let modules = vec![
            Arc::new(system.module()),
            Arc::new(
                MibModule::new("TEST-MIB", &row_table::ENTRY[..10])
                    .with(RowStatusTable::new(row_table::ENTRY, Arc::clone(&table)))
                    .with(one_way.subtree()),
            ),
        ];
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mods = modules.clone();
        let sys = Arc::clone(&system);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let config = AgentConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    engine: EngineIdentity::ephemeral().unwrap(),
                    users: vec![
                        UsmUser::sha256_aes(support::V3_USER, support::V3_AUTH, support::V3_PRIV)
                            .unwrap(),
                    ],
                    read_community: Some("public".into()),
                    write_community: Some("private".into()),
                };
                let agent = SnmpAgent::bind(config, mods).await.unwrap();
                sys.attach(&agent);
                addr_tx.send(agent.local_addr()).unwrap();
                agent
                    .run(async move {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().expect("agent started");
        TestAgent {
            addr,
            system,
            table,
            one_way,
            modules,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn peer(&self) -> String {
        format!("udp:{}", self.addr)
    }

    /// Every instance the modules serve, in order, as `(oid, value)`.
    fn expected_walk(&self) -> Vec<(Oid, Value)> {
        let mut out = Vec::new();
        for module in &self.modules {
            let mut at: Vec<u32> = module.root().arcs().to_vec();
            while let Some((oid, value)) = module.next_value(&at) {
                at = oid.arcs().to_vec();
                out.push((oid, value));
            }
        }
        out
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// net-snmp's `-On -Oe -Ot -OQ`-style rendering of a value, so that
/// snmpbulkwalk's lines can be compared with what the modules hold.
fn net_snmp_text(value: &Value) -> String {
    match value {
        Value::Integer(v) => v.to_string(),
        Value::OctetString(_) => format!("\"{}\"", value.as_text().unwrap_or_default()),
        Value::ObjectIdentifier(oid) => format!(".{oid}"),
        Value::Gauge32(v) | Value::Counter32(v) | Value::TimeTicks(v) => v.to_string(),
        Value::Counter64(v) => v.to_string(),
        other => panic!("no rendering for {other:?}"),
    }
}

fn parse_walk(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (oid, value) = l
                .split_once(" = ")
                .unwrap_or_else(|| panic!("odd line {l:?}"));
            (oid.trim_start_matches('.').to_string(), value.to_string())
        })
        .collect()
}

const WALK_OPTS: &[&str] = &["-On", "-Oe", "-Ot", "-OQ"];

fn check_walk(agent: &TestAgent, tools: &NetSnmp, auth: &Auth) {
    let expected = agent.expected_walk();
    assert!(
        expected.len() > 30,
        "the modules serve {} instances",
        expected.len()
    );
    for reps in ["-Cr50", "-Cr3"] {
        for root in ["1.3.6.1.2.1", "1.3.6.1.4.1.8072.9999.9999"] {
            let mut opts = WALK_OPTS.to_vec();
            opts.push(reps);
            let out = tools.run("snmpbulkwalk", auth, &opts, &agent.peer(), &[root]);
            assert!(
                out.status.success(),
                "snmpbulkwalk failed: {}",
                stderr(&out)
            );
            let got = parse_walk(&stdout(&out));
            let want: Vec<(String, String)> = expected
                .iter()
                .filter(|(oid, _)| oid.to_string().starts_with(&format!("{root}.")))
                .map(|(oid, v)| (oid.to_string(), net_snmp_text(v)))
                .collect();
            // sysUpTime moves between our listing and the walk.
            let strip = |v: &Vec<(String, String)>| -> Vec<(String, String)> {
                v.iter()
                    .map(|(o, val)| {
                        if o == "1.3.6.1.2.1.1.3.0" {
                            (o.clone(), "<uptime>".into())
                        } else {
                            (o.clone(), val.clone())
                        }
                    })
                    .collect()
            };
            assert_eq!(strip(&got), strip(&want), "walk of {root} with {reps}");
        }
    }
}

#[test]
fn snmpget_and_getnext_read_the_system_group_v2c_and_v3() {
    let agent = TestAgent::start(TestTable::with_rows(1_000_000, 3));
    let tools = NetSnmp::new();
    for auth in [Auth::V2c("public"), v3()] {
        let out = tools.run(
            "snmpget",
            &auth,
            &["-On", "-Oe", "-Ot", "-OQ"],
            &agent.peer(),
            &[
                "1.3.6.1.2.1.1.1.0",
                "1.3.6.1.2.1.1.5.0",
                "1.3.6.1.2.1.1.2.0",
                "1.3.6.1.2.1.1.7.0",
            ],
        );
        assert!(out.status.success(), "snmpget: {}", stderr(&out));
        let got = parse_walk(&stdout(&out));
        assert_eq!(
            got,
            vec![
                (
                    "1.3.6.1.2.1.1.1.0".to_string(),
                    "\"dvsan test agent\"".to_string()
                ),
                ("1.3.6.1.2.1.1.5.0".into(), "\"unit-a.example.org\"".into()),
                (
                    "1.3.6.1.2.1.1.2.0".into(),
                    ".1.3.6.1.4.1.8072.9999.9999.2.1".into()
                ),
                ("1.3.6.1.2.1.1.7.0".into(), "72".into()),
            ]
        );
        let out = tools.run(
            "snmpgetnext",
            &auth,
            WALK_OPTS,
            &agent.peer(),
            &["1.3.6.1.2.1.1.4"],
        );
        assert_eq!(
            parse_walk(&stdout(&out)),
            vec![(
                "1.3.6.1.2.1.1.4.0".to_string(),
                "\"storage-admins@example.org\"".to_string()
            )]
        );
        // Past the end of a table column: the next column's first row.
        let col2_last = format!("{}.2.3", oid_text(row_table::ENTRY));
        let out = tools.run(
            "snmpgetnext",
            &auth,
            WALK_OPTS,
            &agent.peer(),
            &[&col2_last],
        );
        assert_eq!(
            parse_walk(&stdout(&out)),
            vec![(
                format!("{}.3.1", oid_text(row_table::ENTRY)),
                "1".to_string()
            )]
        );
        // An instance that is not there.
        let out = tools.run(
            "snmpget",
            &auth,
            WALK_OPTS,
            &agent.peer(),
            &["1.3.6.1.2.1.1.1.1"],
        );
        assert!(
            stdout(&out).contains("No Such Instance"),
            "{}",
            stdout(&out)
        );
    }
}

fn oid_text(arcs: &[u32]) -> String {
    Oid::from_arcs(arcs).to_string()
}

#[test]
fn snmpbulkwalk_returns_every_instance_value_for_value() {
    let agent = TestAgent::start(TestTable::with_rows(1_000_000, 40));
    let tools = NetSnmp::new();
    check_walk(&agent, &tools, &Auth::V2c("public"));
    check_walk(&agent, &tools, &v3());
}

#[test]
fn snmpset_writes_system_scalars_and_the_read_only_community_cannot() {
    let agent = TestAgent::start(TestTable::new(1_000));
    let tools = NetSnmp::new();
    let out = tools.run(
        "snmpset",
        &v3(),
        &[],
        &agent.peer(),
        &["1.3.6.1.2.1.1.6.0", "s", "rack 9, row B"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(agent.system.info().location, "rack 9, row B");
    let out = tools.run(
        "snmpset",
        &Auth::V2c("private"),
        &[],
        &agent.peer(),
        &["1.3.6.1.2.1.1.4.0", "s", "noc@example.org"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(agent.system.info().contact, "noc@example.org");
    let out = tools.run(
        "snmpset",
        &Auth::V2c("public"),
        &[],
        &agent.peer(),
        &["1.3.6.1.2.1.1.4.0", "s", "intruder"],
    );
    assert!(!out.status.success());
    // RFC 3415: the monitor group has no write view, so VACM refuses.
    assert!(
        stderr(&out).contains("authorizationError"),
        "{}",
        stderr(&out)
    );
    assert_eq!(agent.system.info().contact, "noc@example.org");
    // Read-only objects and wrong types.
    let out = tools.run(
        "snmpset",
        &v3(),
        &[],
        &agent.peer(),
        &["1.3.6.1.2.1.1.1.0", "s", "x"],
    );
    assert!(stderr(&out).contains("notWritable"), "{}", stderr(&out));
    let out = tools.run(
        "snmpset",
        &v3(),
        &[],
        &agent.peer(),
        &["1.3.6.1.2.1.1.6.0", "i", "5"],
    );
    assert!(stderr(&out).contains("wrongType"), "{}", stderr(&out));
    assert_eq!(agent.system.info().location, "rack 9, row B");
}

fn col(column: u32, index: u32) -> String {
    format!("{}.{column}.{index}", oid_text(row_table::ENTRY))
}

fn set(tools: &NetSnmp, agent: &TestAgent, auth: &Auth, args: &[String]) -> (bool, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tools.run("snmpset", auth, &[], &agent.peer(), &args);
    (out.status.success(), stderr(&out))
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn rowstatus_create_and_destroy_in_any_binding_order() {
    let agent = TestAgent::start(TestTable::new(1_000));
    let tools = NetSnmp::new();
    for auth in [v3(), Auth::V2c("private")] {
        // RowStatus last.
        let (ok, err) = set(
            &tools,
            &agent,
            &auth,
            &[
                col(2, 7),
                s("s"),
                s("alpha"),
                col(3, 7),
                s("u"),
                s("100"),
                col(6, 7),
                s("i"),
                s("4"),
            ],
        );
        assert!(ok, "{err}");
        // RowStatus first.
        let (ok, err) = set(
            &tools,
            &agent,
            &auth,
            &[
                col(6, 8),
                s("i"),
                s("4"),
                col(2, 8),
                s("s"),
                s("beta"),
                col(3, 8),
                s("u"),
                s("50"),
            ],
        );
        assert!(ok, "{err}");
        {
            let rows = agent.table.rows.read().unwrap();
            assert_eq!(rows[&7].name.as_deref(), Some("alpha"));
            assert_eq!(rows[&8].size, Some(50));
            assert_eq!(rows[&8].state, dvsan_snmp::row_status::RowState::Active);
        }
        let out = tools.run(
            "snmpget",
            &auth,
            WALK_OPTS,
            &agent.peer(),
            &[&col(6, 7), &col(2, 8)],
        );
        assert_eq!(
            parse_walk(&stdout(&out)),
            vec![(col(6, 7), s("1")), (col(2, 8), s("\"beta\""))]
        );
        for i in [7, 8] {
            let (ok, err) = set(&tools, &agent, &auth, &[col(6, i), s("i"), s("6")]);
            assert!(ok, "{err}");
        }
        assert!(agent.table.rows.read().unwrap().is_empty());
    }
}

#[test]
fn rowstatus_createandwait_then_active() {
    let agent = TestAgent::start(TestTable::new(1_000));
    let tools = NetSnmp::new();
    let (ok, err) = set(&tools, &agent, &v3(), &[col(6, 3), s("i"), s("5")]);
    assert!(ok, "{err}");
    assert_eq!(
        agent.table.rows.read().unwrap()[&3].state,
        dvsan_snmp::row_status::RowState::NotReady
    );
    // active while a required column is missing
    let (ok, err) = set(&tools, &agent, &v3(), &[col(6, 3), s("i"), s("1")]);
    assert!(!ok && err.contains("inconsistentValue"), "{err}");
    let (ok, err) = set(
        &tools,
        &agent,
        &v3(),
        &[col(2, 3), s("s"), s("gamma"), col(3, 3), s("u"), s("10")],
    );
    assert!(ok, "{err}");
    let (ok, err) = set(&tools, &agent, &v3(), &[col(6, 3), s("i"), s("1")]);
    assert!(ok, "{err}");
    let row = agent.table.rows.read().unwrap()[&3].clone();
    assert_eq!(row.state, dvsan_snmp::row_status::RowState::Active);
    // A column writable only while inactive.
    let (ok, err) = set(&tools, &agent, &v3(), &[col(3, 3), s("u"), s("20")]);
    assert!(!ok && err.contains("inconsistentValue"), "{err}");
    let (ok, err) = set(
        &tools,
        &agent,
        &v3(),
        &[col(6, 3), s("i"), s("2"), col(3, 3), s("u"), s("20")],
    );
    assert!(ok, "{err}");
    assert_eq!(agent.table.rows.read().unwrap()[&3].size, Some(20));
}

#[test]
fn rowstatus_errors_are_answered_per_rfc_2579_and_change_nothing() {
    let agent = TestAgent::start(TestTable::with_rows(1_000, 2));
    let tools = NetSnmp::new();
    let before = agent.table.rows.read().unwrap().clone();
    let cases: Vec<(Vec<String>, &str)> = vec![
        // createAndGo without the required size column
        (
            vec![col(2, 9), s("s"), s("delta"), col(6, 9), s("i"), s("4")],
            "inconsistentValue",
        ),
        (vec![col(6, 9), s("i"), s("4")], "inconsistentValue"),
        // a column of a row that does not exist
        (vec![col(2, 9), s("s"), s("delta")], "noCreation"),
        // RowStatus values that may not be written, or bad transitions
        (vec![col(6, 1), s("i"), s("3")], "wrongValue"),
        (vec![col(6, 1), s("i"), s("7")], "wrongValue"),
        (vec![col(6, 1), s("i"), s("4")], "inconsistentValue"),
        (vec![col(6, 9), s("i"), s("1")], "inconsistentValue"),
        // syntax
        (
            vec![
                col(2, 9),
                s("s"),
                s(""),
                col(3, 9),
                s("u"),
                s("1"),
                col(6, 9),
                s("i"),
                s("4"),
            ],
            "wrongLength",
        ),
        (
            vec![
                col(2, 9),
                s("s"),
                s("x"),
                col(3, 9),
                s("i"),
                s("1"),
                col(6, 9),
                s("i"),
                s("4"),
            ],
            "wrongType",
        ),
        (vec![col(4, 1), s("i"), s("9")], "wrongValue"),
        (vec![col(5, 1), s("u"), s("1")], "notWritable"),
        // the application's own checks: space and unique names
        (
            vec![
                col(2, 9),
                s("s"),
                s("big"),
                col(3, 9),
                s("u"),
                s("5000"),
                col(6, 9),
                s("i"),
                s("4"),
            ],
            "resourceUnavailable",
        ),
        (
            vec![
                col(2, 9),
                s("s"),
                s("row1"),
                col(3, 9),
                s("u"),
                s("1"),
                col(6, 9),
                s("i"),
                s("4"),
            ],
            "inconsistentValue",
        ),
        // a good row and a bad one in one request: neither is applied
        (
            vec![
                col(2, 10),
                s("s"),
                s("ok"),
                col(3, 10),
                s("u"),
                s("1"),
                col(6, 10),
                s("i"),
                s("4"),
                col(6, 11),
                s("i"),
                s("4"),
            ],
            "inconsistentValue",
        ),
    ];
    for (args, want) in cases {
        for auth in [v3(), Auth::V2c("private")] {
            let (ok, err) = set(&tools, &agent, &auth, &args);
            assert!(!ok, "{args:?} succeeded");
            assert!(err.contains(want), "{args:?}: wanted {want}, got {err}");
            assert_eq!(
                *agent.table.rows.read().unwrap(),
                before,
                "{args:?} changed rows"
            );
        }
    }
}

#[test]
fn a_set_commits_at_once_and_long_work_reports_progress_through_the_mib() {
    let gate = Arc::new(support::row_table::Gate::default());
    let mut table = TestTable::new(1_000);
    table.background = Some(Arc::clone(&gate));
    let agent = TestAgent::start(table);
    let tools = NetSnmp::new();
    // The SET is answered while the row's background work is held at the
    // gate: the commit did not wait for it.
    let (ok, err) = set(
        &tools,
        &agent,
        &v3(),
        &[
            col(2, 4),
            s("s"),
            s("rebuilding"),
            col(3, 4),
            s("u"),
            s("10"),
            col(6, 4),
            s("i"),
            s("4"),
        ],
    );
    assert!(ok, "{err}");
    let progress = |tools: &NetSnmp| {
        let out = tools.run(
            "snmpget",
            &v3(),
            WALK_OPTS,
            &agent.peer(),
            &[&col(row_table::COL_PROGRESS, 4)],
        );
        parse_walk(&stdout(&out))[0].1.parse::<u32>().unwrap()
    };
    assert_eq!(progress(&tools), 0);
    // Other requests are served meanwhile.
    let (ok, err) = set(&tools, &agent, &v3(), &[col(4, 4), s("i"), s("2")]);
    assert!(ok, "{err}");
    gate.open();
    let mut last = 0;
    for _ in 0..200 {
        last = progress(&tools);
        if last == 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(last, 100, "progress never reached 100");
}

#[test]
fn a_change_that_cannot_be_undone_is_made_only_once_the_rest_of_its_set_is() {
    use std::sync::atomic::Ordering;
    let agent = TestAgent::start(TestTable::new(1_000));
    let tools = NetSnmp::new();
    let one_way = |value: &str| vec![format!("{}.1.0", oid_text(one_way::BASE)), s("i"), s(value)];
    let row = |index: u32, name: &str| {
        vec![
            col(2, index),
            s("s"),
            s(name),
            col(3, index),
            s("u"),
            s("1"),
            col(6, index),
            s("i"),
            s("4"),
        ]
    };
    // The one-way change comes first in the request, the row whose commit
    // fails after it: the row's failure is answered (commitFailed, not
    // undoFailed) and the one-way change was never made.
    for auth in [v3(), Auth::V2c("private")] {
        let args = [one_way("7"), row(5, row_table::COMMIT_FAILS)].concat();
        let (ok, err) = set(&tools, &agent, &auth, &args);
        assert!(!ok, "a failing commit succeeded");
        assert!(
            err.contains("commitFailed"),
            "wanted commitFailed, got {err}"
        );
        assert_eq!(agent.one_way.commits.load(Ordering::SeqCst), 0);
        assert_eq!(agent.one_way.value.load(Ordering::SeqCst), 0);
        assert!(agent.table.rows.read().unwrap().is_empty(), "a row stayed");
    }
    // Without the failure both are made, whatever the order.
    let args = [one_way("7"), row(5, "fine")].concat();
    let (ok, err) = set(&tools, &agent, &v3(), &args);
    assert!(ok, "{err}");
    assert_eq!(agent.one_way.value.load(Ordering::SeqCst), 7);
    let args = [row(6, "also-fine"), one_way("8")].concat();
    let (ok, err) = set(&tools, &agent, &v3(), &args);
    assert!(ok, "{err}");
    assert_eq!(agent.one_way.value.load(Ordering::SeqCst), 8);
    assert_eq!(agent.one_way.commits.load(Ordering::SeqCst), 2);
    assert_eq!(agent.table.rows.read().unwrap().len(), 2);
}

#[test]
fn if_mib_lists_this_machines_interfaces() {
    let interfaces = dvsan_snmp::if_mib::Interfaces::new("/sys/class/net");
    let handle = SnmpAgent::spawn(
        AgentConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            engine: EngineIdentity::ephemeral().unwrap(),
            users: vec![],
            read_community: Some("public".into()),
            write_community: None,
        },
        vec![Arc::new(interfaces.module())],
    )
    .unwrap();
    let peer = format!("udp:{}", handle.agent().local_addr());
    let tools = NetSnmp::new();
    let out = tools.run(
        "snmpbulkwalk",
        &Auth::V2c("public"),
        WALK_OPTS,
        &peer,
        &["1.3.6.1.2.1.2.2.1.2"],
    );
    let got: Vec<String> = parse_walk(&stdout(&out))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut want: Vec<(u32, String)> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let index = std::fs::read_to_string(e.path().join("ifindex"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            (index, format!("\"{}\"", e.file_name().to_string_lossy()))
        })
        .collect();
    want.sort();
    assert_eq!(got, want.into_iter().map(|(_, n)| n).collect::<Vec<_>>());
    let out = tools.run(
        "snmpget",
        &Auth::V2c("public"),
        WALK_OPTS,
        &peer,
        &["1.3.6.1.2.1.2.1.0"],
    );
    assert_eq!(parse_walk(&stdout(&out))[0].1, got.len().to_string());
    // A read-only community cannot write, and a missing write community
    // means no v2c SET at all.
    let out = tools.run(
        "snmpset",
        &Auth::V2c("public"),
        &[],
        &peer,
        &["1.3.6.1.2.1.2.2.1.7.1", "i", "2"],
    );
    assert!(!out.status.success());
    handle.stop();
}

#[test]
fn a_stopped_agent_releases_its_port() {
    let system = SystemGroup::new(SystemInfo {
        descr: "d".into(),
        object_id: "1.3.6.1.4.1.8072.9999.9999.2.1".parse().unwrap(),
        contact: "".into(),
        name: "n".into(),
        location: "".into(),
        services: 72,
    });
    let handle = SnmpAgent::spawn(
        AgentConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            engine: EngineIdentity::ephemeral().unwrap(),
            users: vec![],
            read_community: Some("public".into()),
            write_community: None,
        },
        vec![Arc::new(system.module())],
    )
    .unwrap();
    // The system group reads the engine's counters; it must not keep the
    // agent (and its socket) alive.
    system.attach(handle.agent());
    let addr = handle.agent().local_addr();
    handle.stop();
    std::net::UdpSocket::bind(addr).expect("the port is free again");
    drop(system);
}
