//! dvsan's manager against net-snmp's snmpd: GET, whole-tree GETBULK walks
//! over v2c and v3 authPriv, SET, and how a wrong key is reported.

mod support;

use std::time::Duration;

use dvsan_snmp::manager::{Manager, ManagerConfig};
use dvsan_snmp::{Credentials, Oid, SnmpError, UsmUser, Value, VarBind};
use support::{Auth, NetSnmp, stdout, v3};

fn user() -> Credentials {
    Credentials::V3(
        UsmUser::sha256_aes(support::V3_USER, support::V3_AUTH, support::V3_PRIV).unwrap(),
    )
}

async fn manager(reps: u32) -> Manager {
    manager_with(reps, dvsan_snmp::manager::MAX_UDP_MESSAGE).await
}

async fn manager_with(reps: u32, receive_capacity: usize) -> Manager {
    Manager::bind(ManagerConfig {
        receive_capacity,
        bind: "127.0.0.1:0".parse().unwrap(),
        timeout: Duration::from_millis(700),
        retries: 1,
        max_repetitions: reps,
        ..ManagerConfig::default()
    })
    .await
    .unwrap()
}

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_whole_tree_walk_v2c_and_v3_match_snmpbulkwalk() {
    let tools = NetSnmp::new();
    let snmpd = tools.snmpd();
    let m = manager(50).await;
    for (creds, auth) in [
        (Credentials::v2c("public"), Auth::V2c("public")),
        (user(), v3()),
    ] {
        let s = m.session(snmpd.addr(), &creds).await.unwrap();
        let got = s
            .get(&[oid("1.3.6.1.2.1.1.1.0"), oid("1.3.6.1.2.1.1.2.0")])
            .await
            .unwrap();
        let out = tools.run(
            "snmpget",
            &auth,
            &["-Ov", "-Oq"],
            &format!("udp:{}", snmpd.addr()),
            &["1.3.6.1.2.1.1.1.0"],
        );
        assert_eq!(
            got[0].value.as_text().unwrap(),
            stdout(&out).trim().trim_matches('"'),
            "sysDescr"
        );
        assert!(matches!(got[1].value, Value::ObjectIdentifier(_)));

        // The whole tree: every OID snmpbulkwalk sees in the stable
        // groups, in the same order, with the same values.
        let walk = s.walk(&oid("1.3.6.1")).await.unwrap();
        assert!(walk.len() > 1000, "only {} bindings", walk.len());
        assert!(
            walk.windows(2).all(|w| w[0].oid < w[1].oid),
            "walk not increasing"
        );
        for stable in ["1.3.6.1.2.1.1.9", "1.3.6.1.6.3.16"] {
            let ours: Vec<String> = walk
                .iter()
                .filter(|vb| vb.oid.to_string().starts_with(&format!("{stable}.")))
                .map(|vb| format!("{} {}", vb.oid, text(&vb.value)))
                .collect();
            let out = tools.run(
                "snmpbulkwalk",
                &auth,
                &["-On", "-Oq", "-Ot", "-Oe", "-Cr50"],
                &format!("udp:{}", snmpd.addr()),
                &[stable],
            );
            let theirs: Vec<String> = stdout(&out)
                .lines()
                .filter(|l| !l.contains("No more variables"))
                .map(|l| l.trim_start_matches('.').to_string())
                .collect();
            assert!(!ours.is_empty(), "{stable} empty");
            assert_eq!(ours, theirs, "subtree {stable}");
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::OctetString(_) => match v.as_text() {
            Some(t) if t.chars().all(|c| !c.is_control()) => format!("\"{t}\""),
            _ => format!("{v}"),
        },
        Value::ObjectIdentifier(o) => format!(".{o}"),
        Value::Integer(i) => i.to_string(),
        Value::TimeTicks(t) | Value::Gauge32(t) | Value::Counter32(t) => t.to_string(),
        other => format!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_walk_halves_repetitions_when_the_answer_does_not_fit() {
    let tools = NetSnmp::new();
    let snmpd = tools.snmpd();
    // dvsan's manager advertises 65,507 octets: 50 repetitions fit.
    let m = manager(50).await;
    let s = m.session(snmpd.addr(), &user()).await.unwrap();
    let full = s.walk_report(&oid("1.3.6.1")).await.unwrap();
    assert_eq!(full.max_repetitions, 50);
    // Advertising the engine's default 1,472 octets, snmpd answers a v3
    // GETBULK of 50 with an error; the walk halves and still completes.
    let m = manager_with(50, 1472).await;
    let s = m.session(snmpd.addr(), &user()).await.unwrap();
    let small = s.walk_report(&oid("1.3.6.1.2.1")).await.unwrap();
    assert!(
        small.bindings.len() > 500,
        "{} bindings",
        small.bindings.len()
    );
    assert!(
        small.max_repetitions < 50,
        "never reduced (max-repetitions {})",
        small.max_repetitions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_writes_and_the_value_reads_back() {
    let tools = NetSnmp::new();
    let snmpd = tools.snmpd();
    let m = manager(50).await;
    for creds in [Credentials::v2c("private"), user()] {
        let s = m.session(snmpd.addr(), &creds).await.unwrap();
        let location = format!("row {}", if creds.is_v3() { "v3" } else { "v2c" });
        s.set(&[VarBind::new(
            oid("1.3.6.1.2.1.1.6.0"),
            Value::text(location.clone()),
        )])
        .await
        .unwrap();
        let v = s.get_one(&oid("1.3.6.1.2.1.1.6.0")).await.unwrap().unwrap();
        assert_eq!(v.as_text(), Some(location.as_str()));
        let err = s
            .set(&[VarBind::new(oid("1.3.6.1.2.1.1.6.0"), Value::Integer(3))])
            .await
            .unwrap_err();
        assert_eq!(
            err.status(),
            Some(dvsan_snmp::ErrorStatus::WrongType),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_v3_key_is_reported_as_credentials_not_a_bare_timeout() {
    let tools = NetSnmp::new();
    let snmpd = tools.snmpd();
    let m = manager(50).await;
    let wrong = Credentials::V3(
        UsmUser::sha256_aes(support::V3_USER, "not-the-key-1", support::V3_PRIV).unwrap(),
    );
    let s = m.session(snmpd.addr(), &wrong).await.unwrap();
    let err = s.get(&[oid("1.3.6.1.2.1.1.1.0")]).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SnmpError::Timeout { .. }), "{err:?}");
    assert!(text.contains("timeout (or wrong credentials)"), "{text}");
    assert!(text.contains("exists") && text.contains("key"), "{text}");
    let unknown =
        Credentials::V3(UsmUser::sha256_aes("nobody", support::V3_AUTH, support::V3_PRIV).unwrap());
    let s = m.session(snmpd.addr(), &unknown).await.unwrap();
    let err = s.get(&[oid("1.3.6.1.2.1.1.1.0")]).await.unwrap_err();
    assert!(
        err.to_string().contains("usmStatsUnknownUserNames"),
        "{err}"
    );
}
