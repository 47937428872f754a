//! The station's speed, measured (never asserted): `cargo bench -p
//! dvsan-station --bench station [join|thousand|storm|allocate]`.
//!
//! - join: coldStart sent → the unit visible in `/api/v1/units/{uuid}`,
//!   p50/p99 over 200 joins (target p50 under 50 ms on loopback);
//! - thousand: 1,000 simulated units (the SNMP crate's agent serving a
//!   DVSAN-MIB each, in this process) announce at once; time until all are
//!   online through the API (target under 10 s), none lost;
//! - storm: the highest trap rate at which every notification is persisted
//!   as an event, beside net-snmp's `snmptrapd` logging to a file on the
//!   same machine (target at least 2× snmptrapd);
//! - allocate: the allocator's decision (inventory query + placement) with
//!   1,000 units and 20,000 volumes, p99 (target under 10 ms).

#[path = "../tests/support/simulated_unit.rs"]
mod simulated_unit;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dvsan_snmp::dvsan_mib::{
    AccessMode, DiskState, NbdTls, RaidGroupState, RaidLevel, VolumeState,
};
use dvsan_snmp::{Credentials, NotifyKind};
use dvsan_station::learner::Admission;
use dvsan_station::unit_snapshot::{DiskRow, RaidGroupRow, UnitSnapshot, VolumeRow};
use dvsan_station::{Inventory, Station, StationConfig};
use simulated_unit::{announcement_numbered, notifier_to, simulated_unit_numbered, user, uuid_of};

const COLD_START: &str = "1.3.6.1.6.3.1.1.5.1";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Running {
    trap: SocketAddr,
    web: SocketAddr,
    token: String,
    inventory: Inventory,
    _dir: tempfile::TempDir,
}

async fn station() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("station.db").display());
    let station = Station::bind(StationConfig {
        db: db.clone(),
        trap_listen: "127.0.0.1:0".parse().unwrap(),
        web_listen: Some("127.0.0.1:0".parse().unwrap()),
        poll_interval: Duration::from_secs(3600),
        snmp_timeout: Duration::from_secs(2),
        user: user(),
        communities: vec!["public".into()],
        engine_file: None,
        admission: Admission::Auto,
    })
    .await
    .unwrap();
    let trap = station.trap_address();
    let web = station.web_address().unwrap();
    let inventory = Inventory::open(&db).await.unwrap();
    let (_, token) = inventory.create_token("bench").await.unwrap();
    tokio::spawn(station.run(std::future::pending()));
    Running {
        trap,
        web,
        token,
        inventory,
        _dir: dir,
    }
}

/// Unit number `n`'s UUID as the inventory writes it.
fn uuid_text(n: u32) -> String {
    dvsan_station::unit_snapshot::uuid_text(&uuid_of(n)).expect("16 bytes")
}

fn http_get(agent: &ureq::Agent, url: &str, token: &str) -> (u16, String) {
    match agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

fn join(rt: &tokio::runtime::Runtime) {
    const JOINS: u32 = 200;
    let st = rt.block_on(station());
    let agent = http();
    let mut times = Vec::new();
    for n in 1..=JOINS {
        let (unit, notifier) = rt.block_on(async {
            let (unit, _sys) =
                simulated_unit_numbered(n, "127.0.0.1:10809", "127.0.0.1:0".parse().unwrap());
            let notifier = notifier_to(st.trap, Credentials::V3(user()), NotifyKind::Trap).await;
            (unit, notifier)
        });
        let url = format!("http://{}/api/v1/units/{}", st.web, uuid_text(n));
        let binds = announcement_numbered(n, &unit, "127.0.0.1:10809");
        let start = Instant::now();
        rt.block_on(notifier.notify(&COLD_START.parse().unwrap(), &binds));
        loop {
            let (status, _) = http_get(&agent, &url, &st.token);
            if status == 200 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "unit {n} never joined"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        times.push(start.elapsed());
        rt.block_on(async { drop(unit) });
    }
    times.sort();
    let p50 = percentile(&times, 0.5);
    let p99 = percentile(&times, 0.99);
    println!(
        "join: coldStart → visible in /api/v1 over {JOINS} joins: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p50 < 50 ms: {:.2}× the target)",
        ms(p50),
        ms(p99),
        ms(*times.last().unwrap()),
        ms(p50) / 50.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn thousand(rt: &tokio::runtime::Runtime) {
    const UNITS: u32 = 1000;
    let st = rt.block_on(station());
    let units: Vec<_> = rt.block_on(async {
        (1..=UNITS)
            .map(|n| {
                simulated_unit_numbered(n, "127.0.0.1:10809", "127.0.0.1:0".parse().unwrap()).0
            })
            .collect()
    });
    let notifiers: Vec<_> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..UNITS {
            v.push(notifier_to(st.trap, Credentials::V3(user()), NotifyKind::Trap).await);
        }
        v
    });
    let start = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, (unit, notifier)) in units.iter().zip(notifiers).enumerate() {
            let binds = announcement_numbered(i as u32 + 1, unit, "127.0.0.1:10809");
            set.spawn(async move {
                notifier.notify(&COLD_START.parse().unwrap(), &binds).await;
                notifier
            });
        }
        let mut kept = Vec::new();
        while let Some(n) = set.join_next().await {
            kept.push(n.unwrap());
        }
        kept
    });
    let sent = start.elapsed();
    let agent = http();
    let url = format!("http://{}/api/v1/units", st.web);
    let mut online = 0;
    while start.elapsed() < Duration::from_secs(60) {
        let (_, body) = http_get(&agent, &url, &st.token);
        let units: serde_json::Value = serde_json::from_str(&body).unwrap();
        online = units
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["state"] == "online")
            .count();
        if online == UNITS as usize {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    println!(
        "thousand: {UNITS} units announcing at once (sent in {:.2} s): {online} online after {:.2} s, {} lost (target all in < 10 s: {:.2}× the target)",
        sent.as_secs_f64(),
        took.as_secs_f64(),
        UNITS as usize - online,
        took.as_secs_f64() / 10.0
    );
    drop(units);
}

/// One SNMPv2c trap (community `public`, an enterprise OID the station
/// only records), request id `id`.
fn v2c_trap(id: u32) -> Vec<u8> {
    // Built with the SNMP crate's BER writer would hide the cost; these are
    // the bytes net-snmp's snmptrap sends for the same trap.
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = body.len();
        if n < 128 {
            out.push(n as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        out.extend_from_slice(body);
        out
    }
    fn oid(arcs: &[u32]) -> Vec<u8> {
        let mut b = vec![(arcs[0] * 40 + arcs[1]) as u8];
        for &a in &arcs[2..] {
            let mut stack = vec![(a & 0x7f) as u8];
            let mut v = a >> 7;
            while v > 0 {
                stack.push((v & 0x7f) as u8 | 0x80);
                v >>= 7;
            }
            stack.reverse();
            b.extend(stack);
        }
        tlv(0x06, &b)
    }
    let uptime = [oid(&[1, 3, 6, 1, 2, 1, 1, 3, 0]), tlv(0x43, &[0x01, 0x00])].concat();
    let trap_oid = [
        oid(&[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]),
        oid(&[1, 3, 6, 1, 4, 1, 8072, 2, 3, 0, 1]),
    ]
    .concat();
    let vbs = tlv(0x30, &[tlv(0x30, &uptime), tlv(0x30, &trap_oid)].concat());
    let pdu = tlv(
        0xa7,
        &[
            tlv(0x02, &id.to_be_bytes()),
            tlv(0x02, &[0]),
            tlv(0x02, &[0]),
            vbs,
        ]
        .concat(),
    );
    tlv(0x30, &[tlv(0x02, &[1]), tlv(0x04, b"public"), pdu].concat())
}

/// Sends `count` traps to `to` at `rate` per second; returns the seconds it took.
fn blast(to: SocketAddr, count: u32, rate: u32) -> f64 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let packets: Vec<Vec<u8>> = (0..count).map(|i| v2c_trap(0x0100_0000 + i)).collect();
    let start = Instant::now();
    for (i, p) in packets.iter().enumerate() {
        let due = Duration::from_secs_f64(i as f64 / f64::from(rate));
        while start.elapsed() < due {
            std::hint::spin_loop();
        }
        let _ = sock.send_to(p, to);
    }
    start.elapsed().as_secs_f64()
}

fn storm(rt: &tokio::runtime::Runtime) {
    const COUNT: u32 = 20_000;
    let rates = [
        2_000u32, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 40_000, 80_000,
    ];
    // dvsan station.
    let mut dvsan_best = 0;
    for &rate in &rates {
        let st = rt.block_on(station());
        let before = rt.block_on(events(&st.inventory));
        blast(st.trap, COUNT, rate);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got;
        let mut last = (0, Instant::now());
        loop {
            got = rt.block_on(events(&st.inventory)) - before;
            if got >= i64::from(COUNT) || Instant::now() > deadline {
                break;
            }
            if got != last.0 {
                last = (got, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let lost = i64::from(COUNT) - got;
        println!("storm: dvsan station at {rate}/s: {got} of {COUNT} persisted, {lost} lost");
        if lost > 0 {
            break;
        }
        dvsan_best = rate;
    }
    // snmptrapd, logging every trap to a file.
    let mut trapd_best = 0;
    for &rate in &rates {
        let Some(got) = snmptrapd_run(COUNT, rate) else {
            println!("storm: snmptrapd not installed (apt-get install snmptrapd); no ratio");
            return;
        };
        let lost = i64::from(COUNT) - got;
        println!("storm: snmptrapd at {rate}/s: {got} of {COUNT} logged, {lost} lost");
        if lost > 0 {
            break;
        }
        trapd_best = rate;
    }
    println!(
        "storm: highest lossless rate: dvsan {dvsan_best}/s, snmptrapd {trapd_best}/s: {:.2}× snmptrapd (target ≥ 2×)",
        f64::from(dvsan_best) / f64::from(trapd_best.max(1))
    );
}

async fn events(inv: &Inventory) -> i64 {
    inv.count_events("other").await.unwrap()
}

fn snmptrapd_run(count: u32, rate: u32) -> Option<i64> {
    let bin = ["/usr/sbin/snmptrapd", "/usr/bin/snmptrapd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let dir = tempfile::tempdir().unwrap();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("snmptrapd.conf");
    std::fs::write(&conf, "authCommunity log public\ndisableAuthorization no\n").unwrap();
    let log = dir.path().join("traps.log");
    let mut child = Command::new(bin)
        .args(["-f", "-n", "-Lf"])
        .arg(&log)
        .args(["-C", "-c"])
        .arg(&conf)
        .args(["-F", "TRAP %B\n", "-m", "", "-M", "/nonexistent"])
        .arg(format!("udp:127.0.0.1:{port}"))
        .env("SNMP_PERSISTENT_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(500));
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    blast(to, count, rate);
    let lines = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("TRAP"))
            .count() as i64
    };
    let mut last = (0, Instant::now());
    loop {
        let n = lines(&log);
        if n >= i64::from(count) {
            break;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Some(lines(&log))
}

/// A unit as a poll would record it: 4 disks in a RAID 5 group and a
/// linear one, `volumes` partitions.
fn synthetic_unit(u: u32, volumes: u32) -> UnitSnapshot {
    let group = |index: u32, level, free| RaidGroupRow {
        index,
        name: format!("g{index}"),
        level,
        chunk_kib: 64,
        member_count: 2,
        members: format!("{},{}", index * 2 - 1, index * 2),
        capacity_mib: 1 << 20,
        free_mib: free,
        state: RaidGroupState::Optimal,
        rebuild_progress: 100,
        readd_mib: "0,0".into(),
    };
    UnitSnapshot {
        snmp_address: format!("127.0.{}.{}:161", u / 250, u % 250 + 1)
            .parse()
            .unwrap(),
        uuid: uuid_text(u + 1),
        name: format!("unit-{u}.san.example"),
        sys_descr: "dvsan SAN unit (synthetic)".into(),
        software: "0.1.0".into(),
        nbd_endpoint: "127.0.0.1:10809".into(),
        nbd_tls: NbdTls::Off,
        total_mib: 2 << 20,
        free_mib: 1 << 20,
        disks: (1..=4)
            .map(|i| DiskRow {
                index: i,
                path: format!("/dev/sd{i}"),
                size_mib: 1 << 19,
                state: DiskState::Ok,
                raid_group: i.div_ceil(2),
            })
            .collect(),
        raid_groups: vec![
            group(1, RaidLevel::Raid5, (u * 7919) % (1 << 19)),
            group(2, RaidLevel::Linear, (u * 104_729) % (1 << 19)),
        ],
        volumes: (1..=volumes)
            .map(|v| VolumeRow {
                index: v,
                uuid: format!("{}-{v:04}", uuid_text(u + 1)),
                name: format!("vol{v}"),
                raid_group: 1 + v % 2,
                offset_mib: v * 1024,
                size_mib: 1024,
                state: VolumeState::Online,
                export_name: format!("vol{v}"),
                access_mode: AccessMode::ReadWrite,
            })
            .collect(),
    }
}

fn allocate(rt: &tokio::runtime::Runtime) {
    const UNITS: u32 = 1000;
    const VOLUMES_PER_UNIT: u32 = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("alloc.db").display());
    let inv = rt.block_on(Inventory::open(&db)).unwrap();
    let setup = Instant::now();
    rt.block_on(async {
        for u in 0..UNITS {
            inv.upsert_unit(&synthetic_unit(u, VOLUMES_PER_UNIT))
                .await
                .unwrap();
        }
    });
    println!(
        "allocate: inventory of {UNITS} units, {} volumes filled in {:.1} s",
        UNITS * VOLUMES_PER_UNIT,
        setup.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for i in 0..1000u64 {
        let start = Instant::now();
        let spaces = rt.block_on(inv.placement_space(None, None, None)).unwrap();
        let plan = dvsan_station::allocator::place(&spaces, 64 + i % 4096);
        times.push(start.elapsed());
        assert!(plan.is_ok());
    }
    times.sort();
    let p99 = percentile(&times, 0.99);
    println!(
        "allocate: decision (query + placement) over {UNITS} units / {} volumes: p50 {:.2} ms, p99 {:.2} ms (target p99 < 10 ms: {:.2}× the target)",
        UNITS * VOLUMES_PER_UNIT,
        ms(percentile(&times, 0.5)),
        ms(p99),
        ms(p99) / 10.0
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = which.is_empty();
    let want = |name: &str| all || which.iter().any(|w| w == name);
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if want("allocate") {
        allocate(&rt);
    }
    if want("join") {
        join(&rt);
    }
    if want("thousand") {
        thousand(&rt);
    }
    if want("storm") {
        storm(&rt);
    }
}
