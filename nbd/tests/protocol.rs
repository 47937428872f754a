//! Protocol behaviour through the crate's own client half and hand-made
//! bytes: pipelining, structured and simple replies, access policy,
//! unknown options, malformed and hostile input.

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, BytesMut};
use common::{
    EXPORT, TestServer, haggling, option, option_reply, pseudo_random, raw, read_to_close,
};
use dvsan_nbd::client::{self, ClientOptions};
use dvsan_nbd::codec::{self, ReplyHeader, Request};
use dvsan_nbd::connection::Connection;
use dvsan_nbd::consts::*;
use dvsan_nbd::{Client, Error, Export, ExportFlags, FileExport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn pipelined_round_trips_structured() {
    let s = TestServer::start(8 << 20);
    let c = Arc::new(Client::connect(s.addr, EXPORT).await.expect("connect"));
    assert!(c.info().structured);
    assert_eq!(c.info().base_allocation, Some(1));
    assert_eq!(c.info().size, 8 << 20);
    assert!(c.info().flags.contains(TransmissionFlags::CAN_MULTI_CONN));

    // 64 writes of 64 KiB in flight at once, then 64 reads.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64u64 {
        let c = c.clone();
        tasks.spawn(async move { c.write(i * 65536, &pseudo_random(65536, i), false).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task").expect("write");
    }
    c.flush().await.expect("flush");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64u64 {
        let c = c.clone();
        tasks.spawn(async move { (i, c.read(i * 65536, 65536).await) });
    }
    while let Some(r) = tasks.join_next().await {
        let (i, data) = r.expect("task");
        assert_eq!(data.expect("read"), pseudo_random(65536, i), "block {i}");
    }
    let file = std::fs::read(&s.path).expect("backing");
    assert_eq!(&file[..65536], &pseudo_random(65536, 0)[..]);

    // Zeroes, trim, cache, block status.
    c.write_zeroes(0, 65536, false, false)
        .await
        .expect("zeroes");
    assert!(
        c.read(0, 65536)
            .await
            .expect("read")
            .iter()
            .all(|&b| b == 0)
    );
    c.write_zeroes(65536, 65536, true, false)
        .await
        .expect("no-hole zeroes");
    c.trim(2 * 65536, 65536).await.expect("trim");
    c.cache(0, 4096).await.expect("cache");
    let ext = c.block_status(0, 8 << 20).await.expect("block status");
    assert_eq!(ext.iter().map(|e| e.length).sum::<u64>(), 8 << 20);
    // The tail was never written: a hole that reads as zeroes.
    let last = ext.last().expect("extents");
    assert_eq!(last.flags, StateFlags::HOLE | StateFlags::ZERO);

    let st = s.stats.snapshot();
    assert_eq!(st.write_ops, 64);
    assert!(st.read_ops >= 65);
    let c = Arc::into_inner(c).expect("sole owner");
    c.disconnect().await.expect("disconnect");
}

/// Sends every `(offset, len)` read at once and checks each answer
/// against `image`.
async fn reads_in_flight(c: &Arc<Client>, image: &[u8], reads: impl Iterator<Item = (u64, u64)>) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0;
    for (offset, len) in reads {
        let c = c.clone();
        tasks.spawn(async move { (offset, len, c.read(offset, len as u32).await) });
        sent += 1;
    }
    let mut answered = 0;
    while let Some(r) = tasks.join_next().await {
        let (offset, len, data) = r.expect("task");
        let o = offset as usize;
        assert_eq!(
            data.expect("read"),
            &image[o..o + len as usize],
            "{len} bytes at {offset}"
        );
        answered += 1;
    }
    assert_eq!(answered, sent);
}

/// Small replies are sent in combined batches by whichever worker holds
/// the socket, big ones by their own worker: a mix of both, many in flight
/// at once, all come back whole and to the right caller.
#[tokio::test]
async fn many_small_and_big_replies_in_flight_all_arrive_intact() {
    let s = TestServer::start(4 << 20);
    let c = Arc::new(Client::connect(s.addr, EXPORT).await.expect("connect"));
    let image = pseudo_random(4 << 20, 7);
    c.write(0, &image, false).await.expect("write image");
    // Every 16th a 128 KiB read, the rest 512 B to 4 KiB, spread over the
    // export.
    let reads = (0..1024u64).map(|i| {
        let len = if i % 16 == 0 {
            128 << 10
        } else {
            512 * (1 + i % 8)
        };
        ((i * 40_961) % ((4 << 20) - len), len)
    });
    reads_in_flight(&c, &image, reads).await;
    let c = Arc::into_inner(c).expect("sole owner");
    c.disconnect().await.expect("disconnect");
}

/// A file export that answers `read_resident` for every other 64 KiB
/// stretch and refuses it (after scribbling over the buffer, which the
/// contract allows) for the rest, counting both.
struct HalfResident {
    file: FileExport,
    answered: AtomicU64,
    refused: AtomicU64,
}

impl Export for HalfResident {
    fn size(&self) -> u64 {
        self.file.size()
    }
    fn flags(&self) -> ExportFlags {
        self.file.flags()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_at(buf, offset)
    }
    fn read_resident(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        if (offset >> 16).is_multiple_of(2) {
            self.answered.fetch_add(1, Ordering::Relaxed);
            self.file.read_at(buf, offset).map(|()| true)
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            buf.fill(0xee);
            Ok(false)
        }
    }
    fn write_at(&self, buf: &[u8], offset: u64, fua: bool) -> io::Result<()> {
        self.file.write_at(buf, offset, fua)
    }
    fn flush(&self) -> io::Result<()> {
        self.file.flush()
    }
    fn trim(&self, offset: u64, len: u64, fua: bool) -> io::Result<()> {
        self.file.trim(offset, len, fua)
    }
    fn write_zeroes(&self, o: u64, l: u64, no_hole: bool, fast: bool, fua: bool) -> io::Result<()> {
        self.file.write_zeroes(o, l, no_hole, fast, fua)
    }
}

impl HalfResident {
    fn open(path: &std::path::Path) -> Arc<HalfResident> {
        Arc::new(HalfResident {
            file: FileExport::open(path, false).expect("open export"),
            answered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }
}

/// Writes an image through `c`, then reads it back in a mix of small
/// READs (which `e` answers from memory or refuses to) and big ones (never
/// asked that way), many in flight: all come back whole, and both ways
/// were taken.
async fn resident_and_device_reads(c: Client, e: &HalfResident, size: usize) {
    let c = Arc::new(c);
    let image = pseudo_random(size, 11);
    c.write(0, &image, false).await.expect("write image");
    // Every 32nd a 256 KiB read, the rest 512 B to 16 KiB, some of them
    // across a 64 KiB boundary.
    let reads = (0..1024u64).map(|i| {
        let len = if i % 32 == 0 {
            256 << 10
        } else {
            512 * (1 + i % 32)
        };
        ((i * 24_593) % (size as u64 - len), len)
    });
    reads_in_flight(&c, &image, reads).await;
    let (answered, refused) = (
        e.answered.load(Ordering::Relaxed),
        e.refused.load(Ordering::Relaxed),
    );
    assert!(
        answered > 100 && refused > 100,
        "{answered} answered from memory, {refused} not"
    );
    let c = Arc::into_inner(c).expect("sole owner");
    c.disconnect().await.expect("disconnect");
}

/// Small READs whose data the export has in memory are answered by the
/// worker reading the socket, the others by a worker that may wait on the
/// device (the worker-thread path of TCP connections in the clear).
#[tokio::test]
async fn reads_answered_from_memory_and_from_the_device_all_arrive_intact() {
    let size = 4usize << 20;
    let export = Arc::new(std::sync::OnceLock::new());
    let s = {
        let export = export.clone();
        TestServer::start_export(size as u64, move |path| {
            let e = HalfResident::open(path);
            let _ = export.set(e.clone());
            e
        })
    };
    let c = Client::connect(s.addr, EXPORT).await.expect("connect");
    resident_and_device_reads(c, export.get().expect("export made"), size).await;
}

/// The same on the async path that TLS connections and other byte streams
/// take: small READs from memory are answered by the task reading the
/// stream, the rest on the blocking pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_memory_and_from_the_device_arrive_intact_on_the_async_path() {
    let size = 4usize << 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("disk.img");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(size as u64))
        .expect("backing file");
    let e = HalfResident::open(&path);
    let mut registry = dvsan_nbd::StaticRegistry::new();
    registry.add(EXPORT, "test disk", e.clone(), dvsan_nbd::Access::Everyone);
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let peer = dvsan_nbd::PeerAddr::Tcp("127.0.0.1:1".parse().unwrap());
    let server = tokio::spawn(dvsan_nbd::serve_connection(
        theirs,
        peer,
        Arc::new(registry),
    ));
    let c = Client::handshake(ours, &ClientOptions::new(EXPORT))
        .await
        .expect("handshake");
    resident_and_device_reads(c, &e, size).await;
    server.await.expect("server task").expect("served");
}

/// A sequential writer's WRITEs, many in flight, may reach the export
/// joined into larger writes: every one is answered, the bytes land where
/// each said, and one running past the end is refused on its own.
#[tokio::test]
async fn contiguous_writes_in_flight_all_land_and_a_bad_one_is_refused_alone() {
    let size = 4u64 << 20;
    let s = TestServer::start(size);
    let c = Arc::new(Client::connect(s.addr, EXPORT).await.expect("connect"));
    let image = pseudo_random(size as usize, 21);
    let mut tasks = tokio::task::JoinSet::new();
    // 4 KiB to 60 KiB pieces end to end, every 50th with FUA.
    let mut at = 0u64;
    let mut i = 0u64;
    while at < size {
        let len = (4096 * (1 + i % 15)).min(size - at);
        let (c, data) = (c.clone(), image[at as usize..(at + len) as usize].to_vec());
        let fua = i % 50 == 49;
        tasks.spawn(async move { c.write(at, &data, fua).await });
        at += len;
        i += 1;
    }
    // Continues the run but ends past the export.
    {
        let c = c.clone();
        tasks.spawn(async move {
            match c.write(size - 4096, &[1u8; 8192], false).await {
                Err(_) => Ok(()),
                Ok(()) => panic!("a write past the end succeeded"),
            }
        });
    }
    let mut answered = 0;
    while let Some(r) = tasks.join_next().await {
        r.expect("task").expect("write");
        answered += 1;
    }
    assert_eq!(answered, i + 1);
    c.flush().await.expect("flush");
    assert_eq!(c.read(0, size as u32).await.expect("read"), image);
    assert_eq!(s.stats.snapshot().write_ops, i);
    let c = Arc::into_inner(c).expect("sole owner");
    c.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn a_call_dropped_mid_send_closes_the_client_instead_of_corrupting_the_stream() {
    let s = TestServer::start(32 << 20);
    let c = Client::connect(s.addr, EXPORT).await.expect("connect");
    // Far more than a socket buffer takes: the first poll sends part of the
    // request, then the zero timeout drops the call.
    let big = vec![0xee; 31 << 20];
    let r = tokio::time::timeout(std::time::Duration::ZERO, c.write(0, &big, false)).await;
    assert!(r.is_err(), "the write was cut short");
    assert!(c.is_closed());
    // Nothing more goes out on this stream: had the next request followed
    // the half-sent one, the server would have taken it as write data.
    assert!(c.write(0, &[0x55; 4096], false).await.is_err());
    drop(c);
    let fresh = Client::connect(s.addr, EXPORT).await.expect("reconnect");
    assert!(!fresh.is_closed());
    let data = fresh.read(0, 1 << 20).await.expect("read");
    assert!(
        data.iter().all(|&b| b == 0),
        "no partial request was applied"
    );
}

#[tokio::test]
async fn simple_replies_when_not_negotiated() {
    let s = TestServer::start(1 << 20);
    let opts = ClientOptions {
        structured: false,
        block_status: false,
        ..ClientOptions::new(EXPORT)
    };
    let c = Client::handshake(raw(s.addr).await, &opts)
        .await
        .expect("handshake");
    assert!(!c.info().structured);
    c.write(4096, &[7; 4096], true).await.expect("write");
    assert_eq!(c.read(4096, 4096).await.expect("read"), vec![7; 4096]);
    // Errors arrive as simple replies too, and the session goes on.
    match c.read(1 << 20, 1).await {
        Err(Error::Request { errno, .. }) => assert_eq!(errno, NBD_EINVAL),
        other => panic!("expected EINVAL, got {other:?}"),
    }
    // No metadata context: block status is refused.
    match c.block_status(0, 4096).await {
        Err(Error::Request { errno, .. }) => assert_eq!(errno, NBD_EINVAL),
        other => panic!("expected EINVAL, got {other:?}"),
    }
    assert_eq!(c.read(4096, 1).await.expect("read"), vec![7]);
}

#[tokio::test]
async fn out_of_range_requests_get_errors_and_the_session_continues() {
    let s = TestServer::start(1 << 20);
    let c = Client::connect(s.addr, EXPORT).await.expect("connect");
    let errno = |r: dvsan_nbd::Result<()>| match r {
        Err(Error::Request { errno, .. }) => errno,
        other => panic!("expected an error reply, got {other:?}"),
    };
    assert_eq!(errno(c.read((1 << 20) - 1, 2).await.map(drop)), NBD_EINVAL);
    assert_eq!(errno(c.read(u64::MAX, 1).await.map(drop)), NBD_EINVAL);
    assert_eq!(errno(c.write(1 << 20, &[1], false).await), NBD_ENOSPC);
    assert_eq!(
        errno(c.write_zeroes(u64::MAX - 1, 4, false, false).await),
        NBD_ENOSPC
    );
    assert_eq!(
        errno(c.block_status(1 << 20, 1).await.map(drop)),
        NBD_EINVAL
    );
    // A read over the 32 MiB cap is refused before any allocation.
    assert_eq!(errno(c.read(0, u32::MAX).await.map(drop)), NBD_EOVERFLOW);
    // Writes to the read-only export: EPERM.
    let ro = Client::connect(s.addr, "ro").await.expect("connect ro");
    assert!(ro.info().flags.contains(TransmissionFlags::READ_ONLY));
    assert_eq!(errno(ro.write(0, &[1], false).await), NBD_EPERM);
    // Still serving.
    c.write(0, b"alive", false).await.expect("write");
    assert_eq!(c.read(0, 5).await.expect("read"), b"alive");
    assert!(s.stats.snapshot().errors >= 6);
}

#[tokio::test]
async fn peer_not_on_the_access_list_is_refused_with_policy() {
    let s = TestServer::start_with(1 << 20, common::only("127.0.0.1"));
    let local: SocketAddr = "127.0.0.2:0".parse().expect("addr");
    match Client::connect_from(local, s.addr, EXPORT).await {
        Err(Error::OptionRefused { option, reply, .. }) => {
            assert_eq!(option, NBD_OPT_GO);
            assert_eq!(reply, NBD_REP_ERR_POLICY);
        }
        Err(e) => panic!("expected NBD_REP_ERR_POLICY, got {e}"),
        Ok(_) => panic!("127.0.0.2 was let in"),
    }
    // From 127.0.0.1 the same export opens.
    let c = Client::connect(s.addr, EXPORT).await.expect("allowed peer");
    assert_eq!(c.info().size, 1 << 20);

    // NBD_OPT_EXPORT_NAME cannot carry an error: the server hangs up.
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(local).expect("bind 127.0.0.2");
    let mut conn = Connection::new(sock.connect(s.addr).await.expect("connect"));
    conn.read_decoded(codec::decode_greeting)
        .await
        .expect("greeting");
    let mut out = BytesMut::new();
    codec::encode_client_flags(
        &mut out,
        ClientFlags::FIXED_NEWSTYLE | ClientFlags::NO_ZEROES,
    );
    codec::encode_option(&mut out, NBD_OPT_EXPORT_NAME, EXPORT.as_bytes());
    conn.write_all(&out).await.expect("send");
    let (mut stream, rest) = conn.into_parts();
    assert!(rest.is_empty());
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn unknown_option_gets_unsup_and_haggling_continues() {
    let s = TestServer::start(1 << 20);
    let mut conn = haggling(s.addr).await;
    option(&mut conn, OptType(0x1234), b"whatever").await;
    assert_eq!(
        option_reply(&mut conn).await.1,
        NBD_REP_ERR_UNSUP,
        "unknown option"
    );
    option(&mut conn, NBD_OPT_STARTTLS, &[]).await;
    assert_eq!(
        option_reply(&mut conn).await.1,
        NBD_REP_ERR_POLICY,
        "no TLS"
    );
    // Malformed GO data: invalid, and still haggling.
    option(&mut conn, NBD_OPT_GO, &[0, 0, 0, 9, b'x']).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ERR_INVALID);
    // Meta contexts before structured replies: invalid.
    let mut q = BytesMut::new();
    codec::encode_meta_context_request(&mut q, EXPORT, &[BASE_ALLOCATION]);
    option(&mut conn, NBD_OPT_SET_META_CONTEXT, &q).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ERR_INVALID);
    // Unknown export: NBD_REP_ERR_UNKNOWN.
    let mut go = BytesMut::new();
    codec::encode_info_request(&mut go, "nope", &[]);
    option(&mut conn, NBD_OPT_INFO, &go).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ERR_UNKNOWN);
    // LIST_META_CONTEXT after structured replies lists base:allocation.
    option(&mut conn, NBD_OPT_STRUCTURED_REPLY, &[]).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ACK);
    let mut q = BytesMut::new();
    codec::encode_meta_context_request(&mut q, EXPORT, &[]);
    option(&mut conn, NBD_OPT_LIST_META_CONTEXT, &q).await;
    let (_, rep, data) = option_reply(&mut conn).await;
    assert_eq!(rep, NBD_REP_META_CONTEXT);
    assert_eq!(
        codec::parse_meta_context_reply(&data).expect("ctx").1,
        BASE_ALLOCATION
    );
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ACK);
    // And the session still reaches transmission.
    let mut go = BytesMut::new();
    codec::encode_info_request(&mut go, EXPORT, &[NBD_INFO_NAME]);
    option(&mut conn, NBD_OPT_GO, &go).await;
    let mut infos = Vec::new();
    loop {
        let (opt, rep, data) = option_reply(&mut conn).await;
        assert_eq!(opt, NBD_OPT_GO);
        if rep == NBD_REP_ACK {
            break;
        }
        assert_eq!(rep, NBD_REP_INFO);
        infos.push(codec::parse_info_reply(&data).expect("info"));
        assert!(infos.len() < 10);
    }
    assert!(infos.contains(&codec::Info::Name(EXPORT.into())));
    assert!(matches!(
        infos[0],
        codec::Info::Export { size: 1048576, .. }
    ));
}

#[tokio::test]
async fn abort_is_acknowledged() {
    let s = TestServer::start(1 << 20);
    let mut conn = haggling(s.addr).await;
    option(&mut conn, NBD_OPT_ABORT, &[]).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ACK);
    let (mut stream, _) = conn.into_parts();
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn malformed_handshakes_close_and_the_server_keeps_serving() {
    let s = TestServer::start(1 << 20);
    // Truncated: two bytes of client flags, then gone.
    let mut t = raw(s.addr).await;
    t.write_all(&[0, 0]).await.expect("write");
    drop(t);
    // Unknown client flags: closed after the greeting.
    let mut t = raw(s.addr).await;
    t.write_all(&[0, 0, 0, 0x80]).await.expect("write");
    assert_eq!(read_to_close(&mut t).await.len(), 18, "greeting only");
    // Bad option magic.
    let mut conn = haggling(s.addr).await;
    conn.write_all(&[0xee; 16]).await.expect("write");
    let (mut stream, _) = conn.into_parts();
    assert!(read_to_close(&mut stream).await.is_empty());
    // Option data over the cap: NBD_REP_ERR_TOO_BIG, then haggling goes on.
    let mut conn = haggling(s.addr).await;
    option(&mut conn, NBD_OPT_LIST, &vec![0u8; 100 * 1024]).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ERR_TOO_BIG);
    option(&mut conn, NBD_OPT_LIST, &[]).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_SERVER);
    // A 4 GiB option length: hung up on, nothing allocated.
    let mut conn = haggling(s.addr).await;
    let mut out = BytesMut::new();
    out.put_u64(NBD_OPTS_MAGIC);
    out.put_u32(NBD_OPT_GO.0);
    out.put_u32(u32::MAX);
    conn.write_all(&out).await.expect("write");
    let (mut stream, _) = conn.into_parts();
    assert!(read_to_close(&mut stream).await.is_empty());

    let c = Client::connect(s.addr, EXPORT)
        .await
        .expect("still serving");
    c.write(0, b"ok", false).await.expect("write");
}

/// Transmission on a hand-driven connection.
async fn transmission(addr: SocketAddr) -> (TcpStream, BytesMut) {
    let mut conn = Connection::new(raw(addr).await);
    let info = client::negotiate(&mut conn, &ClientOptions::new(EXPORT))
        .await
        .expect("negotiate");
    assert!(info.structured);
    conn.into_parts()
}

#[tokio::test]
async fn four_gib_write_gets_an_error_and_a_close() {
    let s = TestServer::start(1 << 20);
    let (mut stream, _) = transmission(s.addr).await;
    let mut out = BytesMut::new();
    codec::encode_request(
        &mut out,
        &Request {
            flags: CmdFlags::empty(),
            cmd: NBD_CMD_WRITE,
            handle: 77,
            offset: 0,
            len: u32::MAX,
        },
    );
    stream.write_all(&out).await.expect("write header");
    let reply = read_to_close(&mut stream).await;
    let (h, n) = codec::decode_reply_header(&reply).expect("reply");
    match h {
        ReplyHeader::Chunk {
            ty, handle, flags, ..
        } => {
            assert_eq!((ty, handle), (NBD_REPLY_TYPE_ERROR, 77));
            assert!(flags.contains(ReplyFlags::DONE));
        }
        other => panic!("expected an error chunk, got {other:?}"),
    }
    assert_eq!(
        codec::parse_error_payload(&reply[n..]).expect("payload").0,
        NBD_EOVERFLOW
    );
    let c = Client::connect(s.addr, EXPORT)
        .await
        .expect("still serving");
    c.read(0, 1).await.expect("read");
}

/// A whole WRITE followed by one that continues it but is cut off: the
/// first is written and answered, then the connection closes; the bytes
/// of the cut one never reach the export.
#[tokio::test]
async fn a_write_cut_off_behind_a_whole_one_closes_after_answering_the_first() {
    let s = TestServer::start(1 << 20);
    let (mut stream, _) = transmission(s.addr).await;
    let mut out = BytesMut::new();
    let write = |handle, offset| Request {
        flags: CmdFlags::empty(),
        cmd: NBD_CMD_WRITE,
        handle,
        offset,
        len: 4096,
    };
    codec::encode_request(&mut out, &write(1, 0));
    out.extend_from_slice(&[0xa1; 4096]);
    codec::encode_request(&mut out, &write(2, 4096));
    out.extend_from_slice(&[0xb2; 1000]);
    // All of it in one send, then the write side closed.
    stream.write_all(&out).await.expect("send");
    stream.shutdown().await.expect("shutdown");
    let reply = read_to_close(&mut stream).await;
    let (h, n) = codec::decode_reply_header(&reply).expect("a reply");
    assert!(
        matches!(h, ReplyHeader::Simple { handle: 1, error, .. } if error == NBD_SUCCESS)
            || matches!(h, ReplyHeader::Chunk { handle: 1, ty, .. } if ty == NBD_REPLY_TYPE_NONE),
        "{h:?}"
    );
    assert_eq!(reply.len(), n, "nothing after the first reply");
    let file = std::fs::read(&s.path).expect("backing");
    assert!(file[..4096].iter().all(|&b| b == 0xa1));
    assert!(file[4096..8192].iter().all(|&b| b == 0));
}

#[tokio::test]
async fn bad_request_magic_and_unknown_commands() {
    let s = TestServer::start(1 << 20);
    // Unknown command and invalid flags: EINVAL, the session goes on.
    let (mut stream, _) = transmission(s.addr).await;
    let mut out = BytesMut::new();
    for (cmd, flags, handle) in [
        (Cmd(42), CmdFlags::empty(), 1),
        (NBD_CMD_FLUSH, CmdFlags::REQ_ONE, 2),
    ] {
        codec::encode_request(
            &mut out,
            &Request {
                flags,
                cmd,
                handle,
                offset: 0,
                len: 0,
            },
        );
    }
    stream.write_all(&out).await.expect("send");
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match codec::decode_reply_header(&buf) {
            Ok((
                ReplyHeader::Chunk {
                    ty, handle, len, ..
                },
                n,
            )) => {
                assert_eq!(ty, NBD_REPLY_TYPE_ERROR);
                let end = n + len as usize;
                if buf.len() < end {
                    assert!(stream.read_buf(&mut buf).await.expect("read") > 0);
                    continue;
                }
                let (errno, _) = codec::parse_error_payload(&buf[n..end]).expect("payload");
                assert_eq!(errno, NBD_EINVAL);
                seen.push(handle);
                let _ = buf.split_to(end);
            }
            Ok((other, _)) => panic!("unexpected {other:?}"),
            Err(codec::FrameError::Incomplete) => {
                assert!(stream.read_buf(&mut buf).await.expect("read") > 0);
            }
            Err(e) => panic!("{e}"),
        }
    }
    seen.sort();
    assert_eq!(seen, [1, 2]);
    // Garbage instead of a request: the server hangs up.
    stream.write_all(&[0x55; 28]).await.expect("send");
    assert!(read_to_close(&mut stream).await.is_empty());
    let c = Client::connect(s.addr, EXPORT)
        .await
        .expect("still serving");
    c.flush().await.expect("flush");
}
