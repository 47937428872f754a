//! [`FileExport`]: an [`Export`] over a plain file (or block device), for
//! tests, benchmarks and simple deployments.
//!
//! Reads and writes are `pread`/`pwrite`, so concurrent workers never share
//! a file offset; FLUSH is `fdatasync`; TRIM and zeroing use `fallocate`
//! (punch hole / zero range) when the filesystem supports it; block status
//! walks `SEEK_DATA`/`SEEK_HOLE`. All through `rustix`, keeping the crate
//! free of `unsafe`.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSliceMut};
use std::num::NonZeroU64;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{Advice, FallocateFlags, SeekFrom};
use rustix::io::{Errno, ReadWriteFlags};

use crate::consts::StateFlags;
use crate::export::{BlockSizes, Export, ExportFlags, Extent};

/// Most extents one block-status call reports; the client asks again for
/// the rest, so this only bounds the work per request.
const MAX_EXTENTS: usize = 1024;
/// Chunk used when zeroes must be written as data.
const ZERO_CHUNK: usize = 1 << 20;

/// A file served as an NBD export.
#[derive(Debug)]
pub struct FileExport {
    file: File,
    size: u64,
    read_only: bool,
}

impl FileExport {
    /// Opens `path` (read-write unless `read_only`); the export size is the
    /// file size at open time.
    pub fn open(path: impl AsRef<Path>, read_only: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        Self::from_file(file, read_only)
    }

    /// Serves an already opened file.
    pub fn from_file(file: File, read_only: bool) -> io::Result<Self> {
        // Block devices report length 0 in metadata; seeking to the end
        // gives the real size for both.
        let size = rustix::fs::seek(&file, SeekFrom::End(0))?;
        Ok(FileExport {
            file,
            size,
            read_only,
        })
    }

    fn zero_by_writing(&self, mut offset: u64, len: u64) -> io::Result<()> {
        let zeroes = vec![0u8; ZERO_CHUNK.min(len as usize)];
        let end = offset + len;
        while offset < end {
            let n = ((end - offset) as usize).min(zeroes.len());
            self.file.write_all_at(&zeroes[..n], offset)?;
            offset += n as u64;
        }
        Ok(())
    }

    fn fallocate(&self, mode: FallocateFlags, offset: u64, len: u64) -> io::Result<()> {
        Ok(rustix::fs::fallocate(&self.file, mode, offset, len)?)
    }
}

/// Reads `buf` from `offset` in `file` only as far as the page cache
/// holds it (`preadv2` with `RWF_NOWAIT`): `Ok(true)` once `buf` is full;
/// `Ok(false)` as soon as a part would have to come from the device, the
/// file ends first, or the kernel or file system cannot tell (`buf` then
/// holds anything). For [`Export::read_resident`].
pub fn pread_resident(file: impl AsFd, buf: &mut [u8], offset: u64) -> io::Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        let mut slice = [IoSliceMut::new(&mut buf[done..])];
        match rustix::io::preadv2(
            &file,
            &mut slice,
            offset + done as u64,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) => return Ok(false),
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn unsupported(e: &io::Error) -> bool {
    let raw = e.raw_os_error();
    raw == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error())
        || raw == Some(rustix::io::Errno::NOSYS.raw_os_error())
        || raw == Some(rustix::io::Errno::INVAL.raw_os_error())
}

impl Export for FileExport {
    fn size(&self) -> u64 {
        self.size
    }

    fn flags(&self) -> ExportFlags {
        ExportFlags {
            read_only: self.read_only,
            can_trim: true,
            can_zero: true,
            fast_zero: true,
            // One file, one page cache: a flush on any connection covers
            // writes completed on every connection.
            multi_conn: true,
            can_cache: true,
        }
    }

    fn block_sizes(&self) -> BlockSizes {
        BlockSizes::default()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn read_resident(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        pread_resident(&self.file, buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64, fua: bool) -> io::Result<()> {
        self.file.write_all_at(buf, offset)?;
        if fua {
            rustix::fs::fdatasync(&self.file)?;
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(rustix::fs::fdatasync(&self.file)?)
    }

    fn trim(&self, offset: u64, len: u64, fua: bool) -> io::Result<()> {
        match self.fallocate(
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        ) {
            Ok(()) => {}
            // TRIM is advisory: a filesystem without hole punching keeps
            // the data, which is allowed.
            Err(e) if unsupported(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        if fua {
            rustix::fs::fdatasync(&self.file)?;
        }
        Ok(())
    }

    fn write_zeroes(
        &self,
        offset: u64,
        len: u64,
        no_hole: bool,
        fast: bool,
        fua: bool,
    ) -> io::Result<()> {
        // Punching a hole zeroes and deallocates; ZERO_RANGE zeroes and keeps
        // the blocks allocated, which is what NO_HOLE asks for.
        let attempts: &[FallocateFlags] = if no_hole {
            &[FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE]
        } else {
            &[
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
            ]
        };
        let mut done = false;
        for &mode in attempts {
            match self.fallocate(mode, offset, len) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) if unsupported(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        if !done {
            if fast {
                return Err(io::Error::from(io::ErrorKind::Unsupported));
            }
            self.zero_by_writing(offset, len)?;
        }
        if fua {
            rustix::fs::fdatasync(&self.file)?;
        }
        Ok(())
    }

    fn cache(&self, offset: u64, len: u64) -> io::Result<()> {
        Ok(rustix::fs::fadvise(
            &self.file,
            offset,
            NonZeroU64::new(len),
            Advice::WillNeed,
        )?)
    }

    fn block_status(&self, offset: u64, len: u64) -> io::Result<Vec<Extent>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut extents = Vec::new();
        let mut pos = offset;
        let nxio = |e: &rustix::io::Errno| *e == rustix::io::Errno::NXIO;
        while pos < end && extents.len() < MAX_EXTENTS {
            // Where does data start at or after pos? ENXIO: only a hole
            // remains up to EOF.
            let data = match rustix::fs::seek(&self.file, SeekFrom::Data(pos)) {
                Ok(d) => d,
                Err(e) if nxio(&e) => end,
                Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::OPNOTSUPP => {
                    // No SEEK_DATA support: report everything as data.
                    extents.push(Extent {
                        length: end - pos,
                        flags: StateFlags::empty(),
                    });
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            if data > pos {
                let stop = data.min(end);
                extents.push(Extent {
                    length: stop - pos,
                    flags: StateFlags::HOLE | StateFlags::ZERO,
                });
                pos = stop;
                continue;
            }
            let hole = match rustix::fs::seek(&self.file, SeekFrom::Hole(pos)) {
                Ok(h) => h,
                Err(e) if nxio(&e) => end,
                Err(e) => return Err(e.into()),
            };
            // SEEK_HOLE never returns pos itself when pos is in data; the
            // max() guards the loop's progress against odd filesystems.
            let stop = hole.min(end).max(pos + 1);
            extents.push(Extent {
                length: stop - pos,
                flags: StateFlags::empty(),
            });
            pos = stop;
        }
        Ok(extents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_export(size: u64) -> (tempfile::NamedTempFile, FileExport) {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        f.as_file().set_len(size).expect("set_len");
        let e = FileExport::open(f.path(), false).expect("open");
        (f, e)
    }

    #[test]
    fn write_read_zero_round_trip() {
        let (_f, e) = temp_export(1 << 20);
        assert_eq!(e.size(), 1 << 20);
        e.write_at(&[0xab; 8192], 4096, true).expect("write");
        let mut buf = vec![0; 8192];
        e.read_at(&mut buf, 4096).expect("read");
        assert!(buf.iter().all(|&b| b == 0xab));
        e.write_zeroes(4096, 4096, false, false, false)
            .expect("zero");
        e.read_at(&mut buf, 4096).expect("read");
        assert!(buf[..4096].iter().all(|&b| b == 0));
        assert!(buf[4096..].iter().all(|&b| b == 0xab));
    }

    #[test]
    fn block_status_sees_holes_and_data() {
        let (_f, e) = temp_export(1 << 20);
        e.write_at(&[1; 65536], 256 * 1024, false).expect("write");
        let ext = e.block_status(0, 1 << 20).expect("status");
        let total: u64 = ext.iter().map(|x| x.length).sum();
        assert_eq!(total, 1 << 20);
        // The written range is data, the start of the file a hole.
        assert_eq!(ext[0].flags, StateFlags::HOLE | StateFlags::ZERO);
        let mut pos = 0;
        let mut saw_data = false;
        for x in &ext {
            if x.flags.is_empty() {
                assert!(pos <= 256 * 1024 && pos + x.length >= 256 * 1024 + 65536);
                saw_data = true;
            }
            pos += x.length;
        }
        assert!(saw_data);
    }
}
