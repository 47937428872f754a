//! Station discovery against a real authoritative DNS server run in-process
//! (hickory-server on 127.0.0.1, a free UDP port): SRV targets come back in
//! priority order with their own ports, a missing SRV record, a "." target
//! and a dead server each give a clear one-line error, a target without an
//! address is skipped, the directory sees changes on refresh and keeps its
//! list when DNS goes away; and static `HOST[:PORT]` entries parse and
//! resolve without DNS. A unit started with `--station-domain` sends its
//! coldStart to both stations the SRV records name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dvsan_agent::discovery::{
    DEFAULT_STATION_PORT, DiscoveryError, StationDirectory, StationHost, StationSource,
    parse_station, resolve,
};
use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::UdpSocket;

const ZONE: &str = r#"
$ORIGIN san.test.
$TTL 60
@                          IN SOA ns.san.test. admin.san.test. 1 60 60 600 60
@                          IN NS  ns.san.test.
ns                         IN A   127.0.0.1
st1                        IN A   127.0.0.2
st2                        IN A   127.0.0.3
; The preferred station (priority 10) is st2, listed second on purpose.
_dvsan-station._udp        IN SRV 20 0 1162 st1.san.test.
_dvsan-station._udp        IN SRV 10 0 2162 st2.san.test.
; "." alone: no station here.
_dvsan-station._udp.none   IN SRV 0 0 0 .
; A name with records, but no SRV.
plain                      IN A   127.0.0.9
; One target without any address.
_dvsan-station._udp.partial IN SRV 10 0 3162 ghost.san.test.
_dvsan-station._udp.partial IN SRV 20 0 4162 st1.san.test.
; Only targets without an address.
_dvsan-station._udp.lost   IN SRV 10 0 3162 ghost.san.test.
"#;

/// Keeps the server's tasks alive; dropping it stops the server.
struct Dns {
    _server: Server<Catalog>,
    addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler>,
}

async fn dns_server() -> Dns {
    dns_server_with(ZONE).await
}

async fn dns_server_with(zone_text: &str) -> Dns {
    let origin = Name::from_ascii("san.test.").unwrap();
    let (origin, records) = Parser::new(zone_text, None, Some(origin))
        .parse()
        .expect("test zone parses");
    let zone = Arc::new(
        InMemoryZoneHandler::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny)
            .expect("test zone loads"),
    );
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![zone.clone()]);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mut server = Server::new(catalog);
    server.register_socket(socket);
    Dns {
        _server: server,
        addr,
        zone,
    }
}

fn srv(domain: &str, nameserver: SocketAddr) -> StationSource {
    StationSource::Srv {
        domain: domain.into(),
        nameserver: Some(nameserver),
    }
}

fn addr(text: &str) -> SocketAddr {
    SocketAddr::from_str(text).unwrap()
}

/// Every error is one line that says what was looked up.
fn one_line(e: &DiscoveryError) -> String {
    let text = e.to_string();
    assert!(!text.contains('\n'), "multi-line error: {text}");
    text
}

#[tokio::test]
async fn srv_targets_in_priority_order_with_their_ports() {
    let dns = dns_server().await;
    let found = resolve(&srv("san.test", dns.addr)).await.unwrap();
    assert_eq!(found, [addr("127.0.0.3:2162"), addr("127.0.0.2:1162")]);
    // A trailing dot is the same domain.
    let found = resolve(&srv("san.test.", dns.addr)).await.unwrap();
    assert_eq!(found, [addr("127.0.0.3:2162"), addr("127.0.0.2:1162")]);
}

#[tokio::test]
async fn no_srv_record_is_a_clear_error() {
    let dns = dns_server().await;
    for domain in ["plain.san.test", "missing.san.test"] {
        let e = resolve(&srv(domain, dns.addr)).await.unwrap_err();
        let text = one_line(&e);
        assert!(
            matches!(e, DiscoveryError::NoSrvRecords { .. }),
            "{domain}: {text}"
        );
        assert!(
            text.contains(&format!("_dvsan-station._udp.{domain}.")),
            "{text}"
        );
        assert!(text.contains(&dns.addr.to_string()), "{text}");
    }
}

#[tokio::test]
async fn dot_target_means_no_service() {
    let dns = dns_server().await;
    let e = resolve(&srv("none.san.test", dns.addr)).await.unwrap_err();
    let text = one_line(&e);
    assert!(matches!(e, DiscoveryError::NoService { .. }), "{text}");
    assert!(text.contains("offers no dvsan station"), "{text}");
}

#[tokio::test]
async fn target_without_address_is_skipped_unless_it_is_the_only_one() {
    let dns = dns_server().await;
    let found = resolve(&srv("partial.san.test", dns.addr)).await.unwrap();
    assert_eq!(found, [addr("127.0.0.2:4162")]);

    let e = resolve(&srv("lost.san.test", dns.addr)).await.unwrap_err();
    let text = one_line(&e);
    assert!(
        matches!(e, DiscoveryError::NoTargetResolved { .. }),
        "{text}"
    );
    assert!(text.contains("ghost.san.test"), "{text}");
}

/// Resolves through a nameserver that never answers, within a bound.
async fn dead_lookup(nameserver: SocketAddr) -> String {
    let started = Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(15),
        resolve(&srv("san.test", nameserver)),
    )
    .await
    .expect("resolve gives up by itself")
    .unwrap_err();
    let took = started.elapsed();
    let text = one_line(&e);
    assert!(took < Duration::from_secs(6), "took {took:?}: {text}");
    assert!(text.contains(&nameserver.to_string()), "{text}");
    assert!(text.contains("_dvsan-station._udp.san.test."), "{text}");
    text
}

#[tokio::test]
async fn dead_nameserver_errors_within_bounded_time() {
    // Bound but never answering: every query times out.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Nothing bound at all (the port was free a moment ago).
    let closed = {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.local_addr().unwrap()
    };
    let (silent_text, closed_text) = tokio::join!(
        dead_lookup(silent.local_addr().unwrap()),
        dead_lookup(closed)
    );
    assert!(silent_text.contains("timed out"), "{silent_text}");
    assert!(closed_text.contains("timed out"), "{closed_text}");
}

#[tokio::test]
async fn directory_refresh_follows_dns_and_keeps_the_list_when_dns_dies() {
    let dns = dns_server().await;
    let directory = StationDirectory::new(srv("san.test", dns.addr));
    assert!(directory.stations().is_empty());

    let first = directory.refresh().await.unwrap();
    assert_eq!(first, [addr("127.0.0.3:2162"), addr("127.0.0.2:1162")]);
    assert_eq!(directory.stations(), first);

    // A third station appears, at the lowest priority.
    let st3 = Name::from_ascii("st3.san.test.").unwrap();
    let owner = Name::from_ascii("_dvsan-station._udp.san.test.").unwrap();
    assert!(
        dns.zone
            .upsert(
                Record::from_rdata(st3.clone(), 60, RData::A(A::new(127, 0, 0, 4))),
                2
            )
            .await
    );
    assert!(
        dns.zone
            .upsert(
                Record::from_rdata(owner, 60, RData::SRV(SRV::new(30, 0, 5162, st3))),
                2
            )
            .await
    );
    let second = directory.refresh().await.unwrap();
    assert_eq!(
        second,
        [
            addr("127.0.0.3:2162"),
            addr("127.0.0.2:1162"),
            addr("127.0.0.4:5162")
        ]
    );

    // The server goes away: the refresh fails, the last list stays.
    drop(dns);
    let e = directory.refresh().await.unwrap_err();
    one_line(&e);
    assert_eq!(directory.stations(), second);
}

#[test]
fn static_entries_parse() {
    let ok = |input: &str, host: StationHost, port: u16| {
        assert_eq!(parse_station(input).unwrap(), (host, port), "{input}");
    };
    let name = |n: &str| StationHost::Name(n.into());
    let v4 = |a, b, c, d| StationHost::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
    ok("station", name("station"), DEFAULT_STATION_PORT);
    ok("st1.san.test:1162", name("st1.san.test"), 1162);
    ok(" station:162 ", name("station"), 162);
    ok("192.0.2.7", v4(192, 0, 2, 7), 162);
    ok("192.0.2.7:10162", v4(192, 0, 2, 7), 10162);
    ok(
        "[::1]:1162",
        StationHost::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        1162,
    );
    ok(
        "[::1]",
        StationHost::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        162,
    );
    ok("::1", StationHost::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), 162);

    for (input, says) in [
        ("host:notaport", "\"notaport\" is not a number"),
        ("host:70000", "\"70000\" is not a number"),
        ("host:0", "port 0"),
        ("host:", "\"\" is not a number"),
        ("", "empty"),
        (":162", "no host"),
        ("[::1", "no closing ']'"),
        ("[::1]162", "':PORT'"),
        ("[st1]:162", "not an IPv6 address"),
        ("fe80::1::2:162", "brackets"),
        ("bad host:162", "cannot be in a host name"),
    ] {
        let e = parse_station(input).unwrap_err();
        let text = one_line(&e);
        assert!(matches!(e, DiscoveryError::BadAddress { .. }), "{text}");
        assert!(text.contains(says), "{input:?}: {text}");
        assert!(text.contains(&format!("{input:?}")), "{text}");
    }
}

#[tokio::test]
async fn static_sources_resolve_without_dns() {
    let source =
        |entries: &[&str]| StationSource::Static(entries.iter().map(|s| s.to_string()).collect());

    let found = resolve(&source(&["[::1]:1162", "127.0.0.1", "192.0.2.7:10162"]))
        .await
        .unwrap();
    assert_eq!(
        found,
        [
            addr("[::1]:1162"),
            addr("127.0.0.1:162"),
            addr("192.0.2.7:10162")
        ]
    );

    // "localhost" is answered locally (RFC 6761), never sent to a server.
    let found = resolve(&source(&["localhost", "localhost:1162"]))
        .await
        .unwrap();
    assert!(found.contains(&addr("127.0.0.1:162")), "{found:?}");
    assert!(found.contains(&addr("127.0.0.1:1162")), "{found:?}");

    // One bad entry fails the whole list, before any lookup.
    let e = resolve(&source(&["127.0.0.1", "host:notaport"]))
        .await
        .unwrap_err();
    assert!(one_line(&e).contains("host:notaport"));

    let e = resolve(&source(&[])).await.unwrap_err();
    assert!(matches!(e, DiscoveryError::NoStations), "{e}");
}

/// The unit's coldStart goes to every station the SRV records name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_srv_targets_get_the_units_cold_start() {
    use dvsan_agent::daemon::{AgentSettings, DiskArg, RunningAgent};
    use dvsan_snmp::{EngineIdentity, NotifierConfig, ReceiverConfig, TrapReceiver, UsmUser};

    let user = UsmUser::sha256_aes("dvsanadmin", "auth-pass-123", "priv-pass-456").unwrap();
    let mut receivers = Vec::new();
    for ip in ["127.0.0.2", "127.0.0.3"] {
        receivers.push(
            TrapReceiver::bind(ReceiverConfig {
                listen: format!("{ip}:0").parse().unwrap(),
                engine: EngineIdentity::ephemeral().unwrap(),
                users: vec![user.clone()],
                communities: vec![],
                recv_buffer: 1 << 20,
            })
            .await
            .unwrap(),
        );
    }
    let zone = format!(
        "$ORIGIN san.test.\n$TTL 60\n\
         @ IN SOA ns.san.test. admin.san.test. 1 60 60 600 60\n\
         @ IN NS ns.san.test.\nns IN A 127.0.0.1\n\
         st1 IN A 127.0.0.2\nst2 IN A 127.0.0.3\n\
         _dvsan-station._udp IN SRV 10 0 {} st1.san.test.\n\
         _dvsan-station._udp IN SRV 20 0 {} st2.san.test.\n",
        receivers[0].local_addr().port(),
        receivers[1].local_addr().port()
    );
    let dns = dns_server_with(&zone).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = AgentSettings {
        advertise_host: None,
        maintenance: Default::default(),
        nbd_tls: None,
        name: Some("unit-srv".into()),
        data_dir: dir.path().join("data"),
        disks: (1..=3)
            .map(|i| DiskArg {
                path: dir.path().join(format!("d{i}.img")),
                size: Some(8 << 20),
            })
            .collect(),
        snmp_listen: addr("127.0.0.1:0"),
        nbd_listen: addr("127.0.0.1:0"),
        stations: Some(srv("san.test", dns.addr)),
        stations_text: "_dvsan-station._udp.san.test".into(),
        trap_sinks: vec![],
        trap_community: "public".into(),
        user,
        read_community: None,
        write_community: None,
        low_threshold: 10,
        watch_interfaces: vec![],
        sysfs_net: "/sys/class/net".into(),
        inform: NotifierConfig::default(),
        shutdown_wait: Duration::from_secs(2),
    };
    let mut agent = RunningAgent::start(settings).await.unwrap();
    for r in &receivers {
        let n = tokio::time::timeout(Duration::from_secs(10), r.recv())
            .await
            .expect("a coldStart at every station")
            .unwrap();
        assert_eq!(n.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.1");
        assert!(n.inform);
    }
    let outcomes = agent.cold_start().await;
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o.delivered), "{outcomes:?}");
    // And the linkDown at shutdown, acknowledged by both (a receiver
    // acknowledges while it is being read).
    let receive = async {
        let mut oids = Vec::new();
        for r in &receivers {
            let n = tokio::time::timeout(Duration::from_secs(5), r.recv())
                .await
                .expect("a linkDown at every station")
                .unwrap();
            oids.push(n.trap_oid.to_string());
        }
        oids
    };
    let (down, oids) = tokio::join!(agent.shutdown(), receive);
    assert_eq!(oids, ["1.3.6.1.6.3.1.1.5.3"; 2]);
    assert_eq!(down.iter().filter(|o| o.delivered).count(), 2, "{down:?}");
}
