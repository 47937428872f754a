//! The client host's data path for `dvsan volume attach`: a volume whose
//! extents live on several units, served as one local NBD export so that
//! qemu, nbdcopy or the kernel's nbd-client can use it.
//!
//! The extents arrive as `nbd://HOST[:PORT]/EXPORT` URIs with sizes (from
//! the station); they are parsed here, dvsan-nbd's concat export talks to
//! each unit directly, and the export is served on a local TCP address or
//! Unix socket until shutdown. The station is not in the data path.
// Until `dvsan volume attach` is wired to `attach`, nothing in the binary
// calls into this module; remove this once it does.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use dvsan_nbd::{
    Access, ClientTls, ConcatExport, ConcatOptions, Export, RemoteAddr, RemoteSpec, StaticRegistry,
};
use tokio::net::{TcpListener, UnixListener};
use tracing::{info, warn};

/// The IANA port of NBD, used when a URI or listen address has none.
pub const NBD_DEFAULT_PORT: u16 = 10809;

/// One extent of a volume as the station describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteExtent {
    /// Where the extent is served: `nbd://HOST[:PORT]/EXPORT` (or
    /// `nbd+unix:///EXPORT?socket=PATH`).
    pub uri: String,
    /// The extent's size in bytes.
    pub size_bytes: u64,
}

/// Where the attached volume is served locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachListen {
    /// A TCP address: a host name or IP address (IPv6 without brackets)
    /// and a port (0: any free port).
    Tcp {
        /// Host name or IP address to bind.
        host: String,
        /// Port to bind.
        port: u16,
    },
    /// A Unix socket at this path.
    Unix(PathBuf),
}

impl Default for AttachListen {
    /// Loopback only, on NBD's port.
    fn default() -> Self {
        AttachListen::Tcp {
            host: "127.0.0.1".into(),
            port: NBD_DEFAULT_PORT,
        }
    }
}

/// A listen address that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid listen address {input:?}: {reason}")]
pub struct AttachListenError {
    input: String,
    reason: &'static str,
}

impl FromStr for AttachListen {
    type Err = AttachListenError;

    /// `HOST:PORT`, `[IPV6]:PORT`, a bare host or IP address (port 10809),
    /// or `unix:PATH`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| AttachListenError {
            input: s.to_owned(),
            reason,
        };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(err("unix: needs a socket path"));
            }
            return Ok(AttachListen::Unix(PathBuf::from(path)));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(AttachListen::Tcp {
                host: a.ip().to_string(),
                port: a.port(),
            });
        }
        let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        if let Ok(ip) = bare.unwrap_or(s).parse::<IpAddr>() {
            return Ok(AttachListen::Tcp {
                host: ip.to_string(),
                port: NBD_DEFAULT_PORT,
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| err("the port is not a number from 0 to 65535"))?;
                (host, port)
            }
            None => (s, NBD_DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(err("expected HOST:PORT or unix:PATH"));
        }
        if host.contains([':', '[', ']', '/']) || host.contains(char::is_whitespace) {
            return Err(err("expected HOST:PORT (IPv6 in brackets) or unix:PATH"));
        }
        Ok(AttachListen::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for AttachListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachListen::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            AttachListen::Tcp { host, port } => write!(f, "{host}:{port}"),
            AttachListen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// An NBD URI (the NBD project's URI specification), reduced to what a
/// client needs: where to connect, whether over TLS, and which export to
/// open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NbdUri {
    /// Where the server listens.
    pub addr: RemoteAddr,
    /// The export name (percent-decoded; empty for the default export).
    pub export: String,
    /// `nbds://` or `nbds+unix://`: TLS.
    pub tls: bool,
}

/// Why an NBD URI does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NbdUriError {
    /// Not `scheme://…`.
    #[error("not a URI: expected nbd://HOST[:PORT]/EXPORT")]
    NotAUri,
    /// A scheme this client does not speak.
    #[error("unsupported scheme {0:?}: expected nbd, nbds, nbd+unix or nbds+unix")]
    Scheme(String),
    /// No host after `nbd://`.
    #[error("no host: expected nbd://HOST[:PORT]/EXPORT")]
    NoHost,
    /// `user@host`.
    #[error("user names in NBD URIs are not supported")]
    UserInfo,
    /// A bracketed host that is not an IPv6 address.
    #[error("{0:?} in brackets is not an IPv6 address")]
    BadIpv6(String),
    /// An IPv6 address without brackets.
    #[error("IPv6 addresses must be in brackets, as in nbd://[::1]:10809/EXPORT")]
    UnbracketedIpv6,
    /// A port that is not 1..=65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// `nbd+unix://` with a host, or without `socket=`.
    #[error("expected nbd+unix:///EXPORT?socket=PATH")]
    BadUnix,
    /// A `%` not followed by two hex digits, or not UTF-8 once decoded.
    #[error("bad percent-encoding in {0:?}")]
    BadEncoding(String),
    /// An export name longer than NBD allows.
    #[error("export name longer than 4096 bytes")]
    ExportTooLong,
}

impl FromStr for NbdUri {
    type Err = NbdUriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s.split_once("://").ok_or(NbdUriError::NotAUri)?;
        let scheme = scheme.to_ascii_lowercase();
        // The fragment means nothing to NBD.
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let export = percent_decode(path.strip_prefix('/').unwrap_or(path))?;
        if export.len() > 4096 {
            return Err(NbdUriError::ExportTooLong);
        }
        let tls = scheme.starts_with("nbds");
        let addr = match scheme.as_str() {
            "nbd" | "nbd+tcp" | "nbds" | "nbds+tcp" => parse_authority(authority)?,
            "nbd+unix" | "nbds+unix" => {
                if !authority.is_empty() {
                    return Err(NbdUriError::BadUnix);
                }
                let socket = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("socket="))
                    .ok_or(NbdUriError::BadUnix)?;
                let socket = percent_decode(socket)?;
                if socket.is_empty() {
                    return Err(NbdUriError::BadUnix);
                }
                RemoteAddr::Unix(PathBuf::from(socket))
            }
            _ => return Err(NbdUriError::Scheme(scheme)),
        };
        Ok(NbdUri { addr, export, tls })
    }
}

/// `HOST[:PORT]` or `[IPV6][:PORT]` of an `nbd://` URI.
fn parse_authority(a: &str) -> Result<RemoteAddr, NbdUriError> {
    if a.contains('@') {
        return Err(NbdUriError::UserInfo);
    }
    let (host, port) = if let Some(r) = a.strip_prefix('[') {
        let (v6, after) = r
            .split_once(']')
            .ok_or_else(|| NbdUriError::BadIpv6(a.to_owned()))?;
        let ip: Ipv6Addr = v6
            .parse()
            .map_err(|_| NbdUriError::BadIpv6(v6.to_owned()))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(NbdUriError::BadPort(p.to_owned()))?,
            ),
        };
        (ip.to_string(), port)
    } else {
        match a.split_once(':') {
            Some((_, p)) if p.contains(':') => return Err(NbdUriError::UnbracketedIpv6),
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (a.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(NbdUriError::NoHost);
    }
    let port = match port {
        None => NBD_DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| NbdUriError::BadPort(p.to_owned()))?,
    };
    Ok(RemoteAddr::Tcp { host, port })
}

fn percent_decode(s: &str) -> Result<String, NbdUriError> {
    let bad = || NbdUriError::BadEncoding(s.to_owned());
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = [bytes.next().ok_or_else(bad)?, bytes.next().ok_or_else(bad)?];
        let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
        out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Percent-encodes all but RFC 3986's unreserved characters (and those in
/// `keep`).
fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URI an NBD client uses to open `export` at a bound local endpoint.
pub fn local_uri(endpoint: &LocalEndpoint, export: &str) -> String {
    let export = percent_encode(export, b"");
    match endpoint {
        LocalEndpoint::Tcp(a) => format!("nbd://{a}/{export}"),
        LocalEndpoint::Unix(p) => format!(
            "nbd+unix:///{export}?socket={}",
            percent_encode(&p.to_string_lossy(), b"/")
        ),
    }
}

/// A bound local endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalEndpoint {
    /// The TCP address actually bound (the port resolved when 0 was asked).
    Tcp(SocketAddr),
    /// The Unix socket's path.
    Unix(PathBuf),
}

/// A bound listener for the attached volume.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    async fn bind(listen: &AttachListen) -> anyhow::Result<Listener> {
        match listen {
            AttachListen::Tcp { host, port } => {
                let l = TcpListener::bind((host.as_str(), *port))
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                Ok(Listener::Tcp(l))
            }
            AttachListen::Unix(path) => {
                remove_stale_socket(path).await?;
                let l = UnixListener::bind(path).with_context(|| format!("binding {listen}"))?;
                Ok(Listener::Unix(l, path.clone()))
            }
        }
    }

    fn endpoint(&self) -> anyhow::Result<LocalEndpoint> {
        Ok(match self {
            Listener::Tcp(l) => {
                LocalEndpoint::Tcp(l.local_addr().context("reading the bound address")?)
            }
            Listener::Unix(_, p) => LocalEndpoint::Unix(p.clone()),
        })
    }
}

/// A socket file left by a process that is gone is removed; one that
/// answers, or a file that is not a socket, is an error.
async fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match tokio::fs::symlink_metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!("{} exists and is not a socket", path.display());
    }
    if tokio::net::UnixStream::connect(path).await.is_ok() {
        bail!("{} is in use by another server", path.display());
    }
    tokio::fs::remove_file(path)
        .await
        .with_context(|| format!("removing the stale socket {}", path.display()))
}

/// Checks the extents and turns them into the concat export's remotes.
pub fn remote_specs(extents: &[RemoteExtent]) -> anyhow::Result<Vec<RemoteSpec>> {
    if extents.is_empty() {
        bail!("the volume has no extents");
    }
    extents
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let uri: NbdUri = e
                .uri
                .parse()
                .with_context(|| format!("extent {i}: {:?}", e.uri))?;
            if e.size_bytes == 0 {
                bail!("extent {i} ({}) has size 0", e.uri);
            }
            Ok(RemoteSpec {
                addr: uri.addr,
                export: uri.export,
                size: e.size_bytes,
                tls: uri.tls,
            })
        })
        .collect()
}

/// Attaches `volume`: connects to every extent's unit, serves the volume
/// as NBD export `volume` (also the default export) on `listen`, logs the
/// URI clients use, and serves until `shutdown` resolves; in-flight
/// requests are answered and the units' connections closed before return.
/// Fails if an extent is malformed or a unit unreachable at start; a unit
/// that fails later fails the requests in its range (EIO) and is
/// reconnected on the next request.
///
/// Every peer that reaches `listen` may use the volume (the units admit
/// this host, not its peers): keep it on loopback or a Unix socket unless
/// the network is trusted.
///
/// Extents served over TLS (`nbds://`) are reached with `tls`; without it
/// they cannot be, and the attach fails naming the first.
pub async fn attach(
    volume: &str,
    extents: Vec<RemoteExtent>,
    listen: AttachListen,
    tls: Option<ClientTls>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let specs = remote_specs(&extents)?;
    let units = specs.len();
    let options = ConcatOptions {
        tls,
        ..ConcatOptions::default()
    };
    let export = Arc::new(
        ConcatExport::connect(specs, options)
            .await
            .with_context(|| format!("connecting to the units of volume {volume}"))?,
    );
    let listener = Listener::bind(&listen).await?;
    let endpoint = listener.endpoint()?;
    let mut registry = StaticRegistry::new();
    registry.add(
        volume,
        format!("dvsan volume {volume} ({units} extents)"),
        export.clone(),
        Access::Everyone,
    );
    registry.set_default(volume);
    let registry = Arc::new(registry);
    info!(
        volume,
        size = export.size(),
        extents = units,
        uri = %local_uri(&endpoint, volume),
        "volume attached; NBD clients connect to this URI"
    );
    match listener {
        Listener::Tcp(l) => dvsan_nbd::serve(l, registry, shutdown).await,
        Listener::Unix(l, path) => {
            dvsan_nbd::serve_unix(l, registry, shutdown).await;
            if let Err(e) = tokio::fs::remove_file(&path).await {
                warn!(path = %path.display(), error = %e, "could not remove the socket");
            }
        }
    }
    export.disconnect().await;
    info!(volume, "volume detached");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> RemoteAddr {
        RemoteAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    fn uri(s: &str) -> Result<NbdUri, NbdUriError> {
        s.parse()
    }

    #[test]
    fn nbd_uris_give_host_port_and_export() {
        assert_eq!(
            uri("nbd://unit1.example:10810/vol-3"),
            Ok(NbdUri {
                addr: tcp("unit1.example", 10810),
                export: "vol-3".into(),
                tls: false,
            })
        );
        // Missing port: NBD's own.
        assert_eq!(
            uri("nbd://10.0.0.7/x").unwrap().addr,
            tcp("10.0.0.7", 10809)
        );
        // IPv6 in brackets, with and without a port.
        assert_eq!(uri("nbd://[::1]:4000/x").unwrap().addr, tcp("::1", 4000));
        assert_eq!(
            uri("nbd://[fe80::1]/x").unwrap().addr,
            tcp("fe80::1", 10809)
        );
        // The export is the whole path after the first '/', percent-decoded.
        assert_eq!(uri("nbd://h/a/b%20c").unwrap().export, "a/b c");
        assert_eq!(uri("nbd://h").unwrap().export, "");
        assert_eq!(uri("nbd://h/").unwrap().export, "");
        assert_eq!(uri("NBD://h/x?tls=off#frag").unwrap().export, "x");
        assert_eq!(
            uri("nbd+unix:///disk?socket=/run/u%201.sock"),
            Ok(NbdUri {
                addr: RemoteAddr::Unix("/run/u 1.sock".into()),
                export: "disk".into(),
                tls: false,
            })
        );
    }

    #[test]
    fn malformed_nbd_uris_say_what_is_wrong() {
        use NbdUriError as E;
        assert_eq!(uri("unit1:10809/x"), Err(E::NotAUri));
        assert_eq!(uri("http://h/x"), Err(E::Scheme("http".into())));
        let tls = uri("nbds://h:4000/x").unwrap();
        assert_eq!(
            (tls.addr, tls.export.as_str(), tls.tls),
            (tcp("h", 4000), "x", true)
        );
        let tls = uri("nbds+unix:///x?socket=/run/u.sock").unwrap();
        assert_eq!(tls.addr, RemoteAddr::Unix("/run/u.sock".into()));
        assert!(tls.tls && !uri("nbd://h/x").unwrap().tls);
        assert_eq!(uri("nbds+vsock://1/x"), Err(E::Scheme("nbds+vsock".into())));
        assert_eq!(uri("nbd:///x"), Err(E::NoHost));
        assert_eq!(uri("nbd://:10809/x"), Err(E::NoHost));
        assert_eq!(uri("nbd://me@h/x"), Err(E::UserInfo));
        assert_eq!(uri("nbd://::1/x"), Err(E::UnbracketedIpv6));
        assert_eq!(uri("nbd://[::g]/x"), Err(E::BadIpv6("::g".into())));
        assert_eq!(uri("nbd://[::1/x"), Err(E::BadIpv6("[::1".into())));
        assert_eq!(uri("nbd://[::1]10809/x"), Err(E::BadPort("10809".into())));
        assert_eq!(uri("nbd://h:0/x"), Err(E::BadPort("0".into())));
        assert_eq!(uri("nbd://h:65536/x"), Err(E::BadPort("65536".into())));
        assert_eq!(uri("nbd://h:/x"), Err(E::BadPort("".into())));
        assert_eq!(uri("nbd://h/%zz"), Err(E::BadEncoding("%zz".into())));
        assert_eq!(uri("nbd://h/%ff"), Err(E::BadEncoding("%ff".into())));
        assert_eq!(uri("nbd+unix:///x"), Err(E::BadUnix));
        assert_eq!(uri("nbd+unix://h/x?socket=/s"), Err(E::BadUnix));
        let long = format!("nbd://h/{}", "x".repeat(4097));
        assert_eq!(uri(&long), Err(E::ExportTooLong));
        // One line, naming the problem.
        let e = uri("nbd://h:99999/x").unwrap_err().to_string();
        assert_eq!(e, "port \"99999\" is not a number from 1 to 65535");
    }

    #[test]
    fn listen_addresses() {
        let l = |s: &str| s.parse::<AttachListen>();
        let t = |h: &str, port| AttachListen::Tcp {
            host: h.into(),
            port,
        };
        assert_eq!(l("127.0.0.1:10809"), Ok(AttachListen::default()));
        assert_eq!(l("0.0.0.0:0"), Ok(t("0.0.0.0", 0)));
        assert_eq!(l("[::1]:4000"), Ok(t("::1", 4000)));
        assert_eq!(l("::1"), Ok(t("::1", 10809)));
        assert_eq!(l("[::1]"), Ok(t("::1", 10809)));
        assert_eq!(l("localhost:4000"), Ok(t("localhost", 4000)));
        assert_eq!(l("localhost"), Ok(t("localhost", 10809)));
        assert_eq!(
            l("unix:/run/dvsan/v.sock"),
            Ok(AttachListen::Unix("/run/dvsan/v.sock".into()))
        );
        for bad in [
            "",
            "unix:",
            "host:port",
            "h:70000",
            ":80",
            "a b:1",
            "fe80::1:x",
        ] {
            let e = l(bad).expect_err(bad).to_string();
            assert!(
                e.starts_with(&format!("invalid listen address {bad:?}: ")),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
        // Display gives back something that parses to the same.
        for s in ["127.0.0.1:10809", "[::1]:4000", "unix:/tmp/x.sock", "h:1"] {
            let a = l(s).unwrap();
            assert_eq!(l(&a.to_string()), Ok(a));
        }
    }

    #[test]
    fn local_uris_parse_back_to_the_endpoint() {
        let cases = [
            (
                LocalEndpoint::Tcp("127.0.0.1:10809".parse().unwrap()),
                "vol1",
            ),
            (LocalEndpoint::Tcp("[::1]:4000".parse().unwrap()), "a b/c"),
            (LocalEndpoint::Unix("/tmp/dir x/v.sock".into()), "vol&1"),
        ];
        assert_eq!(
            local_uri(&cases[0].0, cases[0].1),
            "nbd://127.0.0.1:10809/vol1"
        );
        assert_eq!(
            local_uri(&cases[2].0, "v"),
            "nbd+unix:///v?socket=/tmp/dir%20x/v.sock"
        );
        for (endpoint, name) in cases {
            let parsed: NbdUri = local_uri(&endpoint, name).parse().unwrap();
            assert_eq!(parsed.export, name);
            match (endpoint, parsed.addr) {
                (LocalEndpoint::Tcp(a), RemoteAddr::Tcp { host, port }) => {
                    assert_eq!((a.ip().to_string(), a.port()), (host, port));
                }
                (LocalEndpoint::Unix(p), RemoteAddr::Unix(q)) => assert_eq!(p, q),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn extents_are_checked_before_anything_connects() {
        let e = |uri: &str, size_bytes| RemoteExtent {
            uri: uri.into(),
            size_bytes,
        };
        let specs =
            remote_specs(&[e("nbd://u1/v", 1 << 20), e("nbd://[::1]:4/w", 2 << 20)]).unwrap();
        assert_eq!(specs[1].addr, tcp("::1", 4));
        assert_eq!((specs[1].export.as_str(), specs[1].size), ("w", 2 << 20));
        let msg = |x: &[RemoteExtent]| format!("{:#}", remote_specs(x).unwrap_err());
        assert_eq!(msg(&[]), "the volume has no extents");
        assert_eq!(
            msg(&[e("nbd://u1/v", 1), e("nbd://u2:x/v", 1)]),
            "extent 1: \"nbd://u2:x/v\": port \"x\" is not a number from 1 to 65535"
        );
        assert_eq!(
            msg(&[e("nbd://u1/v", 0)]),
            "extent 0 (nbd://u1/v) has size 0"
        );
    }
}
