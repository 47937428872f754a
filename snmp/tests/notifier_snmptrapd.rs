//! dvsan's notifier into net-snmp's snmptrapd: v2c trap, v2c inform and v3
//! inform (and v3 trap) to two sinks at once, one of them dead. snmptrapd
//! must log the right trap OID and bindings; the dead sink is retried with
//! back-off and given up within a bound.

mod support;

use std::time::{Duration, Instant};

use dvsan_snmp::{
    Credentials, EngineIdentity, Notifier, NotifierConfig, NotifyKind, Sink, UsmUser, Value,
    VarBind,
};
use support::NetSnmp;

fn user() -> Credentials {
    Credentials::V3(
        UsmUser::sha256_aes(support::V3_USER, support::V3_AUTH, support::V3_PRIV).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_snmptrapd_and_a_dead_sink_is_given_up() {
    let tools = NetSnmp::new();
    let engine = EngineIdentity::ephemeral().unwrap();
    let trapd = tools.snmptrapd(&[&engine.engine_id_hex()]);
    // A sink that never answers: a bound socket nobody reads.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let notifier = Notifier::new(
        NotifierConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            first_timeout: Duration::from_millis(100),
            max_timeout: Duration::from_millis(400),
            max_attempts: 4,
        },
        engine,
        Instant::now(),
    )
    .await
    .unwrap();
    let cases = [
        (
            "v2c-trap",
            Credentials::v2c("public"),
            NotifyKind::Trap,
            "5.1",
            "TRAP2, SNMP v2c",
        ),
        (
            "v2c-inform",
            Credentials::v2c("public"),
            NotifyKind::Inform,
            "5.4",
            "INFORM, SNMP v2c",
        ),
        (
            "v3-inform",
            user(),
            NotifyKind::Inform,
            "5.3",
            "INFORM, SNMP v3",
        ),
        ("v3-trap", user(), NotifyKind::Trap, "5.1", "TRAP2, SNMP v3"),
    ];
    for (i, (name, creds, kind, trap, pdu)) in cases.into_iter().enumerate() {
        notifier.set_sinks(vec![
            Sink {
                name: format!("trapd-{name}"),
                addr: trapd.addr(),
                credentials: creds.clone(),
                kind,
            },
            Sink {
                name: format!("dead-{name}"),
                addr: dead_addr,
                credentials: creds,
                kind,
            },
        ]);
        let trap_oid = format!("1.3.6.1.6.3.1.1.{trap}").parse().unwrap();
        let marker = format!("unit-{i}.example.org");
        let started = Instant::now();
        let outcomes = notifier
            .notify(
                &trap_oid,
                &[
                    VarBind::new(
                        "1.3.6.1.2.1.1.5.0".parse::<dvsan_snmp::Oid>().unwrap(),
                        Value::text(marker.clone()),
                    ),
                    VarBind::new(
                        "1.3.6.1.2.1.2.2.1.1.1".parse::<dvsan_snmp::Oid>().unwrap(),
                        Value::Integer(1),
                    ),
                    VarBind::new(
                        "1.3.6.1.4.1.8072.9999.9999.1.1.9.0"
                            .parse::<dvsan_snmp::Oid>()
                            .unwrap(),
                        Value::Counter64(u64::MAX),
                    ),
                ],
            )
            .await;
        let elapsed = started.elapsed();
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes[0].delivered, "{name}: {:?}", outcomes[0]);
        if kind == NotifyKind::Inform {
            // Retried with back-off (100+200+400+400 ms), then given up.
            assert!(
                !outcomes[1].delivered,
                "{name}: the dead sink acknowledged?"
            );
            assert_eq!(outcomes[1].attempts, 4, "{name}");
            assert!(outcomes[1].error.is_some());
            assert!(
                elapsed < Duration::from_secs(20),
                "{name}: gave up only after {elapsed:?}"
            );
        } else {
            // A trap is fire-and-forget: sent once to each sink.
            assert_eq!(outcomes[1].attempts, 1);
        }
        // snmptrapd logged it with the right OID and bindings.
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = loop {
            let log = trapd.log_text();
            if let Some(line) = log
                .lines()
                .find(|l| l.starts_with("NOTE") && l.contains(&marker))
            {
                break line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{name}: snmptrapd did not log it:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(line.contains(pdu), "{name}: {line}");
        assert!(
            line.contains(&format!(
                ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.{trap}"
            )),
            "{name}: {line}"
        );
        assert!(
            line.contains(&format!(".1.3.6.1.2.1.1.5.0 = STRING: \"{marker}\"")),
            "{name}: {line}"
        );
        assert!(
            line.contains(".1.3.6.1.2.1.2.2.1.1.1 = INTEGER: 1"),
            "{name}: {line}"
        );
        assert!(
            line.contains(".1.3.6.1.4.1.8072.9999.9999.1.1.9.0 = Counter64: 18446744073709551615"),
            "{name}: {line}"
        );
    }
    drop(dead);
}
