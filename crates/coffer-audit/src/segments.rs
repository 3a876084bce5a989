//! Records in append-only segment files (`DATA_DIR/audit/seg-<first seq>.log`), the embedded
//! store's home for the chain.
//!
//! Why not rows of the embedded store: every audited read would be a B-tree row (a 1–2 KB value
//! spills to an overflow page), written twice (WAL, then checkpoint) and mirrored in memory for
//! ever. Here a group of records costs one `pwrite` and one `fdatasync`, and memory holds only
//! a 4-byte offset per record.
//!
//! Format: one entry per line, exactly the bytes of [`ChainEntry::encode`] + `\n` (JSON Lines,
//! the same lines `coffer audit export` writes). Files are zero-filled ahead of the writer
//! (`PREPARE` bytes at a time) so each `fdatasync` flushes data only, not a size change. The end
//! of the data is the first NUL byte or unterminated line; at open, anything after the last
//! whole line that parses (a group torn by a crash: never acknowledged) is zeroed. A segment is
//! closed at `SEGMENT_BYTES`; pruning removes whole segments.
//!
//! One writer thread owns the files (an `fdatasync` must not block the async runtime); readers
//! use positioned reads on shared handles and see only what has been synced.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::AuditError;
use crate::chain::{ChainEntry, Head};
use crate::linger::Linger;
use crate::records::{Pending, RecordStore, Submitted, parse_entry};

/// A segment is closed once it holds this much.
const SEGMENT_BYTES: u64 = 64 << 20;
/// Zero-filled ahead of the writer at a time.
const PREPARE: u64 = 4 << 20;

struct Segment {
    first_seq: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Start of each line, then the end of the last one.
    offsets: Vec<u32>,
}

impl Segment {
    fn len(&self) -> u64 {
        self.offsets.len().saturating_sub(1) as u64
    }
    fn end(&self) -> u64 {
        self.offsets.last().copied().unwrap_or(0) as u64
    }
}

struct Index {
    segments: Vec<Segment>,
    head: Head,
}

struct Shared {
    dir: PathBuf,
    /// [`SEGMENT_BYTES`], smaller in tests.
    segment_bytes: u64,
    index: RwLock<Index>,
    failing: AtomicBool,
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }
}

type Reply = oneshot::Sender<Result<(), AuditError>>;

/// Records waiting for the writer, copied back to back into one buffer. Request threads copy
/// their record in and drop their own buffer where they allocated it; the writer swaps the
/// whole queue out for its emptied one. (A channel of per-record `Vec`s made every record's
/// memory cross threads, and the allocator's cross-thread frees and wake-ups cost more than
/// the copy: see BENCHMARKS.md "Audit".)
#[derive(Default)]
struct Queued {
    bytes: Vec<u8>,
    /// End of each record in `bytes`.
    ends: Vec<usize>,
    /// One per submission (a submitted batch lands in one group, whole).
    replies: Vec<Reply>,
}

impl Queued {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.replies.clear();
    }
    fn records(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let r = &self.bytes[start..end];
            start = end;
            r
        })
    }
}

struct QueueState {
    queued: Queued,
    open: bool,
    /// The writer is parked on `wake` (only then does a submission pay for a wake-up).
    idle: bool,
}

struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<oneshot::Receiver<Result<(), AuditError>>, AuditError> {
        let (reply, answer) = oneshot::channel();
        let mut st = self.lock();
        if !st.open {
            return Err(AuditError::Unavailable("audit writer stopped".into()));
        }
        for r in records {
            st.queued.bytes.extend_from_slice(r);
            let end = st.queued.bytes.len();
            st.queued.ends.push(end);
        }
        st.queued.replies.push(reply);
        let wake = std::mem::take(&mut st.idle);
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        Ok(answer)
    }

    /// Waits for queued records, then `linger` more for others (see [`crate::linger`]), and
    /// swaps them into `into` (emptied first); false once the queue is closed and drained.
    fn take(&self, into: &mut Queued, linger: Duration) -> bool {
        into.clear();
        let mut st = self.lock();
        while st.queued.replies.is_empty() {
            if !st.open {
                return false;
            }
            st.idle = true;
            st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.idle = false;
        // Nobody notifies while `idle` is false (close does): this sleeps unlocked to the
        // deadline.
        let deadline = Instant::now() + linger;
        while let Some(left) = deadline.checked_duration_since(Instant::now())
            && !left.is_zero()
            && st.open
        {
            st = self
                .wake
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        std::mem::swap(&mut st.queued, into);
        true
    }

    fn close(&self) {
        self.lock().open = false;
        self.wake.notify_one();
    }
}

/// Closes the queue when the writer ends, however it ends: if it panicked, what is queued is
/// dropped (its callers get "audit writer stopped") and later submissions are refused, instead
/// of waiting for ever.
struct CloseOnExit(Arc<Queue>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.open = false;
        st.queued.clear();
    }
}

/// See the module docs.
pub struct SegmentRecords {
    shared: Arc<Shared>,
    queue: Arc<Queue>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl SegmentRecords {
    /// Opens (creating if needed) the segment directory. `base` is where the chain stood before
    /// any segment existed (records kept as store rows by an earlier version), so the chain goes
    /// on from there. Blocking: call at startup.
    pub fn open(dir: &Path, base: Head) -> Result<Self, AuditError> {
        Self::open_sized(dir, base, SEGMENT_BYTES)
    }

    fn open_sized(dir: &Path, base: Head, segment_bytes: u64) -> Result<Self, AuditError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err(dir, e))?;
        let mut segments = Vec::new();
        for (first_seq, path) in list(dir)? {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let mut offsets = line_offsets(&bytes);
            // The last lines may be a group torn by a crash (never acknowledged): keep whole
            // lines that parse, zero the rest so later appends start clean.
            while offsets.len() > 1 {
                let n = offsets.len();
                let line = &bytes[offsets[n - 2] as usize..offsets[n - 1] as usize - 1];
                if serde_json::from_slice::<ChainEntry>(line).is_ok() {
                    break;
                }
                offsets.pop();
            }
            if offsets.is_empty() {
                offsets.push(0);
            }
            let end = *offsets.last().unwrap_or(&0) as usize;
            if let Some(dirty) = bytes[end..].iter().rposition(|b| *b != 0) {
                file.write_all_at(&vec![0u8; dirty + 1], end as u64)
                    .and_then(|_| file.sync_data())
                    .map_err(|e| io_err(&path, e))?;
            }
            segments.push(Segment {
                first_seq,
                path,
                file: Arc::new(file),
                offsets,
            });
        }
        let head = match segments.iter().rev().find(|s| s.len() > 0) {
            Some(s) => {
                let n = s.offsets.len();
                let mut line = vec![0u8; (s.offsets[n - 1] - s.offsets[n - 2]) as usize - 1];
                s.file
                    .read_exact_at(&mut line, s.offsets[n - 2] as u64)
                    .map_err(|e| io_err(&s.path, e))?;
                let e: ChainEntry = serde_json::from_slice(&line)
                    .map_err(|_| AuditError::Internal("unreadable last audit record".into()))?;
                Head {
                    seq: e.seq,
                    hash: e.hash,
                }
            }
            None => base,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_bytes,
            index: RwLock::new(Index { segments, head }),
            failing: AtomicBool::new(false),
        });
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                queued: Queued::default(),
                open: true,
                idle: false,
            }),
            wake: Condvar::new(),
        });
        let (s, q) = (shared.clone(), queue.clone());
        let writer = std::thread::Builder::new()
            .name("coffer-audit-writer".into())
            .spawn(move || writer_loop(s, q))
            .map_err(|e| AuditError::Unavailable(format!("cannot start audit writer: {e}")))?;
        Ok(Self {
            shared,
            queue,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Reads the segment directory `dir` as it is on disk (for `coffer audit verify` /
    /// `export` beside a running server): whole lines only, in file order.
    pub fn read_dir(dir: &Path) -> Result<Vec<ChainEntry>, AuditError> {
        let mut out: Vec<ChainEntry> = Vec::new();
        for (_, path) in list(dir)? {
            let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let offsets = line_offsets(&bytes);
            for w in offsets.windows(2) {
                let guess = out.last().map_or(0, |e| e.seq + 1);
                out.push(parse_entry(&bytes[w[0] as usize..w[1] as usize - 1], guess));
            }
        }
        Ok(out)
    }
}

/// `seg-<first seq>.log` files in `dir`, by first sequence number.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Line starts (and the end of the last whole line) in `bytes`, up to the first NUL byte or
/// unterminated line.
fn line_offsets(bytes: &[u8]) -> Vec<u32> {
    let data = match bytes.iter().position(|b| *b == 0) {
        Some(nul) => &bytes[..nul],
        None => bytes,
    };
    let mut offsets = vec![0u32];
    let mut pos = 0;
    while let Some(nl) = data[pos..].iter().position(|b| *b == b'\n') {
        pos += nl + 1;
        offsets.push(pos as u32);
    }
    offsets
}

fn io_err(path: &Path, e: std::io::Error) -> AuditError {
    AuditError::Unavailable(format!("audit segment {}: {e}", path.display()))
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("seg-{first_seq:020}.log"))
}

/// Direct I/O works in whole blocks at block-aligned offsets from block-aligned memory.
const BLOCK: usize = 4096;
/// Preparing writes zeros this much at a time (a multiple of [`BLOCK`] dividing [`PREPARE`]).
const ZERO_CHUNK: usize = 256 << 10;

/// The writer's own view of the open segment.
struct Tail {
    /// Opened for direct I/O where the filesystem allows it (no page-cache copy, no writeback
    /// pass at `fdatasync`), else buffered.
    file: File,
    direct: bool,
    path: PathBuf,
    end: u64,
    /// Bytes zero-filled so far (the file's length).
    prepared: u64,
    /// The bytes of the last, partly filled block (direct I/O rewrites it whole).
    partial: Vec<u8>,
    /// The direct-I/O staging buffer, kept between groups (allocating and zeroing one per
    /// group cost more than the copy into it).
    staging: Aligned,
    /// Zeros for preparing the file ahead, made on first use.
    zeros: Option<Aligned>,
}

impl Tail {
    fn open(path: &Path, end: u64, create: bool) -> Result<Self, AuditError> {
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(create)
                .mode(0o600)
                .custom_flags(flags)
                .open(path)
        };
        let (file, direct) = match open(libc::O_DIRECT) {
            Ok(f) => (f, true),
            // tmpfs and some others refuse O_DIRECT: buffered writes, same guarantees.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                (open(0).map_err(|e| io_err(path, e))?, false)
            }
            Err(e) => return Err(io_err(path, e)),
        };
        let prepared = file.metadata().map_err(|e| io_err(path, e))?.len();
        let start = end - end % BLOCK as u64;
        let mut partial = vec![0u8; (end - start) as usize];
        if !partial.is_empty() {
            File::open(path)
                .and_then(|f| f.read_exact_at(&mut partial, start))
                .map_err(|e| io_err(path, e))?;
        }
        Ok(Self {
            file,
            direct,
            path: path.to_path_buf(),
            end,
            prepared,
            partial,
            staging: Aligned::new(0),
            zeros: None,
        })
    }

    /// Writes `data` at the end and makes it durable.
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        let need = self.end + data.len() as u64;
        if need > self.prepared {
            let to = need.div_ceil(PREPARE) * PREPARE;
            let zeros = self.zeros.get_or_insert_with(|| Aligned::new(ZERO_CHUNK));
            while self.prepared < to {
                let n = ZERO_CHUNK.min((to - self.prepared) as usize);
                self.file.write_all_at(zeros.bytes(n), self.prepared)?;
                self.prepared += n as u64;
            }
        }
        if !self.direct {
            self.file.write_all_at(data, self.end)?;
            return self.file.sync_data();
        }
        let start = self.end - self.partial.len() as u64;
        let len = self.partial.len() + data.len();
        let bytes = self.staging.bytes(len.div_ceil(BLOCK) * BLOCK);
        bytes[..self.partial.len()].copy_from_slice(&self.partial);
        bytes[self.partial.len()..len].copy_from_slice(data);
        // The rest of the last block goes to disk too: zeros, as the file holds past the end.
        bytes[len..].fill(0);
        self.file.write_all_at(bytes, start)?;
        self.file.sync_data()?;
        self.partial.clear();
        self.partial
            .extend_from_slice(&bytes[len - len % BLOCK..len]);
        Ok(())
    }
}

/// A block-aligned buffer (over-allocated by a block and sliced at the alignment, so no unsafe
/// allocation is needed), zeroed when made.
struct Aligned {
    raw: Vec<u8>,
}

impl Aligned {
    fn new(len: usize) -> Self {
        Self {
            raw: vec![0u8; len + BLOCK],
        }
    }
    /// The first `len` aligned bytes, growing the buffer when it is too small.
    fn bytes(&mut self, len: usize) -> &mut [u8] {
        if self.raw.len() < len + BLOCK {
            *self = Self::new(len.next_power_of_two());
        }
        let off = self.raw.as_ptr().align_offset(BLOCK);
        &mut self.raw[off..off + len]
    }
}

/// The writer's buffers, kept between groups (a fresh 100 KB+ buffer per group cost page
/// faults and zeroing).
#[derive(Default)]
struct Scratch {
    group: Queued,
    encoded: Vec<u8>,
    offsets: Vec<u32>,
}

fn writer_loop(shared: Arc<Shared>, queue: Arc<Queue>) {
    let _close = CloseOnExit(queue.clone());
    let mut tail: Option<Tail> = None;
    let mut scratch = Scratch::default();
    let mut linger = Linger::default();
    let mut wait = Duration::ZERO;
    // Everything queued meanwhile (records sent straight by the request path, and the
    // appender's batches) goes in one group: one write, one fdatasync.
    while queue.take(&mut scratch.group, wait) {
        let result = write_group(&shared, &mut tail, &mut scratch);
        shared.failing.store(result.is_err(), Ordering::SeqCst);
        for reply in scratch.group.replies.drain(..) {
            let _ = reply.send(result.clone());
        }
        wait = linger.next(Instant::now(), scratch.group.ends.len() as u64);
    }
}

fn write_group(
    shared: &Shared,
    tail: &mut Option<Tail>,
    scratch: &mut Scratch,
) -> Result<(), AuditError> {
    let mut head = shared.read().head;
    if tail.as_ref().is_none_or(|t| t.end >= shared.segment_bytes) {
        *tail = Some(open_tail(shared, head.seq + 1)?);
    }
    let t = tail.as_mut().expect("set above");
    let Scratch {
        group,
        encoded: buf,
        offsets,
    } = scratch;
    buf.clear();
    offsets.clear();
    for r in group.records() {
        let seq = head.seq + 1;
        let hash = ChainEntry::encode_into(seq, &head.hash, r, buf);
        buf.push(b'\n');
        offsets.push(
            u32::try_from(t.end + buf.len() as u64)
                .map_err(|_| AuditError::Internal("audit group larger than a segment".into()))?,
        );
        head = Head { seq, hash };
    }
    if let Err(e) = t.append(buf) {
        // Leave no half group behind for the next write to chain after (best effort: if this
        // fails too, a restart's open finds the torn lines and zeroes them).
        let _ = t.append(&vec![0u8; buf.len()]);
        tracing::error!(error = %e, "audit records could not be written");
        let err = io_err(&t.path, e);
        *tail = None;
        return Err(err);
    }
    t.end += buf.len() as u64;
    let mut index = shared.index.write().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = index.segments.last_mut() {
        s.offsets.extend_from_slice(offsets);
    }
    index.head = head;
    Ok(())
}

/// The segment to append to: the last one if it has room, else a new one starting at
/// `next_seq`.
fn open_tail(shared: &Shared, next_seq: u64) -> Result<Tail, AuditError> {
    let mut index = shared.index.write().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = index.segments.last()
        && s.end() < shared.segment_bytes
    {
        return Tail::open(&s.path, s.end(), false);
    }
    let path = segment_path(&shared.dir, next_seq);
    let tail = Tail::open(&path, 0, true)?;
    // The new name must survive a crash before the records in it are acknowledged.
    File::open(&shared.dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(&shared.dir, e))?;
    let file = File::open(&path).map_err(|e| io_err(&path, e))?;
    index.segments.push(Segment {
        first_seq: next_seq,
        path,
        file: Arc::new(file),
        offsets: vec![0],
    });
    Ok(tail)
}

impl SegmentRecords {
    /// Closes the writer's queue (it ends after what is queued) and hands back its thread.
    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        self.queue.close();
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// (file, first line start, line ends) of the lines numbered `lo..=hi`, per segment,
    /// newest segment first.
    fn locate(&self, after: Option<u64>, limit: usize) -> Vec<(Arc<File>, PathBuf, Vec<u32>, u64)> {
        let index = self.shared.read();
        let mut top = match after {
            Some(a) => a.saturating_sub(1).min(index.head.seq),
            None => index.head.seq,
        };
        let mut left = limit;
        let mut out = Vec::new();
        for s in index.segments.iter().rev() {
            if left == 0 || top == 0 {
                break;
            }
            if s.len() == 0 || s.first_seq > top {
                continue;
            }
            let last = s.first_seq + s.len() - 1;
            let hi = top.min(last);
            let lo = hi.saturating_sub(left as u64 - 1).max(s.first_seq);
            let (a, b) = ((lo - s.first_seq) as usize, (hi - s.first_seq) as usize);
            out.push((
                s.file.clone(),
                s.path.clone(),
                s.offsets[a..=b + 1].to_vec(),
                lo,
            ));
            left -= (hi - lo + 1) as usize;
            top = lo.saturating_sub(1);
        }
        out
    }
}

#[async_trait]
impl RecordStore for SegmentRecords {
    async fn append(&self, batch: &[Pending<'_>]) -> Result<bool, AuditError> {
        self.queue
            .push(batch.iter().map(|p| p.record))?
            .await
            .map_err(|_| AuditError::Unavailable("audit writer stopped".into()))??;
        Ok(false)
    }

    fn has_writer(&self) -> bool {
        true
    }

    fn submit(&self, record: Vec<u8>) -> Submitted {
        self.queue.push([record.as_slice()])
    }

    async fn head(&self) -> Result<Head, AuditError> {
        Ok(self.shared.read().head)
    }

    async fn scan_newest(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Bytes)>, AuditError> {
        let mut out = Vec::new();
        for (file, path, offsets, lo) in self.locate(after, limit) {
            let start = offsets[0];
            let mut buf = vec![0u8; (offsets[offsets.len() - 1] - start) as usize];
            file.read_exact_at(&mut buf, start as u64)
                .map_err(|e| io_err(&path, e))?;
            let buf = Bytes::from(buf);
            for (i, w) in offsets.windows(2).enumerate().rev() {
                let (a, b) = ((w[0] - start) as usize, (w[1] - start) as usize - 1);
                out.push((lo + i as u64, buf.slice(a..b)));
            }
        }
        Ok(out)
    }

    async fn entries(&self) -> Result<(Vec<(Option<u64>, ChainEntry)>, Option<Head>), AuditError> {
        let dir = self.shared.dir.clone();
        let entries = tokio::task::spawn_blocking(move || SegmentRecords::read_dir(&dir))
            .await
            .map_err(|e| AuditError::Internal(e.to_string()))??;
        // No head: the file's last line is the head, and digests seal what it must reach.
        Ok((entries.into_iter().map(|e| (None, e)).collect(), None))
    }

    async fn remove_below(&self, seq: u64) -> Result<usize, AuditError> {
        let doomed: Vec<(PathBuf, u64)> = {
            let mut index = self.shared.index.write().unwrap_or_else(|e| e.into_inner());
            let mut n = 0;
            // A segment goes when the next one starts at or below `seq`; the last never goes.
            while n + 1 < index.segments.len() && index.segments[n + 1].first_seq <= seq {
                n += 1;
            }
            index
                .segments
                .drain(..n)
                .map(|s| (s.path.clone(), s.len()))
                .collect()
        };
        let mut removed = 0;
        for (path, len) in doomed {
            fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            removed += len as usize;
        }
        Ok(removed)
    }

    async fn recorded(
        &self,
        ids: &HashSet<String>,
        window: usize,
    ) -> Result<HashSet<String>, AuditError> {
        let mut found = HashSet::new();
        if ids.is_empty() {
            return Ok(found);
        }
        for (_, bytes) in self.scan_newest(None, window).await? {
            let e = parse_entry(&bytes, 0);
            if let Some(id) = e.record.get("eventID").and_then(|v| v.as_str())
                && ids.contains(id)
            {
                found.insert(id.to_string());
            }
        }
        Ok(found)
    }

    fn failing(&self) -> bool {
        self.shared.failing.load(Ordering::SeqCst)
    }

    async fn close(&self) {
        if let Some(w) = self.stop_writer() {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
    }
}

impl Drop for SegmentRecords {
    fn drop(&mut self) {
        if let Some(w) = self.stop_writer() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::GENESIS;
    use crate::verify::Trail;

    fn rec(i: u64) -> Vec<u8> {
        crate::canonical::to_vec(&serde_json::json!({"eventID": format!("id-{i}"), "n": i}))
    }

    async fn append(s: &SegmentRecords, range: std::ops::Range<u64>) {
        let recs: Vec<Vec<u8>> = range.map(rec).collect();
        let batch: Vec<Pending> = recs
            .iter()
            .map(|r| Pending {
                record: r,
                clear: None,
                expect: None,
            })
            .collect();
        assert!(
            !s.append(&batch).await.unwrap(),
            "clears are left to the caller"
        );
    }

    #[tokio::test]
    async fn appends_chain_scan_newest_and_survive_reopen_and_torn_tails() {
        let dir = tempfile_dir();
        let s = SegmentRecords::open(&dir, Head::EMPTY).unwrap();
        append(&s, 1..4).await;
        append(&s, 4..6).await;
        let head = s.head().await.unwrap();
        assert_eq!(head.seq, 5);
        let newest: Vec<u64> = s
            .scan_newest(None, 3)
            .await
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(newest, vec![5, 4, 3]);
        let older = s.scan_newest(Some(3), 10).await.unwrap();
        assert_eq!(older.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 1]);
        let e: ChainEntry = serde_json::from_slice(&older[0].1).unwrap();
        assert_eq!(e.record["n"], 2);
        let ids: HashSet<String> = ["id-4".to_string(), "id-99".to_string()].into();
        assert_eq!(
            s.recorded(&ids, 10).await.unwrap(),
            ["id-4".to_string()].into()
        );
        s.close().await;
        drop(s);

        // A torn group after the last whole line: dropped and zeroed at open.
        let path = segment_path(&dir, 1);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        let end = fs::read(&path)
            .unwrap()
            .iter()
            .position(|b| *b == 0)
            .unwrap();
        f.write_all_at(b"{\"seq\":6,\"prev\":\"ab", end as u64)
            .unwrap();
        let s = SegmentRecords::open(&dir, Head::EMPTY).unwrap();
        assert_eq!(s.head().await.unwrap(), head);
        append(&s, 6..8).await;
        let trail = Trail {
            entries: s.entries().await.unwrap().0,
            ..Default::default()
        };
        assert_eq!(trail.entries.len(), 7);
        assert_eq!(trail.entries[6].1.prev, trail.entries[5].1.hash);
        for (_, e) in &trail.entries {
            assert_eq!(e.computed_hash(), e.hash, "record {} intact", e.seq);
        }
        assert_eq!(trail.entries[0].1.prev, GENESIS);
        s.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_submissions_chain_whole_and_a_closed_writer_refuses() {
        let dir = tempfile_dir();
        let s = Arc::new(SegmentRecords::open(&dir, Head::EMPTY).unwrap());
        // Many callers at once, single records and batches of three.
        let tasks: Vec<_> = (0..32u64)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    if t % 2 == 0 {
                        s.submit(rec(t * 100)).unwrap().await.unwrap().unwrap();
                    } else {
                        append(&s, t * 100..t * 100 + 3).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let (entries, _) = s.entries().await.unwrap();
        // Every record once, chained in file order.
        let mut ns: Vec<u64> = entries
            .iter()
            .map(|(_, e)| e.record["n"].as_u64().unwrap())
            .collect();
        let mut prev = GENESIS;
        for (i, (_, e)) in entries.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            assert_eq!(e.prev, prev, "record {} chains to the one before", e.seq);
            assert_eq!(e.computed_hash(), e.hash);
            prev = e.hash;
        }
        // Each batch in consecutive numbers: never split by another caller's record.
        for t in (1..32u64).step_by(2) {
            let at = ns.iter().position(|n| *n == t * 100).unwrap();
            assert_eq!(ns[at..at + 3], [t * 100, t * 100 + 1, t * 100 + 2]);
        }
        ns.sort();
        let mut want: Vec<u64> = (0..32u64)
            .flat_map(|t| t * 100..t * 100 + if t % 2 == 0 { 1 } else { 3 })
            .collect();
        want.sort();
        assert_eq!(ns, want);

        s.close().await;
        assert!(
            matches!(s.submit(rec(1)), Err(AuditError::Unavailable(_))),
            "a stopped writer refuses instead of queueing for ever"
        );
    }

    #[tokio::test]
    async fn chain_goes_on_from_the_store_head_and_prunes_whole_segments() {
        let dir = tempfile_dir();
        let base = Head {
            seq: 41,
            hash: [7u8; 32],
        };
        let s = SegmentRecords::open(&dir, base).unwrap();
        append(&s, 0..2).await;
        let (entries, _) = s.entries().await.unwrap();
        assert_eq!(entries[0].1.seq, 42);
        assert_eq!(entries[0].1.prev, [7u8; 32]);
        // Only whole segments before the prune point go, never the open one.
        assert_eq!(s.remove_below(44).await.unwrap(), 0);
        s.close().await;
    }

    #[tokio::test]
    async fn segments_roll_scans_cross_them_and_pruning_drops_whole_ones() {
        let dir = tempfile_dir();
        // A tiny segment size: every group closes its segment.
        let s = SegmentRecords::open_sized(&dir, Head::EMPTY, 10).unwrap();
        for i in 0..4 {
            append(&s, i * 3 + 1..i * 3 + 4).await;
        }
        assert_eq!(list(&dir).unwrap().len(), 4);
        let seqs: Vec<u64> = s
            .scan_newest(Some(8), 5)
            .await
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(seqs, vec![7, 6, 5, 4, 3]);
        // Records 1..=6 live in the first two segments; 7 starts the third.
        assert_eq!(s.remove_below(8).await.unwrap(), 6);
        assert_eq!(list(&dir).unwrap().len(), 2);
        let (entries, _) = s.entries().await.unwrap();
        assert_eq!(entries.first().unwrap().1.seq, 7);
        s.close().await;
        drop(s);
        // Reopened: the head and the chain go on.
        let s = SegmentRecords::open_sized(&dir, Head::EMPTY, 10).unwrap();
        assert_eq!(s.head().await.unwrap().seq, 12);
        append(&s, 13..14).await;
        let (entries, _) = s.entries().await.unwrap();
        let last = &entries.last().unwrap().1;
        assert_eq!(
            (last.seq, last.prev),
            (13, entries[entries.len() - 2].1.hash)
        );
        s.close().await;
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("coffer-seg-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&d).unwrap();
        d
    }
}
