//! [`Connection`]: a byte stream plus its read buffer, turning the pure
//! decoders of [`crate::codec`] into "read the next message" calls.
//!
//! Generic over `AsyncRead + AsyncWrite`, so that a TLS stream (after
//! `NBD_OPT_STARTTLS`) can replace the TCP stream without touching the
//! protocol code.

use std::io::IoSlice;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::FrameError;
use crate::error::{Error, Result};

/// Initial read buffer; large enough that a 256 KiB write arrives in few
/// reads.
const READ_BUF: usize = 256 * 1024;

/// A stream with a read buffer.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps a stream.
    pub fn new(stream: S) -> Self {
        Connection {
            stream,
            buf: BytesMut::with_capacity(READ_BUF),
        }
    }

    /// Reads until `parse` succeeds on the buffered bytes. `parse` gets the
    /// buffer and must remove what it used; it returns
    /// [`FrameError::Incomplete`] to ask for more. `Ok(None)`: the peer
    /// closed the stream between messages.
    pub async fn read_frame<T>(
        &mut self,
        mut parse: impl FnMut(&mut BytesMut) -> Result<T, FrameError>,
    ) -> Result<Option<T>> {
        loop {
            if !self.buf.is_empty() {
                match parse(&mut self.buf) {
                    Ok(t) => return Ok(Some(t)),
                    Err(FrameError::Incomplete) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(READ_BUF);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::Truncated)
                };
            }
        }
    }

    /// Like [`read_frame`](Self::read_frame) with a decoder of the form
    /// `fn(&[u8]) -> (T, used)`, which does not remove anything itself.
    pub async fn read_decoded<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<(T, usize), FrameError>,
    ) -> Result<Option<T>> {
        self.read_frame(|buf| {
            let (t, n) = decode(buf)?;
            buf.advance(n);
            Ok(t)
        })
        .await
    }

    /// Discards exactly `n` bytes (buffered first, then from the stream).
    pub async fn skip(&mut self, mut n: u64) -> Result<()> {
        let here = (self.buf.len() as u64).min(n);
        self.buf.advance(here as usize);
        n -= here;
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let want = (n as usize).min(scratch.len());
            let got = self.stream.read(&mut scratch[..want]).await?;
            if got == 0 {
                return Err(Error::Truncated);
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Writes all of `bytes` and flushes.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The stream and whatever was read but not consumed yet.
    pub fn into_parts(self) -> (S, BytesMut) {
        (self.stream, self.buf)
    }
}

/// Writes every slice in order with as few syscalls as the stream allows.
pub(crate) async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    // Drop leading empty slices so that a 0 return really means "closed".
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = w.write_vectored(slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[tokio::test]
    async fn reads_a_frame_split_across_writes() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut conn = Connection::new(b);
        let mut wire = BytesMut::new();
        codec::encode_option(&mut wire, crate::consts::NBD_OPT_LIST, &[]);
        let writer = tokio::spawn(async move {
            for byte in wire.iter() {
                a.write_all(&[*byte]).await.expect("write");
            }
            a
        });
        let opt = conn
            .read_decoded(|b| codec::decode_option(b, 0).map(|(o, n)| (o.option, n)))
            .await
            .expect("reads");
        assert_eq!(opt, Some(crate::consts::NBD_OPT_LIST));
        drop(writer.await.expect("writer"));
        // The peer is gone, nothing buffered: a clean end.
        assert!(matches!(
            conn.read_decoded(codec::decode_client_flags).await,
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn eof_mid_message_is_truncated() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut conn = Connection::new(b);
        a.write_all(&[0x49, 0x48]).await.expect("write");
        drop(a);
        assert!(matches!(
            conn.read_decoded(|b| codec::decode_option(b, 0).map(|(o, n)| (o.option, n)))
                .await,
            Err(Error::Truncated)
        ));
    }
}
