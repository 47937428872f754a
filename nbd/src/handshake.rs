//! The server side of the fixed newstyle handshake: greeting, client flags,
//! then option haggling until the client picks an export (`NBD_OPT_GO` or
//! `NBD_OPT_EXPORT_NAME`), aborts, or leaves.
//!
//! Every option the server does not implement is answered with
//! `NBD_REP_ERR_UNSUP` and haggling goes on; malformed option data gets
//! `NBD_REP_ERR_INVALID`. The connection is only dropped where the spec
//! leaves no other choice (bad magic, unknown client flags, a refused
//! `NBD_OPT_EXPORT_NAME`) or for denial-of-service limits.
//!
//! `NBD_OPT_STARTTLS` ends one round of haggling (see [`Outcome`]); the
//! server then runs the TLS handshake (`crate::tls`) and haggles again
//! inside TLS, from a clean slate.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, warn};

use crate::codec::{self, FrameError};
use crate::connection::Connection;
use crate::consts::*;
use crate::error::Result;
use crate::export::{ExportEntry, ExportFlags, ExportRegistry, PeerAddr};

/// Largest option data the server buffers (names and queries are at most
/// 4 KiB each by the spec).
const MAX_OPTION_DATA: u32 = 64 * 1024;
/// Oversized option data up to this is skipped and answered with
/// `NBD_REP_ERR_TOO_BIG`; beyond it the client is hung up on.
const MAX_SKIPPED_OPTION: u32 = 1 << 20;
/// Options one session may send before the server gives up on it.
const MAX_OPTIONS: usize = 1024;
/// The context id the server assigns to `base:allocation`.
pub(crate) const BASE_ALLOCATION_ID: u32 = 1;

/// The outcome of a successful handshake.
pub(crate) struct Negotiated {
    pub name: String,
    pub entry: ExportEntry,
    pub structured: bool,
    pub base_allocation: bool,
    pub flags: TransmissionFlags,
}

/// Transmission flags that truthfully describe an export.
pub(crate) fn transmission_flags(f: ExportFlags, structured: bool) -> TransmissionFlags {
    let mut t =
        TransmissionFlags::HAS_FLAGS | TransmissionFlags::SEND_FLUSH | TransmissionFlags::SEND_FUA;
    if f.read_only {
        t |= TransmissionFlags::READ_ONLY;
    } else {
        if f.can_trim {
            t |= TransmissionFlags::SEND_TRIM;
        }
        if f.can_zero {
            t |= TransmissionFlags::SEND_WRITE_ZEROES;
            if f.fast_zero {
                t |= TransmissionFlags::SEND_FAST_ZERO;
            }
        }
    }
    if f.multi_conn {
        t |= TransmissionFlags::CAN_MULTI_CONN;
    }
    if f.can_cache {
        t |= TransmissionFlags::SEND_CACHE;
    }
    if structured {
        // Every READ is answered with a single data chunk, so "don't
        // fragment" costs nothing to honour.
        t |= TransmissionFlags::SEND_DF;
    }
    t
}

enum Incoming {
    Opt(OptType, Bytes),
    TooBig(OptType, u32),
}

fn parse_option(buf: &mut BytesMut) -> Result<Incoming, FrameError> {
    match codec::decode_option(buf, MAX_OPTION_DATA) {
        Ok((o, n)) => {
            let option = o.option;
            let mut frame = buf.split_to(n);
            frame.advance(OPTION_HEADER_LEN);
            Ok(Incoming::Opt(option, frame.freeze()))
        }
        Err(FrameError::OversizedOption { option, len }) => {
            buf.advance(OPTION_HEADER_LEN);
            Ok(Incoming::TooBig(option, len))
        }
        Err(e) => Err(e),
    }
}

struct Haggler<'a> {
    registry: &'a dyn ExportRegistry,
    peer: &'a PeerAddr,
    out: BytesMut,
    structured: bool,
    /// The export for which `base:allocation` was selected, if any.
    meta_export: Option<String>,
}

impl Haggler<'_> {
    fn reply(&mut self, option: OptType, rep: RepType, data: &[u8]) {
        codec::encode_option_reply(&mut self.out, option, rep, data);
    }

    fn error(&mut self, option: OptType, rep: RepType, message: &str) {
        debug!(%option, reply = %rep, message, "option refused");
        self.reply(option, rep, message.as_bytes());
    }

    /// Looks an export up and applies the access policy, logging refusals.
    fn open(&mut self, option: OptType, name: &str) -> Option<ExportEntry> {
        let Some(entry) = self.registry.lookup(self.peer, name) else {
            self.error(
                option,
                NBD_REP_ERR_UNKNOWN,
                &format!("no export named {name:?}"),
            );
            return None;
        };
        if !self.registry.allow(self.peer, name) {
            warn!(peer = %self.peer, export = name, %option, "access refused by policy");
            self.error(
                option,
                NBD_REP_ERR_POLICY,
                "access to this export is refused",
            );
            return None;
        }
        Some(entry)
    }

    fn info(&mut self, option: OptType, data: &[u8]) -> Option<Negotiated> {
        let req = match codec::parse_info_request(data) {
            Ok(r) => r,
            Err(_) => {
                self.error(option, NBD_REP_ERR_INVALID, "malformed INFO/GO data");
                return None;
            }
        };
        let entry = self.open(option, req.name)?;
        let export = &entry.export;
        let flags = transmission_flags(export.flags(), self.structured);
        let mut item = BytesMut::new();
        codec::put_info_export(&mut item, export.size(), flags);
        self.reply(option, NBD_REP_INFO, &item);
        for info in &req.infos {
            item.clear();
            match *info {
                NBD_INFO_NAME => codec::put_info_string(&mut item, NBD_INFO_NAME, req.name),
                NBD_INFO_DESCRIPTION if !entry.description.is_empty() => {
                    codec::put_info_string(&mut item, NBD_INFO_DESCRIPTION, &entry.description)
                }
                _ => continue,
            }
            self.reply(option, NBD_REP_INFO, &item);
        }
        // Block sizes go out whether asked for or not (as qemu does): the
        // maximum tells clients where the server's payload cap is.
        item.clear();
        codec::put_info_block_size(&mut item, export.block_sizes());
        self.reply(option, NBD_REP_INFO, &item);
        self.reply(option, NBD_REP_ACK, &[]);
        let base_allocation = self.meta_export.as_deref() == Some(req.name);
        Some(Negotiated {
            name: req.name.to_owned(),
            entry,
            structured: self.structured,
            base_allocation,
            flags,
        })
    }

    fn meta_context(&mut self, option: OptType, data: &[u8]) {
        if !self.structured {
            self.error(
                option,
                NBD_REP_ERR_INVALID,
                "structured replies must be negotiated first",
            );
            return;
        }
        let req = match codec::parse_meta_context_request(data) {
            Ok(r) => r,
            Err(_) => {
                self.error(option, NBD_REP_ERR_INVALID, "malformed META_CONTEXT data");
                return;
            }
        };
        if self.registry.lookup(self.peer, req.export).is_none() {
            let msg = format!("no export named {:?}", req.export);
            self.error(option, NBD_REP_ERR_UNKNOWN, &msg);
            return;
        }
        let mut item = BytesMut::new();
        if option == NBD_OPT_LIST_META_CONTEXT {
            let wanted = req.queries.is_empty()
                || req
                    .queries
                    .iter()
                    .any(|q| *q == "base:" || *q == BASE_ALLOCATION);
            if wanted {
                // Ids in a LIST reply are reserved and sent as zero.
                codec::put_meta_context_reply(&mut item, 0, BASE_ALLOCATION);
                self.reply(option, NBD_REP_META_CONTEXT, &item);
            }
        } else {
            // SET replaces the previous selection, even with no match.
            self.meta_export = None;
            if req.queries.contains(&BASE_ALLOCATION) {
                codec::put_meta_context_reply(&mut item, BASE_ALLOCATION_ID, BASE_ALLOCATION);
                self.reply(option, NBD_REP_META_CONTEXT, &item);
                self.meta_export = Some(req.export.to_owned());
            }
        }
        self.reply(option, NBD_REP_ACK, &[]);
    }

    fn list(&mut self, option: OptType, data: &[u8]) {
        if !data.is_empty() {
            self.error(option, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
            return;
        }
        let mut item = BytesMut::new();
        for (name, description) in self.registry.list() {
            // Exports the peer may not open are not its business.
            if self.registry.allow(self.peer, &name) {
                item.clear();
                codec::put_server_reply(&mut item, &name, &description);
                self.reply(option, NBD_REP_SERVER, &item);
            }
        }
        self.reply(option, NBD_REP_ACK, &[]);
    }
}

/// Where a session stands with TLS while haggling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsState {
    /// The server has no TLS: `NBD_OPT_STARTTLS` is refused.
    Unavailable,
    /// The client may start TLS.
    Offered,
    /// The client must start TLS before anything else.
    Required,
    /// Haggling runs inside TLS.
    Active,
}

/// How option haggling ended.
pub(crate) enum Outcome {
    /// An export was picked: on to transmission.
    Transmit(Negotiated),
    /// `NBD_OPT_STARTTLS` was acknowledged: the TLS handshake comes next,
    /// then haggling again (see [`haggle`]).
    StartTls,
    /// The session ended (abort, refusal, disconnect, protocol limits).
    Closed,
}

/// Sends the greeting and reads the client's flags: `Some(zeroes)` (whether
/// an `NBD_OPT_EXPORT_NAME` reply carries the 124 zero bytes), `None` if
/// the client left or sent flags the server does not know.
pub(crate) async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    peer: &PeerAddr,
) -> Result<Option<bool>> {
    let mut out = BytesMut::with_capacity(32);
    codec::encode_greeting(
        &mut out,
        HandshakeFlags::FIXED_NEWSTYLE | HandshakeFlags::NO_ZEROES,
    );
    conn.write_all(&out).await?;
    let Some(raw) = conn.read_decoded(codec::decode_client_flags).await? else {
        return Ok(None);
    };
    let Some(client_flags) = ClientFlags::from_bits(raw) else {
        // The spec: the server MUST drop the connection on unknown flags.
        warn!(%peer, flags = raw, "unknown client flags; closing");
        return Ok(None);
    };
    Ok(Some(!client_flags.contains(ClientFlags::NO_ZEROES)))
}

/// Option haggling, after [`greet`], until the client picks an export,
/// starts TLS, or leaves.
pub(crate) async fn haggle<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    registry: &dyn ExportRegistry,
    peer: &PeerAddr,
    zeroes: bool,
    tls: TlsState,
) -> Result<Outcome> {
    let mut h = Haggler {
        registry,
        peer,
        out: BytesMut::with_capacity(1024),
        structured: false,
        meta_export: None,
    };
    for _ in 0..MAX_OPTIONS {
        let Some(incoming) = conn.read_frame(parse_option).await? else {
            debug!(%peer, "client left during option haggling");
            return Ok(Outcome::Closed);
        };
        let (option, data) = match incoming {
            Incoming::Opt(o, d) => (o, d),
            Incoming::TooBig(option, len) => {
                if len > MAX_SKIPPED_OPTION {
                    warn!(%peer, %option, len, "option data too large; closing");
                    return Ok(Outcome::Closed);
                }
                conn.skip(len.into()).await?;
                h.error(option, NBD_REP_ERR_TOO_BIG, "option data too large");
                conn.write_all(&h.out).await?;
                h.out.clear();
                continue;
            }
        };
        debug!(%peer, %option, len = data.len(), "option");
        if tls == TlsState::Required && option != NBD_OPT_STARTTLS && option != NBD_OPT_ABORT {
            if option == NBD_OPT_EXPORT_NAME {
                // EXPORT_NAME cannot carry an error: hang up.
                warn!(%peer, "NBD_OPT_EXPORT_NAME without TLS, which is required; closing");
                return Ok(Outcome::Closed);
            }
            h.error(
                option,
                NBD_REP_ERR_TLS_REQD,
                "TLS is required: send NBD_OPT_STARTTLS first",
            );
            conn.write_all(&h.out).await?;
            h.out.clear();
            continue;
        }
        match option {
            NBD_OPT_EXPORT_NAME => {
                let name = String::from_utf8_lossy(&data).into_owned();
                let entry = registry.lookup(peer, &name);
                let allowed = registry.allow(peer, &name);
                let Some(entry) = entry.filter(|_| allowed) else {
                    // EXPORT_NAME cannot carry an error: hang up.
                    warn!(%peer, export = name, %option, "export unknown or access refused by policy; closing");
                    return Ok(Outcome::Closed);
                };
                let flags = transmission_flags(entry.export.flags(), h.structured);
                codec::encode_export_name_reply(&mut h.out, entry.export.size(), flags, zeroes);
                conn.write_all(&h.out).await?;
                let base_allocation = h.meta_export.as_deref() == Some(name.as_str());
                return Ok(Outcome::Transmit(Negotiated {
                    name,
                    entry,
                    structured: h.structured,
                    base_allocation,
                    flags,
                }));
            }
            NBD_OPT_ABORT => {
                h.reply(option, NBD_REP_ACK, &[]);
                // The client may already be gone; that is fine.
                let _ = conn.write_all(&h.out).await;
                return Ok(Outcome::Closed);
            }
            NBD_OPT_LIST => h.list(option, &data),
            NBD_OPT_STARTTLS => match tls {
                _ if !data.is_empty() => h.error(
                    option,
                    NBD_REP_ERR_INVALID,
                    "NBD_OPT_STARTTLS takes no data",
                ),
                TlsState::Unavailable => {
                    h.error(option, NBD_REP_ERR_POLICY, "TLS is not configured")
                }
                TlsState::Active => h.error(option, NBD_REP_ERR_INVALID, "TLS is already up"),
                TlsState::Offered | TlsState::Required => {
                    h.reply(option, NBD_REP_ACK, &[]);
                    conn.write_all(&h.out).await?;
                    return Ok(Outcome::StartTls);
                }
            },
            NBD_OPT_INFO | NBD_OPT_GO => {
                let negotiated = h.info(option, &data);
                conn.write_all(&h.out).await?;
                h.out.clear();
                if option == NBD_OPT_GO
                    && let Some(n) = negotiated
                {
                    return Ok(Outcome::Transmit(n));
                }
                continue;
            }
            NBD_OPT_STRUCTURED_REPLY => {
                if data.is_empty() {
                    h.structured = true;
                    h.reply(option, NBD_REP_ACK, &[]);
                } else {
                    h.error(option, NBD_REP_ERR_INVALID, "option takes no data");
                }
            }
            NBD_OPT_LIST_META_CONTEXT | NBD_OPT_SET_META_CONTEXT => h.meta_context(option, &data),
            _ => h.error(option, NBD_REP_ERR_UNSUP, "option not supported"),
        }
        conn.write_all(&h.out).await?;
        h.out.clear();
    }
    warn!(%peer, "too many options; closing");
    Ok(Outcome::Closed)
}
