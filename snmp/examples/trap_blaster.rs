//! Load generator for the notification benchmark (bench/snmp-traps.sh):
//! sends COUNT SNMPv2c traps or informs to 127.0.0.1:PORT at RATE per
//! second, bounded in count and time. For informs it keeps at most WINDOW
//! unacknowledged and counts the Responses. Prints
//! `sent=N acked=N seconds=S`.
//!
//! Usage: trap_blaster PORT COUNT RATE trap|inform [WINDOW]

use std::collections::HashSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// BER TLV with a definite length.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    tlv(0x06, &body)
}

/// A v2c notification with a fixed-width request-id, so that it can be
/// patched in place for each send. Returns the bytes and the id's offset.
fn message(inform: bool) -> (Vec<u8>, usize) {
    let vb = |name: Vec<u8>, value: Vec<u8>| tlv(0x30, &[name, value].concat());
    let varbinds = tlv(
        0x30,
        &[
            vb(oid(&[1, 3, 6, 1, 2, 1, 1, 3, 0]), tlv(0x43, &[0x01, 0x00])),
            vb(
                oid(&[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]),
                oid(&[1, 3, 6, 1, 6, 3, 1, 1, 5, 1]),
            ),
            vb(
                oid(&[1, 3, 6, 1, 2, 1, 1, 5, 0]),
                tlv(0x04, b"bench-unit.example.org"),
            ),
        ]
        .concat(),
    );
    let request_id = tlv(0x02, &[0x01, 0, 0, 0]);
    let pdu_body = [request_id, tlv(0x02, &[0]), tlv(0x02, &[0]), varbinds].concat();
    let pdu = tlv(if inform { 0xa6 } else { 0xa7 }, &pdu_body);
    let head = [tlv(0x02, &[1]), tlv(0x04, b"public")].concat();
    let msg = tlv(0x30, &[head.clone(), pdu.clone()].concat());
    // message header (2) + head + pdu header (2 or 3) + INTEGER tag/len (2)
    let pdu_header = pdu.len() - pdu_body.len();
    let msg_header = msg.len() - head.len() - pdu.len();
    (msg, msg_header + head.len() + pdu_header + 2)
}

/// The request-id of a Response, if the datagram is one.
fn response_id(buf: &[u8]) -> Option<i32> {
    let i = buf.windows(1).position(|w| w[0] == 0xa2)?;
    let mut p = i + 1;
    if buf.get(p)? & 0x80 != 0 {
        p += 1 + (buf[p] & 0x7f) as usize;
    } else {
        p += 1;
    }
    if *buf.get(p)? != 0x02 {
        return None;
    }
    let len = *buf.get(p + 1)? as usize;
    let bytes = buf.get(p + 2..p + 2 + len)?;
    let mut v: i32 = if bytes.first()? & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i32::from(*b);
    }
    Some(v)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: trap_blaster PORT COUNT RATE trap|inform [WINDOW]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT");
    let count: u32 = args[2].parse().expect("COUNT");
    let rate: u32 = args[3].parse().expect("RATE");
    let inform = args[4] == "inform";
    let window: usize = args.get(5).and_then(|w| w.parse().ok()).unwrap_or(64);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(("127.0.0.1", port)).expect("connect");
    socket.set_nonblocking(true).expect("nonblocking");
    // Room for every Response of a full window, so none is lost here.
    socket2::SockRef::from(&socket)
        .set_recv_buffer_size(8 << 20)
        .expect("SO_RCVBUF");
    let (mut msg, id_at) = message(inform);
    let start = Instant::now();
    let hard_stop = start + Duration::from_secs(120);
    let mut outstanding: HashSet<i32> = HashSet::new();
    let mut acked = 0u32;
    let mut buf = [0u8; 2048];
    let mut sent = 0u32;
    while sent < count && Instant::now() < hard_stop {
        // Pace: never ahead of RATE per second.
        let due = Duration::from_secs_f64(f64::from(sent) / f64::from(rate));
        let elapsed = start.elapsed();
        if elapsed < due {
            std::thread::sleep((due - elapsed).min(Duration::from_millis(2)));
        }
        if inform {
            while let Ok(n) = socket.recv(&mut buf) {
                if let Some(id) = response_id(&buf[..n])
                    && outstanding.remove(&id)
                {
                    acked += 1;
                }
            }
            if outstanding.len() >= window {
                // A lost inform never comes back: count it lost after a while.
                if start.elapsed() > due + Duration::from_secs(2) {
                    outstanding.clear();
                }
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
        }
        let id = 0x0100_0000 + sent as i32;
        msg[id_at..id_at + 4].copy_from_slice(&id.to_be_bytes());
        if socket.send(&msg).is_ok() {
            outstanding.insert(id);
            sent += 1;
        }
    }
    if inform {
        let drain = Instant::now() + Duration::from_secs(2);
        while !outstanding.is_empty() && Instant::now() < drain {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(id) = response_id(&buf[..n])
                        && outstanding.remove(&id)
                    {
                        acked += 1;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_micros(100)),
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("sent={sent} acked={acked} seconds={seconds:.3}");
}
