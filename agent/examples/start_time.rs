//! Start-up benchmark of `dvsan agent`, beside its peers: how long from
//! process start until the coldStart reaches a station (an INFORM, received
//! here) and until the first NBD export answers a handshake, on a unit of
//! 3 disks with a RAID 5 group and 10 volumes; then the same "until the
//! first export answers" for qemu-nbd serving one file, and "until it
//! answers a GET" for net-snmp's snmpd. Prints medians and ratios. Not a
//! test: timings depend on the machine.
//!
//! Usage: start_time DVSAN_BINARY [RUNS]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dvsan_agent::daemon::DiskArg;
use dvsan_agent::storage::metadata::{AccessRecord, Level};
use dvsan_agent::storage::{GroupSpec, Unit};
use dvsan_snmp::{EngineIdentity, ReceiverConfig, TrapReceiver, UsmUser};

const USER: &str = "dvsanadmin";
const AUTH: &str = "auth-pass-123";
const PRIV: &str = "priv-pass-456";

fn free_port() -> u16 {
    // Free for TCP now; UDP users of the same number are unlikely.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls an NBD handshake every millisecond until it succeeds.
async fn until_nbd(addr: SocketAddr, export: &str, t0: Instant) -> Duration {
    loop {
        if let Ok(c) = dvsan_nbd::Client::connect(addr, export).await {
            let d = t0.elapsed();
            let _ = c.disconnect().await;
            return d;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "NBD never answered");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn prepare(dir: &Path) -> Vec<DiskArg> {
    let disks: Vec<DiskArg> = (1..=3)
        .map(|i| DiskArg {
            path: dir.join(format!("d{i}.img")),
            size: None,
        })
        .collect();
    let specs: Vec<_> = disks
        .iter()
        .map(|d| dvsan_agent::storage::DiskSpec {
            path: d.path.clone(),
            size: 256 << 20,
        })
        .collect();
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&GroupSpec {
        index: 1,
        name: "r5".into(),
        level: Level::Raid5,
        chunk: 64 << 10,
        members: vec![1, 2, 3],
    })
    .unwrap();
    for i in 1..=10 {
        unit.create_volume(i, &format!("vol{i}"), 1, 16 << 20)
            .unwrap();
    }
    let client = AccessRecord {
        index: 1,
        client: "127.0.0.1".into(),
        read_only: false,
    };
    unit.set_volume_access(1, false, vec![client]).unwrap();
    disks
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().expect("usage: start_time DVSAN_BINARY [RUNS]");
    let runs: usize = args.next().map_or(7, |r| r.parse().expect("RUNS"));
    let dir = tempfile::tempdir().unwrap();
    let disks = prepare(dir.path());
    let user = UsmUser::sha256_aes(USER, AUTH, PRIV).unwrap();

    let (mut cold, mut nbd) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let receiver = TrapReceiver::bind(ReceiverConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            engine: EngineIdentity::ephemeral().unwrap(),
            users: vec![user.clone()],
            communities: vec![],
            recv_buffer: 1 << 20,
        })
        .await
        .unwrap();
        let nbd_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(&binary);
        cmd.arg("agent")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--snmp-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--nbd-listen", &nbd_addr.to_string()])
            .args(["--station", &receiver.local_addr().to_string()])
            .args(["--snmp-user", USER])
            .env("DVSAN_SNMP_AUTH_PASS", AUTH)
            .env("DVSAN_SNMP_PRIV_PASS", PRIV)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for d in &disks {
            cmd.arg("--disk").arg(&d.path);
        }
        let t0 = Instant::now();
        let child = Kill(cmd.spawn().expect("start dvsan agent"));
        let (c, n) = tokio::join!(
            async {
                tokio::time::timeout(Duration::from_secs(20), receiver.recv())
                    .await
                    .expect("no coldStart")
                    .unwrap();
                t0.elapsed()
            },
            until_nbd(nbd_addr, "vol1", t0)
        );
        cold.push(c);
        nbd.push(n);
        drop(child);
    }

    // qemu-nbd serving one file: until its export answers.
    let image = dir.path().join("peer.img");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let mut qemu = Vec::new();
    for _ in 0..runs {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let t0 = Instant::now();
        let child = Kill(
            Command::new("qemu-nbd")
                .args(["-f", "raw", "-x", "peer", "-b", "127.0.0.1"])
                .args(["-p", &addr.port().to_string()])
                .arg(&image)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("qemu-nbd (apt-get install qemu-utils)"),
        );
        qemu.push(until_nbd(addr, "peer", t0).await);
        drop(child);
    }

    // snmpd: until it answers a GET.
    let state = tempfile::tempdir().unwrap();
    // Not snmpd.conf: snmpd writes its persistent state under that name.
    let conf = state.path().join("bench-snmpd.conf");
    std::fs::write(&conf, "rocommunity public 127.0.0.1\n").unwrap();
    let mut snmpd = Vec::new();
    for _ in 0..runs {
        let port = free_port();
        let t0 = Instant::now();
        let child = Kill(
            Command::new("snmpd")
                .env("SNMP_PERSISTENT_DIR", state.path())
                .env("MIBS", "")
                .args(["-f", "-C", "-Le", "-c"])
                .arg(&conf)
                .arg(format!("udp:127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("snmpd (apt-get install snmpd)"),
        );
        loop {
            let ok = Command::new("snmpget")
                .env("SNMP_PERSISTENT_DIR", state.path())
                .args(["-m", "", "-v2c", "-c", "public", "-r", "0", "-t", "0.05"])
                .arg(format!("udp:127.0.0.1:{port}"))
                .arg("1.3.6.1.2.1.1.3.0")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "snmpd never answered"
            );
        }
        snmpd.push(t0.elapsed());
        drop(child);
    }

    let (cold, nbd, qemu, snmpd) = (median(cold), median(nbd), median(qemu), median(snmpd));
    println!("dvsan agent, 3 disks, RAID 5, 10 volumes ({runs} runs, medians):");
    println!(
        "  start -> coldStart at the station   {:8.1} ms  (target < 200 ms)",
        ms(cold)
    );
    println!(
        "  start -> first NBD export answers   {:8.1} ms  (target < 200 ms)",
        ms(nbd)
    );
    println!("peers:");
    println!("  qemu-nbd start -> export answers    {:8.1} ms", ms(qemu));
    println!("  snmpd start -> answers a GET        {:8.1} ms", ms(snmpd));
    println!("ratios (peer / dvsan; above 1 means dvsan is faster):");
    println!(
        "  NBD ready:  {:.2}",
        qemu.as_secs_f64() / nbd.as_secs_f64()
    );
    println!(
        "  SNMP ready: {:.2} (snmpd answering vs dvsan's coldStart received)",
        snmpd.as_secs_f64() / cold.as_secs_f64()
    );
}
