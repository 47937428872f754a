//! A unit killed with SIGKILL in the middle of a stream of NBD writes to a
//! RAID 5 volume: after a restart the group reassembles, the write-intent
//! bitmap's marked regions are resynchronised in the background until the
//! group is optimal, and every write acknowledged before a completed FLUSH
//! reads back (block checksums); a block written after the last FLUSH holds
//! its flushed contents or one of the later writes, nothing else. A clean
//! stop (SIGTERM) afterwards leaves nothing to resync.

#[path = "../snmp/tests/support/net_snmp.rs"]
mod net_snmp;
mod support {
    pub mod agent_process;
    pub mod binary;
}

use std::process::Command;
use std::time::{Duration, Instant};

use dvsan_nbd::Client;
use net_snmp::{NetSnmp, stdout};
use support::agent_process::{
    AgentProcess, AgentSpec, make_group, make_volume, oid, open_to_loopback, v3_run,
};

const BLOCK: usize = 4096;
/// The volume: 16 MiB.
const SIZE: usize = 16 << 20;
const BLOCKS: usize = SIZE / BLOCK;

/// RAID 5 group 1 over disks 1–3 and volume "crash" of 16 MiB, open to
/// 127.0.0.1.
fn configure(tools: &NetSnmp, agent: &AgentProcess) {
    make_group(tools, agent, 5);
    make_volume(tools, agent, 1, "crash", 16);
    open_to_loopback(tools, agent, 1);
}

/// dvsanRaidGroupState.1 and dvsanRaidGroupRebuildProgress.1.
fn group_state(tools: &NetSnmp, agent: &AgentProcess) -> (String, String) {
    let out = v3_run(
        tools,
        "snmpget",
        agent,
        &["-Oqv", &oid(3, 9, "1"), &oid(3, 10, "1")],
    );
    let text = stdout(&out);
    let mut lines = text.lines().map(|l| l.trim().to_owned());
    (
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    )
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What each block may hold after the crash.
struct Model {
    /// Its contents as of the last completed FLUSH.
    durable: Vec<u64>,
    /// Writes acknowledged since, in order.
    acked: Vec<Vec<u64>>,
    /// Writes sent but not acknowledged (in flight at the kill).
    sent: Vec<Vec<u64>>,
}

impl Model {
    fn new() -> Model {
        let zero = fnv(&[0u8; BLOCK]);
        Model {
            durable: vec![zero; BLOCKS],
            acked: vec![vec![]; BLOCKS],
            sent: vec![vec![]; BLOCKS],
        }
    }

    fn sending(&mut self, offset: usize, data: &[u8]) {
        for (i, b) in data.chunks(BLOCK).enumerate() {
            self.sent[offset / BLOCK + i].push(fnv(b));
        }
    }

    fn acknowledged(&mut self, offset: usize, data: &[u8]) {
        for (i, b) in data.chunks(BLOCK).enumerate() {
            let n = offset / BLOCK + i;
            let h = fnv(b);
            if let Some(at) = self.sent[n].iter().position(|x| *x == h) {
                self.sent[n].remove(at);
            }
            self.acked[n].push(h);
        }
    }

    /// A FLUSH sent after `acked` were acknowledged completed.
    fn flushed(&mut self, acked: &[Vec<u64>]) {
        for (n, done) in acked.iter().enumerate() {
            if let Some(last) = done.last() {
                self.durable[n] = *last;
                let k = done.len();
                self.acked[n].drain(..k);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_killed_mid_write_keeps_flushed_writes_and_resyncs() {
    let tools = NetSnmp::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(AgentSpec::three_disks(dir.path()), &tools);
    configure(&tools, &agent);
    let ports = (agent.snmp_port, agent.nbd_port);

    let client = Client::connect(("127.0.0.1", agent.nbd_port), "crash")
        .await
        .unwrap();
    let mut model = Model::new();
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let kill_at = 30 + (next() % 30) as usize;
    let mut flushes = 0;
    let mut killer = None;
    let started = Instant::now();
    'stream: for round in 0.. {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writes never failed after the kill"
        );
        if round == kill_at {
            // Not waited for now: the writes below are in flight when it
            // lands.
            killer = Some(
                Command::new("kill")
                    .args(["-KILL", &agent.child.id().to_string()])
                    .spawn()
                    .unwrap(),
            );
        }
        // Four writes of 4–64 KiB, then a FLUSH.
        let mut batch = vec![];
        for _ in 0..4 {
            let blocks = 1 + (next() % 16) as usize;
            let offset = (next() as usize % (BLOCKS - blocks)) * BLOCK;
            let data: Vec<u8> = (0..blocks * BLOCK).map(|_| next() as u8).collect();
            model.sending(offset, &data);
            batch.push((offset, data));
        }
        for (offset, data) in &batch {
            match client.write(*offset as u64, data, false).await {
                Ok(()) => model.acknowledged(*offset, data),
                Err(_) if killer.is_some() => break 'stream,
                Err(e) => panic!("write failed before the kill: {e}"),
            }
        }
        let before_flush = model.acked.clone();
        match client.flush().await {
            Ok(()) => {
                model.flushed(&before_flush);
                flushes += 1;
            }
            Err(_) if killer.is_some() => break,
            Err(e) => panic!("flush failed before the kill: {e}"),
        }
    }
    assert!(flushes >= 30, "{flushes} flushes before the kill");
    if let Some(mut k) = killer {
        k.wait().unwrap();
    }
    drop(client);
    let old_log = agent.log_text();
    agent.kill();
    assert!(!old_log.contains("every volume flushed"), "not a crash");

    // Back from the same disks on the same ports.
    let mut spec = AgentSpec::three_disks(dir.path());
    spec.disks = (1..=3).map(|i| format!("disk{i}.img")).collect();
    spec.ports = Some(ports);
    let agent = AgentProcess::start(spec, &tools);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (state, progress) = group_state(&tools, &agent);
        // The log line follows the state by a moment.
        if state == "1" && progress == "100" && agent.log_text().contains("resync finished") {
            break;
        }
        assert!(
            state == "5" || state == "1",
            "group state {state} after the crash:\n{}",
            agent.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "resync never finished:\n{}",
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = agent.log_text();
    assert!(log.contains("not stopped cleanly"), "{log}");

    let client = Client::connect(("127.0.0.1", agent.nbd_port), "crash")
        .await
        .unwrap();
    let mut wrong = vec![];
    for at in (0..SIZE).step_by(1 << 20) {
        let data = client.read(at as u64, 1 << 20).await.unwrap();
        for (i, b) in data.chunks(BLOCK).enumerate() {
            let n = at / BLOCK + i;
            let h = fnv(b);
            let ok =
                h == model.durable[n] || model.acked[n].contains(&h) || model.sent[n].contains(&h);
            if !ok {
                wrong.push(n);
            }
        }
    }
    assert!(wrong.is_empty(), "blocks lost or wrong: {wrong:?}");
    drop(client);

    // A clean stop marks nothing to resync.
    let (status, _) = agent.terminate();
    assert!(status.success());
    let mut spec = AgentSpec::three_disks(dir.path());
    spec.disks = (1..=3).map(|i| format!("disk{i}.img")).collect();
    spec.ports = Some(ports);
    let agent = AgentProcess::start(spec, &tools);
    assert_eq!(group_state(&tools, &agent).0, "1");
    let log = agent.log_text();
    assert!(!log.contains("not stopped cleanly"), "{log}");
    agent.kill();
}
