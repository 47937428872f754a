//! Station discovery: where the SAN unit sends its notifications.
//!
//! The stations are either listed statically (`HOST[:PORT]`, IPv6 literals
//! in brackets, `[::1]:162`) or published in DNS as SRV records of the
//! service `_dvsan-station._udp` under a domain (RFC 2782):
//!
//! ```text
//! _dvsan-station._udp.san.example. 300 IN SRV 10 60 162 st1.san.example.
//! _dvsan-station._udp.san.example. 300 IN SRV 10 40 162 st2.san.example.
//! _dvsan-station._udp.san.example. 300 IN SRV 20 0  1162 backup.san.example.
//! ```
//!
//! Every station is notified, so [`resolve`] returns the addresses of all SRV
//! targets, not only the preferred one; they come in RFC 2782 order
//! (ascending priority, weighted random order within a priority, see
//! [`order_srv_targets`]) so that a caller that stops early still honours the
//! published preferences. Each target host's addresses are looked up (IPv4
//! first, IPv6 if the host has no IPv4 address) and paired with the port of
//! its SRV record. A target that does not resolve is skipped with a warning;
//! discovery fails only when no station is left. A single target `.` means
//! the domain explicitly offers no station ([`DiscoveryError::NoService`]).
//!
//! DNS is asked through the system configuration (`/etc/resolv.conf`, and
//! `/etc/hosts` for plain host names) unless a nameserver is given, in which
//! case only that server is asked (UDP, TCP when UDP cannot carry the
//! answer). Timeouts are short ([`DNS_TIMEOUT`], [`DNS_ATTEMPTS`], and
//! [`LOOKUP_DEADLINE`] over each whole lookup) so that a dead DNS server
//! gives a clear error within seconds.
//!
//! [`StationDirectory`] keeps the last resolution; the agent calls
//! [`StationDirectory::refresh`] when its sends fail.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::system_conf::read_system_conf;

/// The port a station receives notifications on when none is given.
pub const DEFAULT_STATION_PORT: u16 = 162;

/// The SRV service and protocol labels put in front of the domain.
pub const SRV_SERVICE: &str = "_dvsan-station._udp";

/// How long one DNS query waits for an answer.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times a DNS query is sent in all before giving up (so a dead
/// server fails a lookup after about `DNS_ATTEMPTS * DNS_TIMEOUT`).
pub const DNS_ATTEMPTS: usize = 2;

/// The longest one lookup (SRV, or one host's addresses) may take in all,
/// whatever the resolver's retries and search domains add up to.
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(5);

/// Where the stations come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationSource {
    /// A fixed list of `HOST[:PORT]` (IPv6 literals as `[::1]:162`); the
    /// port defaults to [`DEFAULT_STATION_PORT`].
    Static(Vec<String>),
    /// The SRV records `_dvsan-station._udp.DOMAIN`.
    Srv {
        /// The domain the service is published under, e.g. `san.example`.
        domain: String,
        /// Ask only this DNS server instead of the system's.
        nameserver: Option<SocketAddr>,
    },
}

/// Why the stations could not be found. Every message is one line and names
/// what was looked up and where.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A static station entry is not `HOST[:PORT]`.
    #[error("station {input:?}: {reason} (expected HOST[:PORT], IPv6 as [ADDR]:PORT)")]
    BadAddress {
        /// The entry as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The static list is empty.
    #[error("no station configured: the static station list is empty")]
    NoStations,
    /// The SRV domain is not a valid DNS name.
    #[error("SRV domain {domain:?}: {reason}")]
    BadDomain {
        /// The domain as given.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The system resolver configuration could not be read.
    #[error("DNS resolver configuration ({origin}): {source}")]
    ResolverConfig {
        /// Where the configuration came from.
        origin: String,
        /// The resolver's error.
        #[source]
        source: Box<NetError>,
    },
    /// The DNS server answered that there is no such SRV record.
    #[error(
        "no SRV record {name} (asked {server}): publish the stations there or list them statically"
    )]
    NoSrvRecords {
        /// The SRV name asked for.
        name: String,
        /// The DNS server asked.
        server: String,
    },
    /// The domain publishes the target `.`: it explicitly has no station.
    #[error("{name} has the SRV target \".\": the domain says it offers no dvsan station")]
    NoService {
        /// The SRV name asked for.
        name: String,
    },
    /// The SRV records exist but none of their targets has an address.
    #[error("none of the SRV targets of {name} resolved: {first}")]
    NoTargetResolved {
        /// The SRV name asked for.
        name: String,
        /// The first target's error.
        #[source]
        first: Box<DiscoveryError>,
    },
    /// A DNS lookup failed (timeout, refusal, server failure…).
    #[error("DNS lookup of {what} (asked {server}): {source}")]
    Lookup {
        /// What was looked up: the SRV name or a host name and record kind.
        what: String,
        /// The DNS server asked.
        server: String,
        /// The resolver's error.
        #[source]
        source: Box<NetError>,
    },
    /// A lookup took longer than [`LOOKUP_DEADLINE`].
    #[error("DNS lookup of {what} (asked {server}): no answer within {deadline:?}")]
    Deadline {
        /// What was looked up.
        what: String,
        /// The DNS server asked.
        server: String,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// A host name has no address record.
    #[error("station host {host} has no address (asked {server})")]
    NoAddress {
        /// The host name.
        host: String,
        /// The DNS server asked.
        server: String,
    },
}

/// One SRV record's selection data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Lower is preferred.
    pub priority: u16,
    /// Relative share among targets of the same priority.
    pub weight: u16,
    /// The target host name (`.` for "no service").
    pub target: String,
    /// The port the station listens on.
    pub port: u16,
}

/// Orders SRV targets as RFC 2782 says a client tries them: ascending
/// priority, and within one priority a weighted random order. For each
/// place, the targets not yet placed are listed weight 0 first, a number is
/// drawn uniformly from `0..=sum of their weights`, and the first target
/// whose running weight sum reaches it is placed next. Weight-0 targets thus
/// only win a draw of 0 while weighted targets remain, which is the RFC's
/// "very small chance".
///
/// `draw(n)` must return a number in `0..=n` (uniform for the RFC's
/// distribution); [`resolve`] uses [`fastrand`]. Targets of equal priority and
/// weight 0 keep their relative input order when every draw is 0.
pub fn order_srv_targets(
    targets: Vec<SrvTarget>,
    mut draw: impl FnMut(u32) -> u32,
) -> Vec<SrvTarget> {
    let mut by_priority: BTreeMap<u16, Vec<SrvTarget>> = BTreeMap::new();
    for target in targets {
        by_priority.entry(target.priority).or_default().push(target);
    }
    let mut ordered = Vec::new();
    for (_, group) in by_priority {
        // Weight 0 first, otherwise the input order (a stable sort).
        let mut left = group;
        left.sort_by_key(|t| t.weight != 0);
        while !left.is_empty() {
            let total: u32 = left.iter().map(|t| u32::from(t.weight)).sum();
            let pick = draw(total).min(total);
            let mut running = 0u32;
            let index = left
                .iter()
                .position(|t| {
                    running += u32::from(t.weight);
                    running >= pick
                })
                .unwrap_or(left.len() - 1);
            ordered.push(left.remove(index));
        }
    }
    ordered
}

/// A static station entry split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationHost {
    /// An IP literal, used as is.
    Ip(IpAddr),
    /// A host name to resolve.
    Name(String),
}

impl fmt::Display for StationHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// Parses one static entry: `HOST`, `HOST:PORT`, `IPV4[:PORT]`,
/// `[IPV6]`, `[IPV6]:PORT`, or a bare IPv6 literal (no port possible then).
pub fn parse_station(input: &str) -> Result<(StationHost, u16), DiscoveryError> {
    let bad = |reason: &str| DiscoveryError::BadAddress {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    let port = |text: &str| match text.parse::<u16>() {
        Ok(0) => Err(bad("port 0 is not a port")),
        Ok(port) => Ok(port),
        Err(_) => Err(DiscoveryError::BadAddress {
            input: input.to_owned(),
            reason: format!("port {text:?} is not a number in 1-65535"),
        }),
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| bad("not an IPv6 address between [ ]"))?;
        let port = match after {
            "" => DEFAULT_STATION_PORT,
            _ => port(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("expected ':PORT' after ']'"))?,
            )?,
        };
        return Ok((StationHost::Ip(IpAddr::V6(ip)), port));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((StationHost::Ip(ip), DEFAULT_STATION_PORT));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            return Err(bad("an IPv6 address with a port goes in brackets"));
        }
        Some((host, text)) => (host, port(text)?),
        None => (text, DEFAULT_STATION_PORT),
    };
    if host.is_empty() {
        return Err(bad("no host before ':'"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((StationHost::Ip(ip), port));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(DiscoveryError::BadAddress {
            input: input.to_owned(),
            reason: format!("{c:?} cannot be in a host name"),
        });
    }
    Ok((StationHost::Name(host.to_owned()), port))
}

/// Finds the stations' addresses. See the module documentation.
pub async fn resolve(source: &StationSource) -> Result<Vec<SocketAddr>, DiscoveryError> {
    match source {
        StationSource::Static(entries) => resolve_static(entries).await,
        StationSource::Srv { domain, nameserver } => resolve_srv(domain, *nameserver).await,
    }
}

async fn resolve_static(entries: &[String]) -> Result<Vec<SocketAddr>, DiscoveryError> {
    if entries.is_empty() {
        return Err(DiscoveryError::NoStations);
    }
    // Every entry is checked before anything is looked up.
    let parsed = entries
        .iter()
        .map(|entry| parse_station(entry))
        .collect::<Result<Vec<_>, _>>()?;
    let mut dns: Option<Dns> = None;
    let mut found = Vec::new();
    let mut first_error = None;
    for (host, port) in parsed {
        match host {
            StationHost::Ip(ip) => found.push(SocketAddr::new(ip, port)),
            StationHost::Name(name) => {
                let dns = match &mut dns {
                    Some(dns) => dns,
                    None => dns.insert(Dns::new(None)?),
                };
                match dns.addresses(&name, port).await {
                    Ok(addrs) => found.extend(addrs),
                    Err(e) => {
                        tracing::warn!(station = %name, error = %e, "station host not resolved");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
    }
    match (found.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(dedup(found)),
    }
}

async fn resolve_srv(
    domain: &str,
    nameserver: Option<SocketAddr>,
) -> Result<Vec<SocketAddr>, DiscoveryError> {
    let bad_domain = |reason: String| DiscoveryError::BadDomain {
        domain: domain.to_owned(),
        reason,
    };
    let trimmed = domain.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(bad_domain("empty".into()));
    }
    // Fully qualified: the search list does not apply to the SRV name.
    let name = Name::from_ascii(format!("{SRV_SERVICE}.{trimmed}."))
        .map_err(|e| bad_domain(e.to_string()))?;
    let shown = name.to_string();
    let dns = Dns::new(nameserver)?;

    let lookup = dns
        .bounded(&shown, dns.resolver.srv_lookup(name.clone()))
        .await?
        .map_err(|source| {
            if source.is_no_records_found() {
                DiscoveryError::NoSrvRecords {
                    name: shown.clone(),
                    server: dns.server.clone(),
                }
            } else {
                DiscoveryError::Lookup {
                    what: format!("{shown} SRV"),
                    server: dns.server.clone(),
                    source: Box::new(source),
                }
            }
        })?;
    let targets: Vec<SrvTarget> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(SrvTarget {
                priority: srv.priority,
                weight: srv.weight,
                target: srv.target.to_string(),
                port: srv.port,
            }),
            _ => None,
        })
        .collect();
    if targets.is_empty() {
        return Err(DiscoveryError::NoSrvRecords {
            name: shown,
            server: dns.server,
        });
    }
    // RFC 2782: a single "." target means the service is decidedly not
    // available; a "." among real targets is meaningless and skipped.
    if targets.iter().all(|t| t.target == ".") {
        return Err(DiscoveryError::NoService { name: shown });
    }

    let ordered = order_srv_targets(targets, |n| fastrand::u32(0..=n));
    let mut found = Vec::new();
    let mut first_error = None;
    for target in ordered.into_iter().filter(|t| t.target != ".") {
        match dns.addresses(&target.target, target.port).await {
            Ok(addrs) => found.extend(addrs),
            Err(e) => {
                tracing::warn!(srv = %shown, target = %target.target, error = %e,
                    "station SRV target not resolved");
                first_error.get_or_insert(e);
            }
        }
    }
    match (found.is_empty(), first_error) {
        (true, Some(first)) => Err(DiscoveryError::NoTargetResolved {
            name: shown,
            first: Box::new(first),
        }),
        _ => Ok(dedup(found)),
    }
}

/// Keeps the first occurrence of each address, in order.
fn dedup(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// A resolver and how to name it in errors.
struct Dns {
    resolver: TokioResolver,
    server: String,
}

impl Dns {
    fn new(nameserver: Option<SocketAddr>) -> Result<Self, DiscoveryError> {
        let config_error = |origin: &str, source| DiscoveryError::ResolverConfig {
            origin: origin.to_owned(),
            source: Box::new(source),
        };
        let (config, mut options, server) = match nameserver {
            None => {
                let (config, options) = read_system_conf()
                    .map_err(|source| config_error("/etc/resolv.conf", source))?;
                let servers: Vec<String> = config
                    .name_servers()
                    .iter()
                    .map(|ns| ns.ip.to_string())
                    .collect();
                let server = format!("the system resolver [{}]", servers.join(" "));
                (config, options, server)
            }
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                let mut options = ResolverOpts::default();
                // Only that server: /etc/hosts stays out of it.
                options.use_hosts_file = ResolveHosts::Never;
                let config = ResolverConfig::from_name_servers(vec![server]);
                (config, options, addr.to_string())
            }
        };
        options.timeout = DNS_TIMEOUT;
        // The resolver's `attempts` counts the retries after the first send.
        options.attempts = DNS_ATTEMPTS - 1;
        // One address family per host: a dual-stack station is notified once.
        options.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|source| config_error(&server, source))?;
        Ok(Self { resolver, server })
    }

    /// Runs one lookup under [`LOOKUP_DEADLINE`].
    async fn bounded<T>(
        &self,
        what: &str,
        lookup: impl Future<Output = T>,
    ) -> Result<T, DiscoveryError> {
        tokio::time::timeout(LOOKUP_DEADLINE, lookup)
            .await
            .map_err(|_| DiscoveryError::Deadline {
                what: what.to_owned(),
                server: self.server.clone(),
                deadline: LOOKUP_DEADLINE,
            })
    }

    /// A host's addresses, each with `port`.
    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DiscoveryError> {
        let what = format!("{host} A/AAAA");
        let lookup = self
            .bounded(&what, self.resolver.lookup_ip(host))
            .await?
            .map_err(|source| {
                if source.is_no_records_found() {
                    DiscoveryError::NoAddress {
                        host: host.to_owned(),
                        server: self.server.clone(),
                    }
                } else {
                    DiscoveryError::Lookup {
                        what: what.clone(),
                        server: self.server.clone(),
                        source: Box::new(source),
                    }
                }
            })?;
        let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        if addrs.is_empty() {
            return Err(DiscoveryError::NoAddress {
                host: host.to_owned(),
                server: self.server.clone(),
            });
        }
        Ok(addrs)
    }
}

/// The stations as last resolved, re-resolved on demand.
///
/// A failed refresh keeps the previous list (stale stations beat none) and
/// reports the error. Concurrent refreshes are run one at a time, and a
/// caller that waited for another's successful refresh takes its result
/// instead of asking DNS again.
#[derive(Debug)]
pub struct StationDirectory {
    source: StationSource,
    current: Mutex<Vec<SocketAddr>>,
    refreshing: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

impl StationDirectory {
    /// A directory with nothing resolved yet; call [`Self::refresh`].
    pub fn new(source: StationSource) -> Self {
        Self {
            source,
            current: Mutex::new(Vec::new()),
            refreshing: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }

    /// A directory resolved once, failing as [`resolve`] does.
    pub async fn resolved(source: StationSource) -> Result<Self, DiscoveryError> {
        let directory = Self::new(source);
        directory.refresh().await?;
        Ok(directory)
    }

    /// Where the stations come from.
    pub fn source(&self) -> &StationSource {
        &self.source
    }

    /// The stations as last resolved (empty before the first success).
    pub fn stations(&self) -> Vec<SocketAddr> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves the source again and returns the current list.
    pub async fn refresh(&self) -> Result<Vec<SocketAddr>, DiscoveryError> {
        let seen = self.generation.load(Ordering::Acquire);
        let _running = self.refreshing.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return Ok(self.stations());
        }
        let fresh = resolve(&self.source).await?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(priority: u16, weight: u16, target: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            target: target.into(),
            port: 162,
        }
    }

    fn names(targets: &[SrvTarget]) -> Vec<&str> {
        targets.iter().map(|t| t.target.as_str()).collect()
    }

    /// A draw source that replays fixed numbers and records each range.
    fn replay(
        values: &[u32],
    ) -> (
        impl FnMut(u32) -> u32 + '_,
        std::rc::Rc<std::cell::RefCell<Vec<u32>>>,
    ) {
        let ranges = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = ranges.clone();
        let mut next = values.iter();
        (
            move |n| {
                seen.borrow_mut().push(n);
                *next.next().expect("more draws than expected")
            },
            ranges,
        )
    }

    #[test]
    fn priorities_ascend_whatever_the_draws() {
        let input = vec![t(20, 5, "c"), t(10, 5, "a"), t(30, 0, "d"), t(10, 5, "b")];
        for draw in [0, 5, 10] {
            let out = order_srv_targets(input.clone(), |n| draw.min(n));
            let prios: Vec<u16> = out.iter().map(|t| t.priority).collect();
            assert_eq!(prios, [10, 10, 20, 30]);
        }
    }

    #[test]
    fn running_sum_selects_per_rfc_2782() {
        // Weights 60 and 40: running sums 60, 100.
        let input = vec![t(1, 60, "a"), t(1, 40, "b")];
        let (draw, ranges) = replay(&[61, 0]);
        assert_eq!(names(&order_srv_targets(input.clone(), draw)), ["b", "a"]);
        // First draw over 0..=100, then only "a" is left: 0..=60.
        assert_eq!(*ranges.borrow(), [100, 60]);

        let (draw, _) = replay(&[60, 0]);
        assert_eq!(names(&order_srv_targets(input, draw)), ["a", "b"]);
    }

    #[test]
    fn weight_zero_goes_first_in_the_list_but_wins_only_a_zero_draw() {
        let input = vec![t(1, 10, "heavy"), t(1, 0, "zero")];
        let (draw, ranges) = replay(&[0, 0]);
        assert_eq!(
            names(&order_srv_targets(input.clone(), draw)),
            ["zero", "heavy"]
        );
        assert_eq!(*ranges.borrow(), [10, 10]);

        let (draw, ranges) = replay(&[1, 0]);
        assert_eq!(names(&order_srv_targets(input, draw)), ["heavy", "zero"]);
        assert_eq!(*ranges.borrow(), [10, 0]);
    }

    #[test]
    fn all_weight_zero_keeps_input_order() {
        let input = vec![t(1, 0, "x"), t(1, 0, "y"), t(1, 0, "z")];
        let out = order_srv_targets(input, |n| {
            assert_eq!(n, 0);
            0
        });
        assert_eq!(names(&out), ["x", "y", "z"]);
    }

    #[test]
    fn out_of_range_draw_is_clamped() {
        let input = vec![t(1, 1, "a"), t(1, 1, "b")];
        let out = order_srv_targets(input, |_| u32::MAX);
        assert_eq!(names(&out), ["b", "a"]);
    }

    #[test]
    fn weights_share_first_place_in_proportion() {
        // A seeded generator. Weights 3 and 1 draw from 0..=4 and a draw of
        // 0..=3 picks "three": 4/5 first places (the RFC's inclusive range).
        let mut rng = fastrand::Rng::with_seed(7);
        let input = vec![t(1, 3, "three"), t(1, 1, "one")];
        let runs = 4000;
        let firsts = (0..runs)
            .filter(|_| order_srv_targets(input.clone(), |n| rng.u32(0..=n))[0].target == "three")
            .count();
        let share = firsts as f64 / runs as f64;
        assert!((0.77..0.83).contains(&share), "share {share}");
    }

    #[test]
    fn u16_weights_do_not_overflow() {
        let input: Vec<SrvTarget> = (0..100).map(|i| t(1, u16::MAX, &i.to_string())).collect();
        let out = order_srv_targets(input, |n| n);
        assert_eq!(out.len(), 100);
    }
}
