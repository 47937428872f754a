//! The notification receiver fed by net-snmp's snmptrap and snmpinform:
//! v2c and v3 notifications decoded exactly, informs acknowledged, and
//! wrong communities, unknown users and wrong keys counted and dropped.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use dvsan_snmp::{
    EngineIdentity, Notification, Oid, ReceiverConfig, ReceiverCounters, Sender, TrapReceiver,
    UsmUser, Value,
};
use support::{Auth, NetSnmp, stderr, v3};

struct Running {
    addr: std::net::SocketAddr,
    rx: mpsc::Receiver<Notification>,
    counters: mpsc::Receiver<ReceiverCounters>,
    ask: tokio::sync::mpsc::Sender<()>,
}

fn start() -> Running {
    let (tx, rx) = mpsc::channel();
    let (ctx, crx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    let (ask, mut asked) = tokio::sync::mpsc::channel::<()>(4);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let receiver = TrapReceiver::bind(ReceiverConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                engine: EngineIdentity::ephemeral().unwrap(),
                users: vec![
                    UsmUser::sha256_aes(support::V3_USER, support::V3_AUTH, support::V3_PRIV)
                        .unwrap(),
                ],
                communities: vec!["public".into()],
                recv_buffer: 4 << 20,
            })
            .await
            .unwrap();
            addr_tx.send(receiver.local_addr()).unwrap();
            loop {
                tokio::select! {
                    n = receiver.recv() => { if tx.send(n.unwrap()).is_err() { return; } }
                    q = asked.recv() => {
                        if q.is_none() { return; }
                        let _ = ctx.send(receiver.counters());
                    }
                }
            }
        });
    });
    Running {
        addr: addr_rx.recv().unwrap(),
        rx,
        counters: crx,
        ask,
    }
}

impl Running {
    fn counters(&self) -> ReceiverCounters {
        self.ask.blocking_send(()).unwrap();
        self.counters.recv_timeout(Duration::from_secs(5)).unwrap()
    }
    fn peer(&self) -> String {
        format!("udp:{}", self.addr)
    }
}

const ARGS: &[&str] = &[
    "", // sysUpTime: the tool's own
    "1.3.6.1.6.3.1.1.5.1",
    "1.3.6.1.2.1.1.5.0",
    "s",
    "unit-a.example.org",
    "1.3.6.1.4.1.8072.9999.9999.1.1.2.0",
    "x",
    "0011223344556677",
    "1.3.6.1.2.1.2.2.1.1.2",
    "i",
    "-2",
    "1.3.6.1.2.1.1.2.0",
    "o",
    "1.3.6.1.4.1.8072.9999.9999.2.1",
    "1.3.6.1.4.1.8072.9999.9999.1.1.3.0",
    "u",
    "4294967295",
    "1.3.6.1.4.1.8072.9999.9999.1.1.4.0",
    "a",
    "192.0.2.7",
    "1.3.6.1.4.1.8072.9999.9999.1.1.5.0",
    "t",
    "12345",
];

fn check_decoded(n: &Notification, sender: Sender, inform: bool) {
    assert_eq!(n.sender, sender);
    assert_eq!(n.inform, inform);
    assert_eq!(n.trap_oid, "1.3.6.1.6.3.1.1.5.1".parse::<Oid>().unwrap());
    let want = vec![
        ("1.3.6.1.2.1.1.5.0", Value::text("unit-a.example.org")),
        (
            "1.3.6.1.4.1.8072.9999.9999.1.1.2.0",
            Value::OctetString(vec![0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77].into()),
        ),
        ("1.3.6.1.2.1.2.2.1.1.2", Value::Integer(-2)),
        (
            "1.3.6.1.2.1.1.2.0",
            Value::ObjectIdentifier("1.3.6.1.4.1.8072.9999.9999.2.1".parse().unwrap()),
        ),
        (
            "1.3.6.1.4.1.8072.9999.9999.1.1.3.0",
            Value::Gauge32(u32::MAX),
        ),
        (
            "1.3.6.1.4.1.8072.9999.9999.1.1.4.0",
            Value::IpAddress([192, 0, 2, 7]),
        ),
        (
            "1.3.6.1.4.1.8072.9999.9999.1.1.5.0",
            Value::TimeTicks(12345),
        ),
    ];
    let got: Vec<(String, Value)> = n
        .varbinds
        .iter()
        .map(|vb| (vb.oid.to_string(), vb.value.clone()))
        .collect();
    let want: Vec<(String, Value)> = want.into_iter().map(|(o, v)| (o.to_string(), v)).collect();
    assert_eq!(got, want);
}

fn expect(r: &Running) -> Notification {
    r.rx.recv_timeout(Duration::from_secs(10))
        .expect("a notification")
}

fn expect_none(r: &Running) {
    assert!(
        r.rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "refused notification was delivered"
    );
}

#[test]
fn snmptrap_and_snmpinform_v2c_and_v3_are_decoded_exactly() {
    let r = start();
    let tools = NetSnmp::new();
    let out = tools.run("snmptrap", &Auth::V2c("public"), &[], &r.peer(), ARGS);
    assert!(out.status.success(), "{}", stderr(&out));
    check_decoded(&expect(&r), Sender::Community("public".into()), false);

    let out = tools.run("snmpinform", &Auth::V2c("public"), &[], &r.peer(), ARGS);
    assert!(
        out.status.success(),
        "snmpinform not acknowledged: {}",
        stderr(&out)
    );
    check_decoded(&expect(&r), Sender::Community("public".into()), true);

    // A v3 trap comes from the sender's engine, named with -e.
    let out = tools.run(
        "snmptrap",
        &v3(),
        &["-e", "0x8000000001020304"],
        &r.peer(),
        ARGS,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    check_decoded(&expect(&r), Sender::User(support::V3_USER.into()), false);

    let out = tools.run("snmpinform", &v3(), &[], &r.peer(), ARGS);
    assert!(
        out.status.success(),
        "v3 snmpinform not acknowledged: {}",
        stderr(&out)
    );
    check_decoded(&expect(&r), Sender::User(support::V3_USER.into()), true);
}

#[test]
fn unauthenticated_notifications_are_counted_and_dropped() {
    let r = start();
    let tools = NetSnmp::new();
    let before = r.counters();

    let out = tools.run("snmptrap", &Auth::V2c("guess"), &[], &r.peer(), ARGS);
    assert!(out.status.success());
    expect_none(&r);
    // An inform with a wrong community is not acknowledged.
    let out = tools.run(
        "snmpinform",
        &Auth::V2c("guess"),
        &["-r", "0", "-t", "0.5"],
        &r.peer(),
        ARGS,
    );
    assert!(!out.status.success(), "a refused inform was acknowledged");
    expect_none(&r);

    let unknown = Auth::V3 {
        user: "mallory",
        auth: support::V3_AUTH,
        privacy: support::V3_PRIV,
    };
    let out = tools.run(
        "snmptrap",
        &unknown,
        &["-e", "0x8000000001020305"],
        &r.peer(),
        ARGS,
    );
    assert!(out.status.success());
    expect_none(&r);
    let wrong_key = Auth::V3 {
        user: support::V3_USER,
        auth: "not-the-key-9",
        privacy: support::V3_PRIV,
    };
    let out = tools.run(
        "snmptrap",
        &wrong_key,
        &["-e", "0x8000000001020306"],
        &r.peer(),
        ARGS,
    );
    assert!(out.status.success());
    expect_none(&r);
    let out = tools.run(
        "snmpinform",
        &wrong_key,
        &["-r", "0", "-t", "0.5"],
        &r.peer(),
        ARGS,
    );
    assert!(
        !out.status.success(),
        "an inform with a wrong key was acknowledged"
    );
    expect_none(&r);
    // noAuthNoPriv claims a user but proves nothing.
    let mut noauth = tools.command("snmptrap");
    noauth
        .args([
            "-v3",
            "-l",
            "noAuthNoPriv",
            "-u",
            support::V3_USER,
            "-e",
            "0x8000000001020307",
            &r.peer(),
        ])
        .args(ARGS);
    let out = support::run_bounded(noauth, Duration::from_secs(20));
    assert!(out.status.success(), "{}", stderr(&out));
    expect_none(&r);

    let after = r.counters();
    assert_eq!(after.bad_community - before.bad_community, 2, "{after:?}");
    assert!(after.unknown_user > before.unknown_user, "{after:?}");
    assert!(after.wrong_digest > before.wrong_digest, "{after:?}");
    assert_eq!(
        after.unauthenticated - before.unauthenticated,
        1,
        "{after:?}"
    );

    // And it still works.
    let out = tools.run("snmptrap", &Auth::V2c("public"), &[], &r.peer(), ARGS);
    assert!(out.status.success());
    check_decoded(&expect(&r), Sender::Community("public".into()), false);
}

#[tokio::test(flavor = "current_thread")]
async fn the_receiver_socket_gets_the_receive_buffer_asked_for() {
    support::require_tool("ss", "iproute2");
    let requested = 4 << 20;
    let receiver = TrapReceiver::bind(ReceiverConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        engine: EngineIdentity::ephemeral().unwrap(),
        users: vec![],
        communities: vec!["public".into()],
        recv_buffer: requested,
    })
    .await
    .unwrap();
    let port = receiver.local_addr().port();
    let out = std::process::Command::new("ss")
        .args(["-uamn", &format!("sport = :{port}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rb: usize = text
        .split("rb")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skmem in: {text}"));
    // Linux caps SO_RCVBUF at net.core.rmem_max, then doubles it.
    let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let rmem_default: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_default")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rb, 2 * requested.min(rmem_max), "ss says {text}");
    assert!(
        rmem_max <= rmem_default || rb > rmem_default,
        "the buffer was not raised: {rb}"
    );
}
