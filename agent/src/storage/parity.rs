//! The striped-parity engine behind RAID 5 and RAID 6.
//!
//! Stripe `s` holds one chunk at offset `s·chunk` of every member: `k` data
//! chunks and one (P) or two (P, Q) parity chunks, rotating left-symmetric
//! as in Linux md: P on member `n-1 - (s mod n)`, Q (RAID 6) on the next
//! member, and data chunk `j` of the stripe on member `(P + parity + j) mod
//! n`, so that consecutive chunks of the group land on consecutive members.
//!
//! Reads in a healthy group go straight to the data chunks, without locks.
//! Writes hold the stripe's lock (a fixed table of locks keyed by stripe
//! number), so that concurrent writers never leave parity out of step with
//! the data. A partial-stripe write updates parity by read-modify-write
//! (P ^= old ⊕ new, Q ^= g^j·(old ⊕ new)) or, when that reads less, by
//! reconstruct-write (parity from the whole stripe column); a full-stripe
//! write computes parity without reading. With members lost, reads rebuild
//! the missing data from the rest of the column (under the stripe lock) and
//! writes go on to the surviving members with parity that keeps the lost
//! members' data recoverable.
//!
//! A member being rebuilt is in sync below its rebuild mark (a stripe
//! boundary) and lost above it; the rebuild takes the stripe lock, writes
//! the stripe's chunk of the new member (data rebuilt from the column, or
//! P or Q recomputed) and moves the mark, so a writer holding the lock
//! sees the stripe either rebuilt or not at all. After an unclean stop,
//! stripes in regions the write-intent bitmap marks get P and Q
//! recomputed from the data; until then no lost chunk is rebuilt from
//! their parity, which may be out of step with the data (a torn stripe
//! write, the RAID 5 write hole): such reads fail with an I/O error rather
//! than return wrong bytes (see `bitmap.rs`).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::StorageError;
use crate::storage::gf256;
use crate::storage::layout::{Members, check_range, zero_by_writing};

/// Stripe locks per group (stripes share them modulo this).
const LOCKS: usize = 256;

/// The part of one data chunk of a stripe a request covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    /// Data chunk index in the stripe.
    j: usize,
    /// Start within the chunk.
    start: usize,
    /// Length.
    len: usize,
    /// Where it is in the request's buffer.
    pos: usize,
}

/// The member holding P of stripe `s` in a group of `n`.
pub(crate) fn p_member(n: usize, s: u64) -> usize {
    n - 1 - (s % n as u64) as usize
}

/// The member holding Q of stripe `s` (RAID 6): the one after P.
pub(crate) fn q_member(n: usize, s: u64) -> usize {
    (p_member(n, s) + 1) % n
}

/// The member holding data chunk `j` of stripe `s`, with `parity` parity
/// chunks per stripe: data follows the parity round the members.
pub(crate) fn data_member(n: usize, parity: usize, s: u64, j: usize) -> usize {
    (p_member(n, s) + parity + j) % n
}

/// Calls `f(stripe, pieces)` for each stripe of `k` data chunks of `chunk`
/// bytes that `[offset, offset + len)` touches, with the pieces of its data
/// chunks the range covers.
fn for_stripes(
    chunk: u64,
    k: usize,
    offset: u64,
    len: u64,
    mut f: impl FnMut(u64, &[Piece]) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let width = chunk * k as u64;
    let end = offset + len;
    let mut pieces = Vec::with_capacity(k);
    let mut at = offset;
    while at < end {
        let s = at / width;
        let stripe_end = end.min((s + 1) * width);
        pieces.clear();
        while at < stripe_end {
            let within = at - s * width;
            let start = within % chunk;
            let n = (chunk - start).min(stripe_end - at);
            pieces.push(Piece {
                j: (within / chunk) as usize,
                start: start as usize,
                len: n as usize,
                pos: (at - offset) as usize,
            });
            at += n;
        }
        f(s, &pieces)?;
    }
    Ok(())
}

/// A RAID 5 or RAID 6 group's address map and write logic.
#[derive(Debug)]
pub struct Parity {
    members: Arc<Members>,
    /// Parity chunks per stripe: 1 (RAID 5) or 2 (RAID 6).
    parity: usize,
    chunk: u64,
    /// Bytes used on every member: whole chunks.
    per_member: u64,
    locks: Vec<Mutex<()>>,
}

impl Parity {
    pub(crate) fn new(members: Arc<Members>, parity: usize, chunk: u64, per_member: u64) -> Self {
        Parity {
            members,
            parity,
            chunk,
            per_member,
            locks: (0..LOCKS).map(|_| Mutex::new(())).collect(),
        }
    }

    pub(crate) fn members(&self) -> &Members {
        &self.members
    }

    fn n(&self) -> usize {
        self.members.len()
    }

    /// Data chunks per stripe.
    fn k(&self) -> usize {
        self.n() - self.parity
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.per_member * self.k() as u64
    }

    fn p_member(&self, s: u64) -> usize {
        p_member(self.n(), s)
    }

    fn q_member(&self, s: u64) -> Option<usize> {
        (self.parity == 2).then(|| q_member(self.n(), s))
    }

    fn data_member(&self, s: u64, j: usize) -> usize {
        data_member(self.n(), self.parity, s, j)
    }

    fn lock(&self, s: u64) -> MutexGuard<'_, ()> {
        self.locks[(s % LOCKS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn for_stripes(
        &self,
        offset: u64,
        len: u64,
        f: impl FnMut(u64, &[Piece]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        for_stripes(self.chunk, self.k(), offset, len, f)
    }

    /// Stripe chunk, bytes.
    pub(crate) fn chunk(&self) -> u64 {
        self.chunk
    }

    /// Whether stripe `s` lies in a region awaiting resync.
    fn pending(&self, s: u64) -> bool {
        let at = s * self.chunk;
        self.members
            .bitmap
            .as_ref()
            .is_some_and(|b| b.is_pending(at, at + self.chunk))
    }

    /// Rebuilds members `ms` over `[at, at + len)` (whole chunks), stripe by
    /// stripe under the stripe locks, moving their rebuild marks; a member
    /// whose mark lies beyond a stripe is in sync there and joins at its
    /// mark (RAID 6 rebuilds its two lost members in one pass). Returns how
    /// many stripes lay in regions awaiting resync (rebuilt from parity
    /// that may be out of step).
    pub(crate) fn rebuild(&self, ms: &[usize], at: u64, len: u64) -> Result<u64, StorageError> {
        let n = self.n();
        let chunk = self.chunk as usize;
        let mut suspect = 0;
        for s in at / self.chunk..(at + len) / self.chunk {
            let _stripe = self.lock(s);
            let base = s * self.chunk;
            let due: Vec<usize> = ms
                .iter()
                .copied()
                .filter(|&m| self.members.synced_to(m) <= base)
                .collect();
            // A member back in its own slot passes over stripes nobody
            // wrote while it was out.
            let (skip, due): (Vec<usize>, Vec<usize>) = due
                .into_iter()
                .partition(|&m| self.members.rebuild_skips(m, base, base + self.chunk));
            for &m in &skip {
                self.members.set_synced_to(m, base + self.chunk);
            }
            if due.is_empty() {
                continue;
            }
            if self.pending(s) {
                suspect += 1;
            }
            let data = self.read_column(s, 0, chunk, true)?;
            let p = self.p_member(s);
            for &m in &due {
                let content = if m == p {
                    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                    let mut out = vec![0u8; chunk];
                    gf256::p_syndrome(&refs, &mut out);
                    out
                } else if Some(m) == self.q_member(s) {
                    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                    let mut out = vec![0u8; chunk];
                    gf256::q_syndrome(&refs, &mut out);
                    out
                } else {
                    let j = (m + 2 * n - p - self.parity) % n;
                    data[j].clone()
                };
                if !self.members.rebuild_write(m, &content, base)? {
                    return Err(StorageError::Io {
                        context: format!("rebuilding member {m} of group {}", self.members.group()),
                        source: std::io::Error::other("the new member failed"),
                    });
                }
            }
            for &m in &due {
                self.members.set_synced_to(m, base + self.chunk);
            }
        }
        Ok(suspect)
    }

    /// Recomputes P (and Q) from the data over member range `[lo, hi)`,
    /// stripe by stripe under the stripe locks. Every member must be in
    /// sync.
    pub(crate) fn resync(&self, lo: u64, hi: u64) -> Result<(), StorageError> {
        let chunk = self.chunk as usize;
        let last = (hi.min(self.per_member)).div_ceil(self.chunk);
        for s in lo / self.chunk..last {
            let _stripe = self.lock(s);
            let base = s * self.chunk;
            let mut data = vec![vec![0u8; chunk]; self.k()];
            for (j, d) in data.iter_mut().enumerate() {
                if !self.members.read(self.data_member(s, j), d, base)? {
                    return Err(self.members.failed_error());
                }
            }
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let mut p = vec![0u8; chunk];
            gf256::p_syndrome(&refs, &mut p);
            let q = self.q_member(s).map(|_| {
                let mut q = vec![0u8; chunk];
                gf256::q_syndrome(&refs, &mut q);
                q
            });
            self.write_parity(s, 0, Some(p), q)?;
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` of member `m`; `None` if it is lost.
    /// `exact`: without read-ahead (what a partial-stripe write reads of
    /// the old column, which it will not follow with the next bytes).
    fn read_member(
        &self,
        m: usize,
        offset: u64,
        len: usize,
        exact: bool,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let mut buf = vec![0u8; len];
        let read = if exact {
            self.members.read_exact(m, &mut buf, offset)?
        } else {
            self.members.read(m, &mut buf, offset)?
        };
        Ok(read.then_some(buf))
    }

    /// The data chunks of stripe `s` over `[lo, hi)` within the chunk, lost
    /// ones rebuilt from parity. Call with the stripe locked.
    ///
    /// Rebuilding from parity a stripe in a region awaiting resync fails
    /// unless `trust_pending` (a rebuild, which has nothing better).
    fn read_column(
        &self,
        s: u64,
        lo: usize,
        hi: usize,
        trust_pending: bool,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let at = s * self.chunk + lo as u64;
        let mut data = vec![vec![0u8; hi - lo]; self.k()];
        let mut lost = Vec::new();
        for (j, d) in data.iter_mut().enumerate() {
            if !self.members.read(self.data_member(s, j), d, at)? {
                lost.push(j);
            }
        }
        if lost.is_empty() {
            return Ok(data);
        }
        if !trust_pending && self.pending(s) {
            return Err(StorageError::Io {
                context: format!(
                    "RAID group {}: stripe {s} was being written when the unit stopped uncleanly \
                     and a member is lost; its parity may not match the data, so the lost chunk \
                     is not rebuilt from it (the write hole)",
                    self.members.group()
                ),
                source: std::io::Error::from_raw_os_error(5),
            });
        }
        let p = self.read_member(self.p_member(s), at, hi - lo, false)?;
        let q = match self.q_member(s) {
            Some(qm) if lost.len() + usize::from(p.is_none()) >= 2 => {
                self.read_member(qm, at, hi - lo, false)?
            }
            _ => None,
        };
        gf256::recover(&mut data, &lost, p.as_deref(), q.as_deref())
            .map_err(|_| self.members.failed_error())?;
        Ok(data)
    }

    /// Reads into `buf` from the group range at `offset`.
    pub(crate) fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        check_range(offset, buf.len() as u64, self.capacity())?;
        self.members.check()?;
        self.prefetch(offset, buf.len() as u64);
        self.for_stripes(offset, buf.len() as u64, |s, pieces| {
            for p in pieces {
                let out = &mut buf[p.pos..p.pos + p.len];
                let at = s * self.chunk + p.start as u64;
                if self.members.read(self.data_member(s, p.j), out, at)? {
                    continue;
                }
                // Lost: rebuild it from the rest of the column, which no
                // writer may change meanwhile.
                let _stripe = self.lock(s);
                let column = self.read_column(s, p.start, p.start + p.len, false)?;
                out.copy_from_slice(&column[p.j]);
            }
            Ok(())
        })
    }

    /// A read over more than one chunk takes its pieces one after another,
    /// each from another member, and a member's pieces are not adjacent
    /// (parity chunks lie between them), which the kernel's read-ahead
    /// does not take for sequential: without a word, every member would
    /// wait for the device at each of its chunks in turn. So every
    /// member's stretch of the read's stripes is asked for first, at once.
    fn prefetch(&self, offset: u64, len: u64) {
        if len <= self.chunk {
            return;
        }
        let width = self.chunk * self.k() as u64;
        let (first, last) = (offset / width, (offset + len - 1) / width);
        let (at, span) = (first * self.chunk, (last - first + 1) * self.chunk);
        for m in 0..self.n() {
            self.members.prefetch(m, at, span);
        }
    }

    /// Reads as [`Parity::read`] only if every piece's data member has it
    /// in memory; `false` otherwise, also where a piece would have to be
    /// reconstructed from the rest of its column (read the normal way).
    pub(crate) fn read_resident(&self, buf: &mut [u8], offset: u64) -> bool {
        if check_range(offset, buf.len() as u64, self.capacity()).is_err()
            || self.members.check().is_err()
        {
            return false;
        }
        let mut resident = true;
        let walked = self.for_stripes(offset, buf.len() as u64, |s, pieces| {
            for p in pieces {
                let out = &mut buf[p.pos..p.pos + p.len];
                let at = s * self.chunk + p.start as u64;
                resident = resident
                    && self
                        .members
                        .read_resident(self.data_member(s, p.j), out, at);
            }
            Ok(())
        });
        walked.is_ok() && resident
    }

    /// Writes `buf` to the group range at `offset`.
    pub(crate) fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        check_range(offset, buf.len() as u64, self.capacity())?;
        self.members.settle()?;
        {
            let width = self.chunk * self.k() as u64;
            let lo = offset / width * self.chunk;
            let hi = (offset + buf.len() as u64).div_ceil(width) * self.chunk;
            let intent = self.members.start_write(lo, hi)?;
            self.for_stripes(offset, buf.len() as u64, |s, pieces| {
                let _stripe = self.lock(s);
                self.write_stripe(s, pieces, buf)
            })?;
            intent.end()?;
        }
        // Members lost on the way are recorded before the write counts.
        self.members.settle()
    }

    /// Writes zeros over the group range (through parity, like any write).
    pub(crate) fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        check_range(offset, len, self.capacity())?;
        zero_by_writing(offset, len, |b, o| self.write(b, o))
    }

    /// One stripe's share of a write. Call with the stripe locked.
    fn write_stripe(&self, s: u64, pieces: &[Piece], buf: &[u8]) -> Result<(), StorageError> {
        let lo = pieces.iter().map(|p| p.start).min().unwrap_or(0);
        let hi = pieces.iter().map(|p| p.start + p.len).max().unwrap_or(0);
        let base = s * self.chunk;
        let parity_members: Vec<usize> = std::iter::once(self.p_member(s))
            .chain(self.q_member(s))
            .filter(|&m| self.members.in_sync_at(m, base))
            .collect();
        if parity_members.is_empty() {
            // No parity left to keep in step: the data alone.
            return self.write_pieces(s, pieces, buf);
        }
        if pieces.len() == self.k() && pieces.iter().all(|p| p.len as u64 == self.chunk) {
            return self.full_stripe_write(s, pieces, buf);
        }
        let covers = |j: usize| {
            pieces
                .iter()
                .any(|p| p.j == j && p.start == lo && p.start + p.len == hi)
        };
        let rcw_reads = (0..self.k()).filter(|&j| !covers(j)).count();
        let rmw_reads = pieces.len() + parity_members.len();
        let rmw_possible = pieces
            .iter()
            .all(|p| self.members.in_sync_at(self.data_member(s, p.j), base));
        if rmw_possible
            && rmw_reads < rcw_reads
            && self.read_modify_write(s, pieces, buf, lo, hi)?
        {
            return Ok(());
        }
        self.reconstruct_write(s, pieces, buf, lo, hi)
    }

    /// Writes the pieces' data to their members (lost members are skipped:
    /// their data lives on in parity).
    fn write_pieces(&self, s: u64, pieces: &[Piece], buf: &[u8]) -> Result<(), StorageError> {
        for p in pieces {
            self.members.write(
                self.data_member(s, p.j),
                &buf[p.pos..p.pos + p.len],
                s * self.chunk + p.start as u64,
            )?;
        }
        Ok(())
    }

    /// Writes new parity over `[lo, ...)` of the stripe's parity members.
    fn write_parity(
        &self,
        s: u64,
        lo: usize,
        p: Option<Vec<u8>>,
        q: Option<Vec<u8>>,
    ) -> Result<(), StorageError> {
        let at = s * self.chunk + lo as u64;
        if let Some(p) = p {
            self.members.write(self.p_member(s), &p, at)?;
        }
        if let (Some(q), Some(qm)) = (q, self.q_member(s)) {
            self.members.write(qm, &q, at)?;
        }
        Ok(())
    }

    /// Parity += the change each piece makes. `Ok(false)` when an old data
    /// chunk could not be read (nothing is written then; the caller
    /// reconstructs instead).
    fn read_modify_write(
        &self,
        s: u64,
        pieces: &[Piece],
        buf: &[u8],
        lo: usize,
        hi: usize,
    ) -> Result<bool, StorageError> {
        let base = s * self.chunk;
        let mut deltas = Vec::with_capacity(pieces.len());
        for p in pieces {
            let at = base + p.start as u64;
            let Some(mut old) = self.read_member(self.data_member(s, p.j), at, p.len, true)? else {
                return Ok(false);
            };
            gf256::xor_into(&mut old, &buf[p.pos..p.pos + p.len]);
            deltas.push(old);
        }
        let at = base + lo as u64;
        let mut pbuf = self.read_member(self.p_member(s), at, hi - lo, true)?;
        let mut qbuf = match self.q_member(s) {
            Some(qm) => self.read_member(qm, at, hi - lo, true)?,
            None => None,
        };
        for (p, delta) in pieces.iter().zip(&deltas) {
            let r = p.start - lo..p.start - lo + p.len;
            if let Some(pb) = &mut pbuf {
                gf256::xor_into(&mut pb[r.clone()], delta);
            }
            if let Some(qb) = &mut qbuf {
                gf256::mul_xor_into(&mut qb[r], gf256::exp2(p.j), delta);
            }
        }
        self.write_pieces(s, pieces, buf)?;
        self.write_parity(s, lo, pbuf, qbuf)?;
        Ok(true)
    }

    /// A write of every data chunk of the stripe: parity straight from the
    /// new data, nothing read and nothing copied (whichever members are
    /// lost, the parity is that of the new data).
    fn full_stripe_write(&self, s: u64, pieces: &[Piece], buf: &[u8]) -> Result<(), StorageError> {
        let base = s * self.chunk;
        let chunk = self.chunk as usize;
        // Pieces come in chunk order, j = 0..k.
        let refs: Vec<&[u8]> = pieces.iter().map(|p| &buf[p.pos..p.pos + p.len]).collect();
        let p = self.members.in_sync_at(self.p_member(s), base).then(|| {
            let mut p = vec![0u8; chunk];
            gf256::p_syndrome(&refs, &mut p);
            p
        });
        let q = self
            .q_member(s)
            .filter(|&qm| self.members.in_sync_at(qm, base))
            .map(|_| {
                let mut q = vec![0u8; chunk];
                gf256::q_syndrome(&refs, &mut q);
                q
            });
        self.write_pieces(s, pieces, buf)?;
        self.write_parity(s, 0, p, q)
    }

    /// Parity from the whole column `[lo, hi)`: the new data where the
    /// write covers it, the old (read, or rebuilt when lost) elsewhere.
    fn reconstruct_write(
        &self,
        s: u64,
        pieces: &[Piece],
        buf: &[u8],
        lo: usize,
        hi: usize,
    ) -> Result<(), StorageError> {
        let at = s * self.chunk + lo as u64;
        let len = hi - lo;
        let k = self.k();
        let covered: Vec<bool> = (0..k)
            .map(|j| {
                pieces
                    .iter()
                    .any(|p| p.j == j && p.start == lo && p.start + p.len == hi)
            })
            .collect();
        let mut data = vec![vec![0u8; len]; k];
        let mut whole = true;
        for (j, d) in data.iter_mut().enumerate() {
            if !covered[j] && !self.members.read_exact(self.data_member(s, j), d, at)? {
                whole = false;
                break;
            }
        }
        if !whole {
            data = self.read_column(s, lo, hi, false)?;
        }
        for p in pieces {
            data[p.j][p.start - lo..p.start - lo + p.len]
                .copy_from_slice(&buf[p.pos..p.pos + p.len]);
        }
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let p = self.members.in_sync_at(self.p_member(s), at).then(|| {
            let mut p = vec![0u8; len];
            gf256::p_syndrome(&refs, &mut p);
            p
        });
        let q = self
            .q_member(s)
            .filter(|&qm| self.members.in_sync_at(qm, at))
            .map(|_| {
                let mut q = vec![0u8; len];
                gf256::q_syndrome(&refs, &mut q);
                q
            });
        self.write_pieces(s, pieces, buf)?;
        self.write_parity(s, lo, p, q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_request_stripe_by_stripe() {
        let mut seen = vec![];
        // k = 2 data chunks of 4 bytes: stripes of 8.
        for_stripes(4, 2, 3, 11, |s, pieces| {
            for p in pieces {
                seen.push((s, p.j, p.start, p.len, p.pos));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (0, 0, 3, 1, 0),
                (0, 1, 0, 4, 1),
                (1, 0, 0, 4, 5),
                (1, 1, 0, 2, 9)
            ]
        );
    }
}
