//! The NBD server: accept loops for TCP and Unix sockets, and the
//! per-connection driver that runs the handshake and then the transmission
//! phase.
//!
//! Shaped like mini-redis: [`serve`] takes a bound listener, the
//! application's [`ExportRegistry`], and a shutdown future; on shutdown it
//! stops accepting, tells every connection to stop reading, and waits for
//! their in-flight requests to be answered.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::connection::Connection;
use crate::error::Result;
use crate::export::{ExportRegistry, PeerAddr};
use crate::handshake::{self, Negotiated, Outcome, TlsState};
use crate::tls::{self, TlsMode, TlsPolicy};
use crate::transmission::{self, Session, shutdown_signal};
use crate::worker_threads;
use bytes::BytesMut;

/// A client must pick an export within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the handshake hands to the transmission phase.
struct Ready<S> {
    stream: Stream<S>,
    /// Bytes read past the handshake.
    leftover: BytesMut,
    negotiated: Negotiated,
}

/// The connection's stream, in the clear or inside TLS.
enum Stream<S> {
    Plain(S),
    Tls(Box<TlsStream<BufReader<S>>>),
}

/// Greeting and option haggling, with the TLS handshake in between when
/// the client starts TLS. `Ok(None)`: the session ended before
/// transmission.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: &PeerAddr,
    registry: &dyn ExportRegistry,
    tls: Option<&TlsPolicy>,
) -> Result<Option<Ready<S>>> {
    let mut conn = Connection::new(stream);
    let Some(zeroes) = handshake::greet(&mut conn, peer).await? else {
        return Ok(None);
    };
    let state = match tls.map(TlsPolicy::mode) {
        None => TlsState::Unavailable,
        Some(TlsMode::Optional) => TlsState::Offered,
        Some(TlsMode::Required) => TlsState::Required,
    };
    let policy = match handshake::haggle(&mut conn, registry, peer, zeroes, state).await? {
        Outcome::Closed => return Ok(None),
        Outcome::Transmit(negotiated) => {
            let (stream, leftover) = conn.into_parts();
            return Ok(Some(Ready {
                stream: Stream::Plain(stream),
                leftover,
                negotiated,
            }));
        }
        Outcome::StartTls => tls.expect("STARTTLS is acknowledged only with a policy"),
    };
    let (stream, leftover) = conn.into_parts();
    if !leftover.is_empty() {
        // The client must wait for the acknowledgement before its TLS
        // hello.
        warn!(%peer, "bytes sent before NBD_OPT_STARTTLS was acknowledged; closing");
        return Ok(None);
    }
    let stream = match policy.acceptor().accept(tls::buffered(stream)).await {
        Ok(stream) => stream,
        Err(e) => {
            warn!(%peer, error = %e, "TLS handshake failed; closing");
            return Ok(None);
        }
    };
    debug!(%peer, "TLS established");
    let mut conn = Connection::new(stream);
    match handshake::haggle(&mut conn, registry, peer, zeroes, TlsState::Active).await? {
        Outcome::Transmit(negotiated) => {
            let (stream, leftover) = conn.into_parts();
            Ok(Some(Ready {
                stream: Stream::Tls(Box::new(stream)),
                leftover,
                negotiated,
            }))
        }
        Outcome::StartTls | Outcome::Closed => Ok(None),
    }
}

/// Runs the handshake, then the transmission phase: over TLS on the
/// async path (`transmission`), in the clear through `transmit` with the
/// stream, the bytes read past the handshake and the negotiated session.
async fn session<S, F, Fut>(
    stream: S,
    peer: PeerAddr,
    registry: Arc<dyn ExportRegistry>,
    tls: Option<Arc<TlsPolicy>>,
    mut shutdown: Option<watch::Receiver<bool>>,
    transmit: F,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(S, BytesMut, Session, Option<watch::Receiver<bool>>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let ready = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &peer, &*registry, tls.as_deref())) => match r {
            Ok(r) => r?,
            Err(_) => {
                warn!(%peer, "handshake timed out");
                return Ok(());
            }
        },
        _ = shutdown_signal(&mut shutdown) => return Ok(()),
    };
    let Some(Ready {
        stream,
        leftover,
        negotiated: n,
    }) = ready
    else {
        return Ok(());
    };
    tracing::Span::current().record("export", n.name.as_str());
    info!(
        %peer,
        export = n.name,
        size = n.entry.export.size(),
        flags = ?n.flags,
        structured = n.structured,
        base_allocation = n.base_allocation,
        tls = matches!(stream, Stream::Tls(_)),
        "entering transmission"
    );
    let session = Session {
        peer,
        entry: n.entry,
        structured: n.structured,
        base_allocation: n.base_allocation,
        flags: n.flags,
    };
    match stream {
        Stream::Plain(stream) => transmit(stream, leftover, session, shutdown).await,
        Stream::Tls(stream) => {
            let (r, w) = tokio::io::split(*stream);
            transmission::run(r, leftover, w, session, shutdown).await
        }
    }
}

/// Serves one connection over any byte stream, offering no TLS. The
/// stream is split with `tokio::io::split` after the handshake.
pub async fn serve_connection<S>(
    stream: S,
    peer: PeerAddr,
    registry: Arc<dyn ExportRegistry>,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let span = info_span!("nbd", %peer, export = tracing::field::Empty);
    session(
        stream,
        peer,
        registry,
        None,
        None,
        |stream, leftover, s, shutdown| {
            let (r, w) = tokio::io::split(stream);
            transmission::run(r, leftover, w, s, shutdown)
        },
    )
    .instrument(span)
    .await
}

/// Serves one TCP connection (`TCP_NODELAY`): the handshake on the async
/// stream, then the transmission phase on worker threads over the blocking
/// socket (see `worker_threads`), or on the async path inside TLS when the
/// client started TLS (`tls`: the server's policy, if it offers TLS).
pub async fn serve_tcp_connection(
    stream: TcpStream,
    registry: Arc<dyn ExportRegistry>,
    tls: Option<Arc<TlsPolicy>>,
    shutdown: Option<watch::Receiver<bool>>,
) -> Result<()> {
    let peer = PeerAddr::Tcp(stream.peer_addr()?);
    // Replies are written whole with one vectored write; Nagle would only
    // delay the last segment of each.
    stream.set_nodelay(true)?;
    let span = info_span!("nbd", %peer, export = tracing::field::Empty);
    session(
        stream,
        peer,
        registry,
        tls,
        shutdown,
        |stream, leftover, s, shutdown| async move {
            let socket = stream.into_std()?;
            socket.set_nonblocking(false)?;
            worker_threads::run(socket, leftover, s, shutdown).await
        },
    )
    .instrument(span)
    .await
}

async fn accept_loop<L, F, Fut>(
    mut accept: L,
    registry: Arc<dyn ExportRegistry>,
    shutdown: impl Future,
    handle: F,
) where
    L: AsyncAccept,
    F: Fn(L::Stream, Arc<dyn ExportRegistry>, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = accept.accept_one() => match r {
                Ok(stream) => {
                    tasks.spawn(handle(stream, registry.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    info!(connections = tasks.len(), "shutting down");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// A listener, abstracted so TCP and Unix sockets share the accept loop.
trait AsyncAccept {
    type Stream: Send + 'static;
    fn accept_one(&mut self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl AsyncAccept for TcpListener {
    type Stream = TcpStream;
    async fn accept_one(&mut self) -> std::io::Result<TcpStream> {
        Ok(self.accept().await?.0)
    }
}

impl AsyncAccept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&mut self) -> std::io::Result<tokio::net::UnixStream> {
        Ok(self.accept().await?.0)
    }
}

/// Accepts TCP connections until `shutdown` resolves, then lets open
/// connections finish their in-flight requests and returns.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<dyn ExportRegistry>,
    shutdown: impl Future,
) {
    serve_with_tls(listener, registry, None, shutdown).await
}

/// Like [`serve`], offering TLS (`NBD_OPT_STARTTLS`) under `tls`, or
/// requiring it (see [`TlsPolicy`]).
pub async fn serve_with_tls(
    listener: TcpListener,
    registry: Arc<dyn ExportRegistry>,
    tls: Option<Arc<TlsPolicy>>,
    shutdown: impl Future,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, tls = ?tls.as_ref().map(|t| t.mode()), "NBD server listening");
    }
    accept_loop(listener, registry, shutdown, move |stream, reg, stop| {
        let tls = tls.clone();
        async move {
            if let Err(e) = serve_tcp_connection(stream, reg, tls, Some(stop)).await {
                debug!(error = %e, "connection ended with an error");
            }
        }
    })
    .await
}

/// Like [`serve`], on a Unix socket (peers are [`PeerAddr::Unix`]).
pub async fn serve_unix(
    listener: UnixListener,
    registry: Arc<dyn ExportRegistry>,
    shutdown: impl Future,
) {
    accept_loop(
        listener,
        registry,
        shutdown,
        |stream, reg, stop| async move {
            let peer = PeerAddr::Unix(
                stream
                    .peer_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.to_path_buf())),
            );
            let span = info_span!("nbd", %peer, export = tracing::field::Empty);
            let r = session(
                stream,
                peer,
                reg,
                None,
                Some(stop),
                |stream, leftover, s, shutdown| async move {
                    let socket = stream.into_std()?;
                    socket.set_nonblocking(false)?;
                    worker_threads::run(socket, leftover, s, shutdown).await
                },
            )
            .instrument(span)
            .await;
            if let Err(e) = r {
                debug!(error = %e, "connection ended with an error");
            }
        },
    )
    .await
}
