//! One disk of a unit: a file or a block device, read and written with
//! positioned I/O, beginning with dvsan's superblock.
//!
//! Layout of every disk:
//!
//! ```text
//! 0        4 KiB                 64 KiB           576 KiB          1 MiB
//! | super  | write-intent bitmap | metadata slot A | metadata slot B | data …
//! ```
//!
//! The superblock names the disk and its unit and is written once, when the
//! disk is formatted. The metadata slots hold the unit's metadata (see
//! `metadata.rs`), written alternately so a torn write never loses it. A
//! member of a RAID group with redundancy keeps its group's write-intent
//! bitmap (see `bitmap.rs`) between the two.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dvsan_nbd::file_export::pread_resident;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::storage::StorageError;

/// Where data starts on every disk: everything before is dvsan's.
pub const DATA_OFFSET: u64 = 1 << 20;
/// Offsets of the two metadata slots.
pub const SLOT_OFFSETS: [u64; 2] = [64 << 10, 576 << 10];
/// Size of one metadata slot.
pub const SLOT_SIZE: u64 = 448 << 10;
/// Where the write-intent bitmap of the disk's group is.
pub const BITMAP_OFFSET: u64 = 4 << 10;
/// Room for it.
pub const BITMAP_SIZE: u64 = 60 << 10;

const SUPER_MAGIC: &[u8; 8] = b"DVSANDSK";
const FORMAT_VERSION: u32 = 1;
const SUPER_SIZE: usize = 4096;

/// What the superblock says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superblock {
    /// The unit the disk belongs to.
    pub unit: Uuid,
    /// The disk's own identity.
    pub disk: Uuid,
    /// Its number on the unit (dvsanDiskIndex).
    pub index: u32,
}

/// An open disk.
#[derive(Debug)]
pub struct Disk {
    path: PathBuf,
    file: File,
    /// The same file opened `O_DSYNC`, for the write-intent bitmap: a write
    /// through it is durable on return without flushing the data area's
    /// dirty pages as `fdatasync` of the whole file would (md writes its
    /// bitmap the same way, alone).
    dsync: File,
    /// The same file again, advised for random access: the small reads a
    /// parity update makes of what it is about to overwrite go through it,
    /// so they fetch what they ask for and no read-ahead, while sequential
    /// reads through `file` keep theirs (read-ahead state is per open
    /// file). Without it a sequential RAID 5 write that reads one chunk to
    /// update a stripe's parity pulls in the next megabytes too.
    exact: File,
    size: u64,
    superblock: Superblock,
    /// Out of service: an I/O error was seen, or the metadata says so. RAID
    /// layouts no longer read or write it; nothing clears it but a restart.
    failed: AtomicBool,
    /// Test hook: every I/O from now on fails with EIO.
    broken: AtomicBool,
}

/// Linux's EIO.
const EIO: i32 = 5;

/// `path` opened again with `options`, checked to be the same file as
/// `file`.
fn reopen(path: &Path, file: &File, options: &OpenOptions) -> Result<File, StorageError> {
    use std::os::unix::fs::MetadataExt;
    let again = options.open(path).map_err(io(path, "opening"))?;
    let id = |f: &File| f.metadata().map(|m| (m.dev(), m.ino()));
    if id(file).map_err(io(path, "opening"))? != id(&again).map_err(io(path, "opening"))? {
        return Err(StorageError::Invalid(format!(
            "{} was replaced while it was being opened",
            path.display()
        )));
    }
    Ok(again)
}

/// `path` opened again for durable writes (`Disk::dsync`).
fn open_dsync(path: &Path, file: &File) -> Result<File, StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    reopen(
        path,
        file,
        OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::DSYNC.bits() as i32),
    )
}

/// `path` opened again for reads without read-ahead (`Disk::exact`).
fn open_exact(path: &Path, file: &File) -> Result<File, StorageError> {
    let exact = reopen(path, file, OpenOptions::new().read(true))?;
    // Advice only: a file system that ignores it still reads correctly.
    let _ = rustix::fs::fadvise(&exact, 0, None, rustix::fs::Advice::Random);
    Ok(exact)
}

/// The error for a failed I/O on `path`, formatted only when there is one
/// (this sits on every read and write).
fn io<'a>(path: &'a Path, what: &'a str) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

impl Disk {
    /// Creates (sparse, when it does not exist) and formats a disk file of
    /// `size` bytes for `unit`.
    pub fn format(path: &Path, size: u64, unit: Uuid, index: u32) -> Result<Disk, StorageError> {
        if size < DATA_OFFSET + (1 << 20) {
            return Err(StorageError::Invalid(format!(
                "{}: a disk needs at least 2 MiB, got {size} bytes",
                path.display()
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path, "creating"))?;
        let current = file
            .metadata()
            .map_err(io(path, "reading the size of"))?
            .len();
        if current < size {
            file.set_len(size).map_err(io(path, "sizing"))?;
        }
        let superblock = Superblock {
            unit,
            disk: Uuid::new_v4(),
            index,
        };
        let mut block = vec![0u8; SUPER_SIZE];
        block[..8].copy_from_slice(SUPER_MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        block[12..28].copy_from_slice(superblock.unit.as_bytes());
        block[28..44].copy_from_slice(superblock.disk.as_bytes());
        block[44..48].copy_from_slice(&index.to_le_bytes());
        block[48..56].copy_from_slice(&size.max(current).to_le_bytes());
        let crc = crc32fast::hash(&block[..56]);
        block[56..60].copy_from_slice(&crc.to_le_bytes());
        file.write_all_at(&block, 0)
            .map_err(io(path, "writing the superblock of"))?;
        // Both slots empty: an old table from a previous life must not be read.
        let empty = vec![0u8; 64];
        for slot in SLOT_OFFSETS {
            file.write_all_at(&empty, slot)
                .map_err(io(path, "clearing the metadata of"))?;
        }
        file.write_all_at(&empty, BITMAP_OFFSET)
            .map_err(io(path, "clearing the bitmap of"))?;
        file.sync_all().map_err(io(path, "syncing"))?;
        Ok(Disk {
            path: path.to_path_buf(),
            size: size.max(current),
            dsync: open_dsync(path, &file)?,
            exact: open_exact(path, &file)?,
            file,
            superblock,
            failed: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        })
    }

    /// Opens a formatted disk.
    pub fn open(path: &Path) -> Result<Disk, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path, "opening"))?;
        let mut block = vec![0u8; SUPER_SIZE];
        file.read_exact_at(&mut block, 0)
            .map_err(io(path, "reading the superblock of"))?;
        let bad = |why: &str| StorageError::Corrupt(format!("{}: {why}", path.display()));
        if &block[..8] != SUPER_MAGIC {
            return Err(bad("not a dvsan disk (no superblock)"));
        }
        let stored = u32::from_le_bytes(block[56..60].try_into().expect("4 bytes"));
        if crc32fast::hash(&block[..56]) != stored {
            return Err(bad("superblock checksum mismatch"));
        }
        let version = u32::from_le_bytes(block[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(bad(&format!(
                "format version {version}, this dvsan reads {FORMAT_VERSION}"
            )));
        }
        let uuid =
            |r: std::ops::Range<usize>| Uuid::from_slice(&block[r]).map_err(|_| bad("bad UUID"));
        let superblock = Superblock {
            unit: uuid(12..28)?,
            disk: uuid(28..44)?,
            index: u32::from_le_bytes(block[44..48].try_into().expect("4 bytes")),
        };
        let size = u64::from_le_bytes(block[48..56].try_into().expect("8 bytes"));
        Ok(Disk {
            path: path.to_path_buf(),
            dsync: open_dsync(path, &file)?,
            exact: open_exact(path, &file)?,
            file,
            size,
            superblock,
            failed: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        })
    }

    /// The disk's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes, dvsan's area included.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes available for data.
    pub fn data_size(&self) -> u64 {
        self.size - DATA_OFFSET
    }

    /// Its superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// Whether the disk is out of service: an I/O error was seen on it, or
    /// the metadata records it as a failed member of its group.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Takes the disk out of service until the next restart.
    pub(crate) fn mark_failed(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Puts the disk back in service (an administrator assigned it again).
    pub(crate) fn clear_failed(&self) {
        self.failed.store(false, Ordering::Release);
    }

    /// Makes every later I/O on this disk (data, metadata, sync) fail with
    /// EIO, as a dying disk would. For tests.
    #[doc(hidden)]
    pub fn fail_for_test(&self) {
        self.broken.store(true, Ordering::Release);
    }

    /// Undoes [`Disk::fail_for_test`]: I/O works again, as on a disk whose
    /// cable was reseated (the unit still counts it failed until it is
    /// put back in a slot). For tests.
    #[doc(hidden)]
    pub fn heal_for_test(&self) {
        self.broken.store(false, Ordering::Release);
    }

    fn alive(&self, what: &str) -> Result<(), StorageError> {
        if self.broken.load(Ordering::Acquire) {
            return Err(io(&self.path, what)(std::io::Error::from_raw_os_error(EIO)));
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` of the data area.
    pub fn read_data(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        self.check(offset, buf.len() as u64)?;
        self.alive("reading")?;
        self.file
            .read_exact_at(buf, DATA_OFFSET + offset)
            .map_err(io(&self.path, "reading"))
    }

    /// Reads as [`Disk::read_data`] only if the page cache holds the whole
    /// range (no wait for the device): `false` when it does not, or on any
    /// error (the caller then reads with [`Disk::read_data`], which reports
    /// it).
    pub fn read_data_resident(&self, buf: &mut [u8], offset: u64) -> bool {
        self.check(offset, buf.len() as u64).is_ok()
            && self.alive("reading").is_ok()
            && matches!(
                pread_resident(&self.file, buf, DATA_OFFSET + offset),
                Ok(true)
            )
    }

    /// Starts reading `len` bytes at `offset` of the data area into the
    /// page cache, without waiting (advice: errors are ignored).
    pub fn prefetch(&self, offset: u64, len: u64) {
        if self.check(offset, len).is_ok() && self.alive("reading").is_ok() {
            let _ = rustix::fs::fadvise(
                &self.file,
                DATA_OFFSET + offset,
                std::num::NonZeroU64::new(len),
                rustix::fs::Advice::WillNeed,
            );
        }
    }

    /// Reads as [`Disk::read_data`] but without read-ahead: for a small
    /// read the caller will not follow with the next bytes.
    pub fn read_data_exact(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        self.check(offset, buf.len() as u64)?;
        self.alive("reading")?;
        self.exact
            .read_exact_at(buf, DATA_OFFSET + offset)
            .map_err(io(&self.path, "reading"))
    }

    /// Writes `buf` at `offset` of the data area.
    pub fn write_data(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        self.check(offset, buf.len() as u64)?;
        self.alive("writing")?;
        self.file
            .write_all_at(buf, DATA_OFFSET + offset)
            .map_err(io(&self.path, "writing"))
    }

    /// Writes `len` zero bytes at `offset` of the data area.
    pub fn zero_data(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK.min(len) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK);
            self.write_data(&zeros[..n as usize], offset + done)?;
            done += n;
        }
        Ok(())
    }

    /// Makes the data range read as zeros, quickly where the file system
    /// can (a hole punched in a file), else by writing zeros.
    pub fn discard_data(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.check(offset, len)?;
        self.alive("zeroing")?;
        let punched = rustix::fs::fallocate(
            &self.file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            DATA_OFFSET + offset,
            len,
        );
        match punched {
            Ok(()) => Ok(()),
            Err(_) => self.zero_data(offset, len),
        }
    }

    /// Makes every write so far durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.alive("syncing")?;
        self.file.sync_data().map_err(io(&self.path, "syncing"))
    }

    /// Reads the write-intent bitmap area into `buf` (at most
    /// [`BITMAP_SIZE`] bytes).
    pub(crate) fn read_bitmap(&self, buf: &mut [u8]) -> Result<(), StorageError> {
        self.alive("reading the bitmap of")?;
        let len = buf.len().min(BITMAP_SIZE as usize);
        self.file
            .read_exact_at(&mut buf[..len], BITMAP_OFFSET)
            .map_err(io(&self.path, "reading the bitmap of"))
    }

    /// Writes `buf` into the write-intent bitmap area, durably.
    pub(crate) fn write_bitmap(&self, buf: &[u8]) -> Result<(), StorageError> {
        if buf.len() as u64 > BITMAP_SIZE {
            return Err(StorageError::Invalid(format!(
                "a bitmap of {} bytes does not fit its {BITMAP_SIZE}-byte area",
                buf.len()
            )));
        }
        self.alive("writing the bitmap of")?;
        // O_DSYNC: durable on return, the bitmap's pages alone.
        self.dsync
            .write_all_at(buf, BITMAP_OFFSET)
            .map_err(io(&self.path, "writing the bitmap of"))
    }

    /// Raw access to the metadata slots.
    pub(crate) fn read_slot(&self, slot: usize, buf: &mut [u8]) -> Result<(), StorageError> {
        self.alive("reading metadata of")?;
        self.file
            .read_exact_at(buf, SLOT_OFFSETS[slot])
            .map_err(io(&self.path, "reading metadata of"))
    }

    pub(crate) fn write_slot(&self, slot: usize, buf: &[u8]) -> Result<(), StorageError> {
        if buf.len() as u64 > SLOT_SIZE {
            return Err(StorageError::Invalid(format!(
                "metadata of {} bytes does not fit a {SLOT_SIZE}-byte slot",
                buf.len()
            )));
        }
        self.alive("writing metadata of")?;
        self.file
            .write_all_at(buf, SLOT_OFFSETS[slot])
            .map_err(io(&self.path, "writing metadata of"))?;
        self.file
            .sync_data()
            .map_err(io(&self.path, "syncing metadata of"))
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.data_size() => Ok(()),
            _ => Err(StorageError::Invalid(format!(
                "{}: {len} bytes at {offset} lie past the data area ({} bytes)",
                self.path.display(),
                self.data_size()
            ))),
        }
    }
}
