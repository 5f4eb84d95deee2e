//! A segmented, append-only log on O_DIRECT files: RocketMQ's "mapped file queue", without mmap.
//!
//! The commit log and every consume queue are one of these. A log is a folder of segment files, each
//! `segment_size` bytes long, named by its start offset as 20 zero-padded digits
//! (`00000000001073741824`). Appends go to the [`write_buffer::WriteBuffer`] in memory and never wait; a flush
//! writes whole aligned blocks through io_uring (glommio's `DmaFile`) and fdatasyncs each file it touched.
//! Reads are served from the buffer when it still holds the bytes, otherwise from disk.
//!
//! # Contracts
//! - Owned by one shard: `!Send` on purpose (`Rc`, `RefCell`); no borrow is held across an `.await`.
//! - At most one flush runs at a time (the engine's flusher is its only caller).
//! - A segment file is created at its full length (sparse, as RocketMQ's `setLength`, so that RocketMQ's
//!   own tools accept it) and its disk blocks are allocated (`fallocate`) in steps that grow with the
//!   data: the first step is `segment_size / 1024` (at least one 4 KiB block), each next one doubles what
//!   the segment holds, up to `segment_size / 16` ([`allocation_end`]). So a store's footprint follows
//!   what it holds, not its number of queues (a consume queue with one entry takes 8 KiB, not 6 MB), and
//!   a busy segment is still allocated in a few large, contiguous steps. Writes only ever land on
//!   allocated blocks: the appender allocates before it accepts (a full disk refuses the append, see
//!   [`SegmentedLog::ensure_allocated`]), and a flush allocates what its writes cover and one step ahead
//!   of them, creating the next segment when the write head nears a segment's end.

pub mod write_buffer;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use glommio::io::{DmaFile, OpenOptions};

use crate::error::{EngineError, Result};
use crate::limits::{FLUSH_WRITES_IN_FLIGHT_MAX, FLUSH_WRITE_BYTES};
use write_buffer::{align_down, align_up, WriteBuffer};

/// Makes glommio's per-thread "does this device support IOPOLL?" probe see the truth for the device
/// holding `dir`.
///
/// glommio decides on the first `DmaFile` it opens per device and thread, by reading offset 0 of that file.
/// On a new, empty file the read never reaches the device, so it "succeeds", glommio marks the device
/// pollable, and every later read of real data goes to the IOPOLL ring, failing with EOPNOTSUPP on devices
/// without poll queues (virtio-blk, most cloud disks). Opening a file whose first block is written and
/// synced first makes the probe read the device and cache the right answer. Call once per shard thread
/// before opening any segment.
///
/// The probe file `<dir>/.iopoll-probe` (one block) is kept, so that a restart on a full disk needs no new
/// space. When it is missing and cannot be written (no space), the oldest commit log segment serves instead:
/// its first block always holds data.
pub async fn prime_iopoll_probe(dir: &Path) -> Result<()> {
    let probe = dir.join(".iopoll-probe");
    let block = crate::limits::DIRECT_IO_ALIGN_BYTES;
    let usable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() >= block);
    let target = if usable(&probe) {
        probe
    } else {
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&probe)?;
            f.write_all(&[0xA5u8; crate::limits::DIRECT_IO_ALIGN_BYTES as usize])?;
            f.sync_all()
        };
        match write() {
            Ok(()) => probe,
            Err(e) => {
                let _ = std::fs::remove_file(&probe);
                let commitlog = dir.join("commitlog");
                let oldest = list_segments(&commitlog)?
                    .first()
                    .map(|b| commitlog.join(segment_file_name(*b)))
                    .filter(|p| usable(p));
                match oldest {
                    Some(segment) => segment,
                    // A new store on a device with no room: nothing to read, nothing stored to lose.
                    None => return Err(EngineError::io(&probe, e)),
                }
            }
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .dma_open(&target)
        .await
        .map_err(|e| EngineError::io(&target, e))?;
    let _ = file.close().await;
    Ok(())
}

/// File name of the segment starting at `base`.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}")
}

/// Segment bases found in `dir`, ascending; files whose names are not 20 digits are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(bases),
        Err(e) => return Err(EngineError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(base) = name.parse() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// One open segment file and how much of it has disk blocks.
struct Segment {
    file: Rc<DmaFile>,
    /// Bytes from the segment's start that are allocated (a multiple of 4 KiB, or the segment size).
    allocated_bytes: u64,
}

struct Inner {
    segments: BTreeMap<u64, Segment>,
    buffer: WriteBuffer,
    /// Lowest readable offset: the first segment's base, or later after retention.
    min_offset: u64,
}

/// See the module docs.
pub struct SegmentedLog {
    dir: PathBuf,
    segment_size: u64,
    inner: RefCell<Inner>,
    /// fdatasync calls issued, for tests and benchmarks that prove group commit.
    syncs: std::cell::Cell<u64>,
    /// Bytes allocated since the engine last asked ([`Self::take_allocated_bytes`]), so that the disk's
    /// used ratio is sampled again right after the log takes space.
    allocated: std::cell::Cell<u64>,
    /// Full-size flush write buffers kept for the next flush (at most one per write in flight).
    flush_buffers: RefCell<Vec<Rc<glommio::io::DmaBuffer>>>,
}

/// Where a segment's allocation must end so that it covers `want` bytes, when it has `allocated` now:
/// steps from `segment_size / 1024` doubling up to `segment_size / 16`, 4 KiB-aligned, capped at the
/// segment size. See the module docs for why.
pub fn allocation_end(allocated: u64, want: u64, segment_size: u64) -> u64 {
    let (min_step, max_step) = allocation_steps(segment_size);
    let mut end = allocated;
    while end < want.min(segment_size) {
        end += end.clamp(min_step, max_step);
    }
    end.min(segment_size)
}

/// The smallest and the largest allocation step of a segment of `segment_size` bytes, 4 KiB-aligned.
fn allocation_steps(segment_size: u64) -> (u64, u64) {
    let align = crate::limits::DIRECT_IO_ALIGN_BYTES;
    let min_step =
        align_up(segment_size / crate::limits::SEGMENT_ALLOCATION_FIRST_STEP_DIVISOR).max(align);
    let max_step =
        align_up(segment_size / crate::limits::SEGMENT_ALLOCATION_MAX_STEP_DIVISOR).max(min_step);
    (min_step, max_step)
}

/// Allocates the blocks of `[offset, offset + len)` (`fallocate(2)`, mode 0: the file's length is already
/// the segment's). Only the new range: glommio's `pre_allocate` always starts at 0, and walking the extents
/// that in-flight O_DIRECT writes are filling, on every step, is work and risk for nothing. fallocate has no
/// io_uring path in glommio's public API, so it runs on the executor's blocking pool, off the shard's thread.
async fn allocate_range(file: &DmaFile, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    // The caller holds `file` until this resolves, so `fd` stays open while the pool uses it.
    crate::blocking::run(move || {
        // SAFETY: fallocate reads no memory of ours; `fd` is an open descriptor (see above).
        if unsafe { libc::fallocate(fd, 0, offset, len) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    })
    .await
}

/// Opens an existing segment file and finds how much of it is allocated (a store written before stepped
/// allocation, or by RocketMQ, has whole segments allocated; a sparse one reports only its blocks).
async fn open_segment(path: &Path, segment_size: u64) -> Result<Segment> {
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .dma_open(path)
        .await
        .map_err(|e| EngineError::io(path, e))?;
    // Start-up only: the blocking stat runs before the shard serves anything.
    let blocks_bytes = std::fs::metadata(path)
        .map_err(|e| EngineError::io(path, e))?
        .blocks()
        * 512;
    Ok(Segment {
        file: Rc::new(file),
        allocated_bytes: align_down(blocks_bytes).min(segment_size),
    })
}

/// Creates a segment file at its full (sparse) length, and its folder if missing; no blocks are allocated
/// yet. A file that exists already (a second caller raced this one) is opened as it is.
async fn create_segment(path: &Path, segment_size: u64) -> Result<(DmaFile, bool)> {
    crate::faults::check(crate::faults::FaultPoint::Preallocate)
        .map_err(|e| EngineError::io(path, e))?;
    let owned = path.to_owned();
    let existed = crate::blocking::run(move || {
        if let Some(dir) = owned.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok::<bool, std::io::Error>(owned.exists())
    })
    .await
    .map_err(|e| EngineError::io(path, e))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .dma_open(path)
        .await
        .map_err(|e| EngineError::io(path, e))?;
    let sized = async {
        if file.file_size().await? < segment_size {
            file.truncate(segment_size).await?;
        }
        Ok::<(), std::io::Error>(())
    }
    .await;
    if let Err(e) = sized {
        let _ = file.close().await;
        if !existed {
            let _ = crate::blocking::remove_file_if_exists(path.to_owned()).await;
        }
        return Err(EngineError::io(path, e));
    }
    Ok((file, existed))
}

impl SegmentedLog {
    /// Opens the log in `dir` (created if missing) with every segment readable and the write position at
    /// the end of the last segment. Recovery reads what it needs, then calls [`Self::set_position`].
    pub async fn open(dir: impl Into<PathBuf>, segment_size: u64) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let mut segments = BTreeMap::new();
        for base in list_segments(&dir)? {
            if base % segment_size != 0 {
                return Err(EngineError::Corrupt {
                    what: "segment name",
                    path: dir.join(segment_file_name(base)),
                    offset: base,
                    reason: format!("not a multiple of the segment size {segment_size}"),
                });
            }
            let path = dir.join(segment_file_name(base));
            segments.insert(base, open_segment(&path, segment_size).await?);
        }
        let end = segments.keys().next_back().map_or(0, |b| b + segment_size);
        let min_offset = segments.keys().next().copied().unwrap_or(0);
        Ok(Self {
            dir,
            segment_size,
            inner: RefCell::new(Inner {
                segments,
                buffer: WriteBuffer::new(segment_size, end, Vec::new()),
                min_offset,
            }),
            syncs: Default::default(),
            allocated: Default::default(),
            flush_buffers: Default::default(),
        })
    }

    /// A new log with no segments yet, writing from offset 0. No I/O: its folder is made with its first
    /// segment (so that a queue created while serving costs the shard no blocking call).
    pub fn create_empty(dir: impl Into<PathBuf>, segment_size: u64) -> Result<Self> {
        let dir = dir.into();
        Ok(Self {
            dir,
            segment_size,
            inner: RefCell::new(Inner {
                segments: BTreeMap::new(),
                buffer: WriteBuffer::new(segment_size, 0, Vec::new()),
                min_offset: 0,
            }),
            syncs: Default::default(),
            allocated: Default::default(),
            flush_buffers: Default::default(),
        })
    }

    /// Puts the write position at `position`: segments wholly past it are deleted (recovery has decided
    /// they hold nothing valid) and the partial block before it is read back into the buffer.
    pub async fn set_position(&self, position: u64) -> Result<()> {
        let keep_through = align_down_segment(position, self.segment_size);
        let doomed: Vec<u64> = self
            .inner
            .borrow()
            .segments
            .range(keep_through + 1..)
            .map(|(b, _)| *b)
            .collect();
        for base in doomed {
            let segment = self.inner.borrow_mut().segments.remove(&base);
            if let Some(s) = segment {
                let _ = s.file.close_rc().await;
            }
            let path = self.segment_path(base);
            crate::blocking::remove_file_if_exists(path.clone())
                .await
                .map_err(|e| EngineError::io(path, e))?;
        }
        let tail_start = align_down(position);
        let tail =
            if tail_start < position && self.inner.borrow().segments.contains_key(&keep_through) {
                self.read_disk(tail_start, (position - tail_start) as usize)
                    .await?
                    .to_vec()
            } else {
                vec![0u8; (position - tail_start) as usize]
            };
        let mut inner = self.inner.borrow_mut();
        inner.buffer = WriteBuffer::new(self.segment_size, position, tail);
        if inner.segments.is_empty() {
            inner.min_offset = keep_through;
        }
        Ok(())
    }

    /// fdatasync calls issued by flushes so far.
    pub fn sync_count(&self) -> u64 {
        self.syncs.get()
    }

    /// Bytes allocated since the last call.
    pub fn take_allocated_bytes(&self) -> u64 {
        self.allocated.replace(0)
    }

    /// Whether the segment starting at `base` exists.
    pub fn has_segment(&self, base: u64) -> bool {
        self.inner.borrow().segments.contains_key(&base)
    }

    /// Whether `[segment start, through)` of the segment holding `through - 1` has disk blocks: an
    /// appender that gets `true` needs no allocation before it writes there.
    pub fn is_allocated(&self, through: u64) -> bool {
        if through == 0 {
            return true;
        }
        let base = align_down_segment(through - 1, self.segment_size);
        self.inner
            .borrow()
            .segments
            .get(&base)
            .is_some_and(|s| s.allocated_bytes >= through - base)
    }

    /// Creates the segment holding `through - 1` if missing and allocates its blocks up to at least
    /// `through` (in the steps of [`allocation_end`]). Appenders call it before they accept bytes up to
    /// `through`, so that a disk without room refuses the append instead of failing its flush.
    pub async fn ensure_allocated(&self, through: u64) -> Result<()> {
        if through == 0 {
            return Ok(());
        }
        let base = align_down_segment(through - 1, self.segment_size);
        self.segment_for_write(base, through).await.map(|_| ())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }

    /// Offset the next append lands at.
    pub fn written(&self) -> u64 {
        self.inner.borrow().buffer.written()
    }

    /// Offset below which everything is synced to disk.
    pub fn durable(&self) -> u64 {
        self.inner.borrow().buffer.durable()
    }

    /// Bytes appended but not yet durable.
    pub fn pending_bytes(&self) -> u64 {
        self.inner.borrow().buffer.pending_bytes()
    }

    pub fn min_offset(&self) -> u64 {
        self.inner.borrow().min_offset
    }

    /// The lowest offset the write buffer still holds in memory: a segment wholly below it is on disk.
    pub fn memory_start(&self) -> u64 {
        self.inner.borrow().buffer.memory_start()
    }

    /// Bytes left in the segment the next append lands in.
    pub fn segment_remaining(&self) -> u64 {
        self.inner.borrow().buffer.segment_remaining()
    }

    /// Appends `len` bytes produced by `fill`; see [`WriteBuffer::append_with`].
    pub fn append_with(&self, len: usize, fill: impl FnOnce(&mut Vec<u8>)) -> u64 {
        self.inner.borrow_mut().buffer.append_with(len, fill)
    }

    /// Appends bytes; returns their offset.
    pub fn append(&self, bytes: &[u8]) -> u64 {
        self.inner.borrow_mut().buffer.append(bytes)
    }

    /// Moves the write position to the next segment's start.
    pub fn skip_to_next_segment(&self) {
        self.inner.borrow_mut().buffer.skip_to_next_segment();
    }

    /// Writes everything appended so far and syncs it; returns the new durable offset.
    ///
    /// Each chunk goes out in writes of at most [`FLUSH_WRITE_BYTES`], up to [`FLUSH_WRITES_IN_FLIGHT_MAX`]
    /// of them in flight: the disk starts on the first while the next are copied, and the full-size DMA
    /// buffers are reused from flush to flush, so a flush of tens of MB neither maps fresh memory (a page
    /// fault and a page clear per 4 KiB, most of a flush's CPU when the buffer was one fresh allocation)
    /// nor waits for one huge write before anything reaches the device.
    pub async fn flush(&self) -> Result<u64> {
        // Plan under a short borrow; each write's bytes are copied straight from the buffer into its DMA
        // buffer once the segment file is at hand. The pieces stay where they are meanwhile: chunks are only
        // dropped by `flushed`, which only this flush calls (one flush at a time), and appends only add
        // bytes past them.
        let (pieces, target) = self.inner.borrow().buffer.flush_plan();
        if pieces.is_empty() {
            self.inner.borrow_mut().buffer.flushed(target);
            return Ok(target);
        }
        let mut touched: Vec<Rc<DmaFile>> = Vec::with_capacity(2);
        let mut in_flight = futures::stream::FuturesUnordered::new();
        for piece in &pieces {
            let start = &piece.start;
            let base = align_down_segment(*start, self.segment_size);
            let len = align_up(piece.len as u64) as usize;
            let through = (start + len as u64).min(base + self.segment_size);
            let file = self.segment_for_write(base, through).await?;
            let path = Rc::new(self.dir.join(segment_file_name(base)));
            let mut from = 0usize;
            while from < piece.len {
                let used = (piece.len - from).min(FLUSH_WRITE_BYTES);
                let mut dma = self.flush_buffer(&file, align_up(used as u64) as usize);
                {
                    let bytes = Rc::get_mut(&mut dma).expect("a flush buffer is not shared");
                    let bytes = bytes.as_bytes_mut();
                    let inner = self.inner.borrow();
                    let chunk = inner.buffer.chunk(piece.chunk_index);
                    assert!(
                        chunk.start == piece.start && chunk.data.len() >= piece.len,
                        "the write buffer changed under a flush: chunk {} starts at {} with {} bytes, the plan said {} with {}",
                        piece.chunk_index,
                        chunk.start,
                        chunk.data.len(),
                        piece.start,
                        piece.len
                    );
                    bytes[..used].copy_from_slice(&chunk.data[from..from + used]);
                    bytes[used..].fill(0);
                }
                let pos = start - base + from as u64;
                crate::faults::check(crate::faults::FaultPoint::FlushWrite)
                    .map_err(|e| EngineError::io(path.as_path(), e))?;
                while in_flight.len() >= FLUSH_WRITES_IN_FLIGHT_MAX {
                    self.finish_flush_write(&mut in_flight).await?;
                }
                let (file, path) = (file.clone(), path.clone());
                in_flight.push(async move {
                    let want = dma.len();
                    let n = file
                        .write_rc_at(dma.clone(), pos)
                        .await
                        .map_err(std::io::Error::from);
                    (n, want, dma, path)
                });
                from += used;
            }
            if !touched.iter().any(|f| Rc::ptr_eq(f, &file)) {
                touched.push(file);
            }
        }
        while !in_flight.is_empty() {
            self.finish_flush_write(&mut in_flight).await?;
        }
        for file in touched {
            file.fdatasync()
                .await
                .map_err(|e| EngineError::io(&self.dir, e))?;
            self.syncs.set(self.syncs.get() + 1);
        }
        self.inner.borrow_mut().buffer.flushed(target);
        // Allocate one step ahead of the write head, in this segment or the next one, so that appends
        // seldom wait for an allocation. What was flushed is durable whatever happens here: a failure (no
        // space) is only logged, and the appender meets it again in `ensure_allocated`, where it refuses
        // the append.
        if let Err(e) = self.allocate_ahead(target).await {
            tracing::warn!(error = %e, "cannot allocate disk blocks ahead of the writer");
        }
        Ok(target)
    }

    /// A DMA buffer of `len` bytes for a flush write: a reused one when `len` is the full write size.
    fn flush_buffer(&self, file: &DmaFile, len: usize) -> Rc<glommio::io::DmaBuffer> {
        if len == FLUSH_WRITE_BYTES {
            if let Some(b) = self.flush_buffers.borrow_mut().pop() {
                return b;
            }
        }
        Rc::new(file.alloc_dma_buffer(len))
    }

    /// Waits for one flush write to complete; checks it wrote everything and keeps its buffer for reuse.
    async fn finish_flush_write<F>(
        &self,
        in_flight: &mut futures::stream::FuturesUnordered<F>,
    ) -> Result<()>
    where
        F: std::future::Future<
            Output = (
                std::io::Result<usize>,
                usize,
                Rc<glommio::io::DmaBuffer>,
                Rc<PathBuf>,
            ),
        >,
    {
        use futures::StreamExt;
        let Some((n, want, dma, path)) = in_flight.next().await else {
            return Ok(());
        };
        let n = n.map_err(|e| EngineError::io(path.as_path(), e))?;
        if n != want {
            return Err(EngineError::io(
                path.as_path(),
                std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {n} of {want}"),
                ),
            ));
        }
        let mut pool = self.flush_buffers.borrow_mut();
        // Only a buffer nothing else holds any more (the completed write has let go of its clone).
        if dma.len() == FLUSH_WRITE_BYTES
            && Rc::strong_count(&dma) == 1
            && pool.len() < FLUSH_WRITES_IN_FLIGHT_MAX
        {
            pool.push(dma);
        }
        Ok(())
    }

    /// Keeps half a step allocated past `head` (the durable end), so that the next appends find their
    /// blocks. The step is as large as what the segment holds before `head` (within the steps' bounds), so
    /// that a segment written fast is allocated far ahead and a quiet one stays at its first step.
    async fn allocate_ahead(&self, head: u64) -> Result<()> {
        let size = self.segment_size;
        let base = align_down_segment(head, size);
        let (min_step, max_step) = allocation_steps(size);
        let want = head + (head - base).clamp(min_step, max_step) / 2;
        let want = if want <= base + size {
            want
        } else {
            // The head is within a step of the segment's end: the next segment gets its first step.
            base + size + min_step
        };
        if !self.is_allocated(want) {
            self.ensure_allocated(want).await?;
        }
        Ok(())
    }

    /// The segment at `base`, created if missing, with blocks allocated up to at least `through`
    /// (`base < through <= base + segment_size`). A creation whose allocation fails removes the file
    /// again, so that a partial allocation does not keep the space it took.
    async fn segment_for_write(&self, base: u64, through: u64) -> Result<Rc<DmaFile>> {
        debug_assert!(
            base < through && through <= base + self.segment_size,
            "allocation through {through} is outside segment {base}"
        );
        let want = through - base;
        let found = self
            .inner
            .borrow()
            .segments
            .get(&base)
            .map(|s| (s.file.clone(), s.allocated_bytes));
        let path = self.dir.join(segment_file_name(base));
        let (file, allocated, created) = match found {
            Some((file, allocated)) if allocated >= want => return Ok(file),
            Some((file, allocated)) => (file, allocated, false),
            None => {
                let (file, existed) = create_segment(&path, self.segment_size).await?;
                (Rc::new(file), 0, !existed)
            }
        };
        let end = allocation_end(allocated, want, self.segment_size);
        let grown = async {
            crate::faults::check(crate::faults::FaultPoint::Preallocate)?;
            allocate_range(&file, allocated, end - allocated).await
        }
        .await;
        if let Err(e) = grown {
            if created {
                let _ = file.close_rc().await;
                let _ = crate::blocking::remove_file_if_exists(path.clone()).await;
            }
            return Err(EngineError::io(&path, e));
        }
        let mut inner = self.inner.borrow_mut();
        let segment = inner.segments.entry(base).or_insert(Segment {
            file,
            allocated_bytes: 0,
        });
        let before = segment.allocated_bytes;
        segment.allocated_bytes = before.max(end);
        self.allocated
            .set(self.allocated.get() + segment.allocated_bytes - before);
        Ok(segment.file.clone())
    }

    /// Reads `[offset, offset + len)`, which must lie inside one segment and below the written offset.
    pub async fn read(&self, offset: u64, len: usize) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(len);
        self.read_into(offset, len, &mut out).await?;
        Ok(out.freeze())
    }

    /// Appends `[offset, offset + len)` to `out`, straight from the write buffer or from the io_uring read:
    /// one copy, so a pull answer is assembled without an intermediate buffer per record.
    pub async fn read_into(&self, offset: u64, len: usize, out: &mut BytesMut) -> Result<()> {
        let split = {
            let inner = self.inner.borrow();
            if let Some(bytes) = inner.buffer.read(offset, len) {
                out.extend_from_slice(bytes);
                return Ok(());
            }
            inner
                .buffer
                .read_split(offset, len)
                .map(|(at, tail)| (at, tail.to_vec()))
        };
        match split {
            None => self.read_disk_into(offset, len, out).await,
            Some((at, tail)) => {
                self.read_disk_into(offset, (at - offset) as usize, out)
                    .await?;
                out.extend_from_slice(&tail);
                Ok(())
            }
        }
    }

    /// Up to `max` bytes of the log from `offset`, as they are, within one segment: what a master ships to
    /// a slave. Served from memory, from disk, or as the zeros of the padding after a segment's blank
    /// (never written: the blank's size says the segment ends there). `None` at the written offset.
    pub async fn read_for_shipping(&self, offset: u64, max: usize) -> Result<Option<Bytes>> {
        let seg_end = align_down_segment(offset, self.segment_size) + self.segment_size;
        let (span, end) = {
            let inner = self.inner.borrow();
            let Some((span, end)) = inner.buffer.span_at(offset) else {
                return Ok(None);
            };
            let end = end.min(seg_end).min(offset + max as u64);
            if span == write_buffer::Span::Memory {
                let len = (end - offset) as usize;
                let bytes = inner
                    .buffer
                    .read(offset, len)
                    .expect("span_at said memory holds this range");
                return Ok(Some(Bytes::copy_from_slice(bytes)));
            }
            (span, end)
        };
        let len = (end - offset) as usize;
        match span {
            write_buffer::Span::Padding => Ok(Some(Bytes::from(vec![0u8; len]))),
            _ => self.read_disk(offset, len).await.map(Some),
        }
    }

    /// Reads from the segment files, never from memory.
    pub async fn read_disk(&self, offset: u64, len: usize) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(len);
        self.read_disk_into(offset, len, &mut out).await?;
        Ok(out.freeze())
    }

    async fn read_disk_into(&self, offset: u64, len: usize, out: &mut BytesMut) -> Result<()> {
        let base = align_down_segment(offset, self.segment_size);
        let (file, min_offset) = {
            let inner = self.inner.borrow();
            (
                inner.segments.get(&base).map(|s| s.file.clone()),
                inner.min_offset,
            )
        };
        let path = self.dir.join(segment_file_name(base));
        if offset < min_offset {
            return Err(EngineError::Deleted { offset, min_offset });
        }
        let Some(file) = file else {
            return Err(EngineError::Corrupt {
                what: "log read",
                path,
                offset,
                reason: "no segment holds this offset".into(),
            });
        };
        let got = file
            .read_at(offset - base, len)
            .await
            .map_err(|e| EngineError::io(&path, e))?;
        if got.len() < len {
            return Err(EngineError::Corrupt {
                what: "log read",
                path,
                offset,
                reason: format!("short read: {} of {len} bytes", got.len()),
            });
        }
        out.extend_from_slice(&got[..len]);
        Ok(())
    }

    /// Overwrites `[from, to)` of one segment with zeros on disk (recovery's cleanup after a truncation, so
    /// that stale bytes past the new end can never be read as records later). `from` must be the write
    /// position of a freshly opened log.
    pub async fn zero_range(&self, from: u64, to: u64) -> Result<()> {
        if to <= from {
            return Ok(());
        }
        let base = align_down_segment(from, self.segment_size);
        let to = to.min(base + self.segment_size);
        let start = align_down(from);
        let prefix = if start < from {
            self.read_disk(start, (from - start) as usize)
                .await?
                .to_vec()
        } else {
            Vec::new()
        };
        let len = align_up(to - start) as usize;
        let file = self
            .segment_for_write(base, (start + len as u64).min(base + self.segment_size))
            .await?;
        let mut dma = file.alloc_dma_buffer(len);
        let bytes = dma.as_bytes_mut();
        bytes.fill(0);
        bytes[..prefix.len()].copy_from_slice(&prefix);
        let path = self.dir.join(segment_file_name(base));
        file.write_at(dma, start - base)
            .await
            .map_err(|e| EngineError::io(&path, e))?;
        file.fdatasync()
            .await
            .map_err(|e| EngineError::io(&path, e))?;
        Ok(())
    }

    /// Segment bases, ascending.
    pub fn segment_bases(&self) -> Vec<u64> {
        self.inner.borrow().segments.keys().copied().collect()
    }

    /// Path of the segment starting at `base`.
    pub fn segment_path(&self, base: u64) -> PathBuf {
        self.dir.join(segment_file_name(base))
    }

    /// Deletes the segment at `base`, which must be wholly below the write buffer; raises the min offset.
    pub async fn delete_segment(&self, base: u64) -> Result<()> {
        let file = {
            let mut inner = self.inner.borrow_mut();
            assert!(
                base + self.segment_size <= inner.buffer.memory_start(),
                "deleting segment {base} that the write buffer still covers"
            );
            let file = inner.segments.remove(&base).map(|s| s.file);
            let first = inner
                .segments
                .keys()
                .next()
                .copied()
                .unwrap_or(base + self.segment_size);
            inner.min_offset = inner.min_offset.max(first);
            file
        };
        if let Some(file) = file {
            let _ = file.close_rc().await;
        }
        let path = self.segment_path(base);
        crate::blocking::remove_file_if_exists(path.clone())
            .await
            .map_err(|e| EngineError::io(path, e))
    }

    /// Deletes every segment and starts the log over, empty, at `offset` (a segment start): a slave whose
    /// master no longer holds where this log ends begins again at the master's first offset.
    pub async fn reset_at(&self, offset: u64) -> Result<()> {
        assert_eq!(
            offset % self.segment_size,
            0,
            "a log starts at a segment boundary, not at {offset}"
        );
        let files: Vec<(u64, Segment)> = std::mem::take(&mut self.inner.borrow_mut().segments)
            .into_iter()
            .collect();
        for (base, s) in files {
            let _ = s.file.close_rc().await;
            let path = self.segment_path(base);
            crate::blocking::remove_file_if_exists(path.clone())
                .await
                .map_err(|e| EngineError::io(path, e))?;
        }
        let mut inner = self.inner.borrow_mut();
        inner.buffer = WriteBuffer::new(self.segment_size, offset, Vec::new());
        inner.min_offset = offset;
        Ok(())
    }

    /// Raises the lowest readable offset (after retention removed what lies below it elsewhere).
    pub fn raise_min_offset(&self, offset: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.min_offset = inner.min_offset.max(offset);
    }

    /// Closes every file (after a final flush by the caller).
    pub async fn close(&self) {
        let files: Vec<Segment> = std::mem::take(&mut self.inner.borrow_mut().segments)
            .into_values()
            .collect();
        for s in files {
            let _ = s.file.close_rc().await;
        }
    }
}

/// The base of the segment holding `offset`.
pub fn align_down_segment(offset: u64, segment_size: u64) -> u64 {
    offset - offset % segment_size
}

#[cfg(test)]
mod tests {
    use super::allocation_end;

    const GIB: u64 = 1024 * 1024 * 1024;
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn allocation_starts_small_and_doubles_up_to_a_sixteenth_of_the_segment() {
        assert_eq!(allocation_end(0, 1, GIB), MIB, "first step: 1/1024");
        assert_eq!(allocation_end(MIB, MIB + 1, GIB), 2 * MIB, "doubles");
        assert_eq!(allocation_end(2 * MIB, 2 * MIB + 1, GIB), 4 * MIB);
        assert_eq!(
            allocation_end(512 * MIB, 512 * MIB + 1, GIB),
            512 * MIB + 64 * MIB,
            "steps stop growing at 1/16"
        );
        assert_eq!(
            allocation_end(0, 3 * MIB, GIB),
            4 * MIB,
            "as many steps as it takes"
        );
        assert_eq!(
            allocation_end(1000 * MIB, GIB, GIB),
            GIB,
            "capped at the segment's end"
        );
        assert_eq!(allocation_end(0, 2 * GIB, GIB), GIB);
        assert_eq!(allocation_end(4 * MIB, 10, GIB), 4 * MIB, "enough already");
    }

    #[test]
    fn small_segments_allocate_whole_blocks() {
        let cq = 20 * 307_200;
        assert_eq!(
            allocation_end(0, 20, cq),
            8192,
            "1/1024 of 6 MB, block-aligned"
        );
        assert_eq!(allocation_end(8192, 8193, cq), 16384);
        assert_eq!(allocation_end(cq - 4096, cq, cq), cq);
        for want in [1, 4095, 4097, 100_000, cq] {
            let end = allocation_end(0, want, cq);
            assert!(end >= want.min(cq) && end <= cq);
            assert!(
                end.is_multiple_of(4096) || end == cq,
                "{end} is block-aligned"
            );
        }
    }
}
