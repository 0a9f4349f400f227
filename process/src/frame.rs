//! The wire format between the pool and its workers: length-prefixed, versioned frames.
//!
//! Every frame is
//!
//! ```text
//! u32 LE  len      bytes that follow this field (at least 2, at most the frame limit)
//! u8      version  PROTOCOL_VERSION
//! u8      kind     HELLO, INIT, READY, INIT_FAILED, CALL, AWAITED_CALL, RESULT or HEARTBEAT
//! ...     body     kind-specific, described at each kind
//! ```
//!
//! Integers are little-endian; `varint` is unsigned LEB128; `str` and `bytes` are a varint length
//! followed by that many bytes. The decoder checks every length against the bytes it has and
//! never panics: whatever a worker (or a fuzzer) sends yields a frame or a [`FrameError`].

use core::fmt;

/// Version of the frame layout and message bodies; bumped on any incompatible change.
pub const PROTOCOL_VERSION: u8 = 4;

/// Default limit on one frame (header included): 1 GiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 30;

/// Bytes of the fixed header: length, version, kind.
pub const HEADER_LEN: usize = 6;

/// Worker to pool, first frame: `u64 fingerprint, u32 pid`.
pub const HELLO: u8 = 1;
/// Pool to worker, first frame: `u32 max_frame, u8 has_initializer,
/// [str name, u64 signature, bytes args]`.
pub const INIT: u8 = 2;
/// Worker to pool: the initializer (if any) succeeded; calls may follow. Empty body.
pub const READY: u8 = 3;
/// Worker to pool: the initializer failed; body is one task error.
pub const INIT_FAILED: u8 = 4;
/// Pool to worker: `u64 id, str name, u64 signature, u32 count, count × bytes args`.
pub const CALL: u8 = 5;
/// Worker to pool: `u64 id, u32 count, count × (u8 tag, bytes), u32 worker_cpu`; tag 0 is a
/// postcard value, tag 1 a task error; `worker_cpu` is the CPU the worker answered on
/// ([`UNKNOWN_CPU`] if it could not tell), so that the caller reading the answer knows where
/// the worker runs when it waits for the next one.
pub const RESULT: u8 = 6;

/// A `caller_cpu` or `worker_cpu` that names no CPU.
pub const UNKNOWN_CPU: u32 = u32::MAX;

/// The CPU the calling thread runs on, as the frames carry it.
pub(crate) fn this_cpu() -> u32 {
    u32::try_from(crate::sys::current_cpu()).unwrap_or(UNKNOWN_CPU)
}

/// `cpu` from a frame, unless it names no CPU.
pub(crate) fn known_cpu(cpu: u32) -> Option<u32> {
    (cpu != UNKNOWN_CPU).then_some(cpu)
}

/// Bytes of a RESULT frame that are not outcomes: the header, id, count and worker CPU.
pub(crate) const RESULT_OVERHEAD: usize = HEADER_LEN + 8 + 4 + 4;
/// Either way, every heartbeat interval while the link is up: `u32 interval_ms`. The pool's
/// first one, right after INIT, tells the worker the interval (and so its silence bound).
pub const HEARTBEAT: u8 = 7;
/// Pool to worker: a CALL's body, then `u32 caller_cpu`, written by a thread that then waits
/// on the pool's machine for the answer, and will likely submit again as soon as it has it;
/// `caller_cpu` is the CPU it wrote from. After answering one, a spawned worker on another CPU
/// polls briefly for its next call (`crate::pipe_spin`) instead of blocking at once; one on
/// the caller's CPU blocks, since its poll would only take that CPU from the caller.
pub const AWAITED_CALL: u8 = 8;

/// Bytes an AWAITED_CALL adds to its CALL: the caller's CPU.
pub(crate) const AWAITED_EXTRA: usize = 4;

const TAG_OK: u8 = 0;
const TAG_ERR: u8 = 1;

/// Why bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Not enough bytes yet: at least `needed` in total are required (not an error on a stream).
    Incomplete {
        /// Total bytes needed before decoding can go on.
        needed: usize,
    },
    /// The length field exceeds the limit.
    Oversized {
        /// The frame's total size as announced.
        size: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The frame was written by another protocol version.
    Version {
        /// The version byte found.
        found: u8,
    },
    /// An unknown frame kind.
    Kind {
        /// The kind byte found.
        found: u8,
    },
    /// The body does not match its kind's layout.
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Incomplete { needed } => {
                write!(f, "incomplete frame ({needed} bytes needed)")
            }
            FrameError::Oversized { size, limit } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            FrameError::Version { found } => write!(
                f,
                "frame has protocol version {found}, expected {PROTOCOL_VERSION}"
            ),
            FrameError::Kind { found } => write!(f, "unknown frame kind {found}"),
            FrameError::Malformed(what) => write!(f, "malformed frame: {what}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A task's failure as it travels from the worker (the parent turns it into a typed error).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The task panicked.
    Panicked {
        /// The panic message, if it was a string.
        message: Option<String>,
        /// `file:line:column` of the panic, if known.
        location: Option<(String, u32, u32)>,
    },
    /// The worker could not decode the arguments.
    DecodeArgs(String),
    /// The worker could not encode the result.
    EncodeResult(String),
    /// The worker has no task of that name.
    UnknownTask,
    /// The worker's task of that name has other argument or result types.
    SignatureMismatch,
    /// The encoded result does not fit in a frame.
    ResultTooLarge(u64),
}

const E_PANIC: u8 = 0;
const E_DECODE: u8 = 1;
const E_ENCODE: u8 = 2;
const E_UNKNOWN: u8 = 3;
const E_SIGNATURE: u8 = 4;
const E_TOO_LARGE: u8 = 5;

/// One decoded frame, borrowing its variable parts from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// The worker's greeting.
    Hello {
        /// The worker's build fingerprint.
        fingerprint: u64,
        /// The worker's process id.
        pid: u32,
    },
    /// The pool's configuration for a new worker.
    Init {
        /// Largest frame either side may send.
        max_frame: u32,
        /// The initializer: task name, signature, encoded arguments.
        initializer: Option<(&'a str, u64, &'a [u8])>,
    },
    /// The worker is initialized.
    Ready,
    /// The initializer failed.
    InitFailed(WireError),
    /// Run a task over `count` argument sets.
    Call {
        /// Call id, echoed by the result.
        id: u64,
        /// Registered task name.
        name: &'a str,
        /// Signature hash of the task's argument and result types.
        signature: u64,
        /// The encoded argument sets.
        args: Items<'a>,
        /// Sent as `AWAITED_CALL`, from this CPU: its caller waits for the answer and may call
        /// again soon.
        caller_cpu: Option<u32>,
    },
    /// The outcomes of a call, one per argument set.
    Result {
        /// The call's id.
        id: u64,
        /// The outcomes.
        outcomes: Outcomes<'a>,
        /// The CPU the worker answered on, or [`UNKNOWN_CPU`].
        worker_cpu: u32,
    },
    /// The sender is alive; it sends one every `interval_ms`.
    Heartbeat {
        /// The sender's interval in milliseconds.
        interval_ms: u32,
    },
}

/// Encoded argument sets of a call, validated at decode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Items<'a> {
    count: u32,
    bytes: &'a [u8],
}

impl<'a> Items<'a> {
    /// How many argument sets there are.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The argument sets in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut reader = Reader::new(self.bytes);
        (0..self.count).map_while(move |_| reader.bytes().ok())
    }
}

/// The outcomes of a call, validated at decode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcomes<'a> {
    count: u32,
    bytes: &'a [u8],
}

impl<'a> Outcomes<'a> {
    /// How many outcomes there are.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The outcomes in order: an encoded value or the task's error.
    pub fn iter(&self) -> OutcomeIter<'a> {
        OutcomeIter {
            left: self.count,
            reader: Reader::new(self.bytes),
        }
    }

    /// The raw encoding, for handing over to another thread.
    pub fn raw(&self) -> (u32, &'a [u8]) {
        (self.count, self.bytes)
    }

    /// The outcome at `*pos` of a raw encoding checked by [`decode_frame`]; advances `pos`.
    pub(crate) fn next_at<'b>(
        bytes: &'b [u8],
        pos: &mut usize,
    ) -> Option<Result<&'b [u8], WireError>> {
        let mut reader = Reader::new(bytes.get(*pos..)?);
        let outcome = read_outcome(&mut reader).ok()?;
        *pos = bytes.len() - reader.rest().len();
        Some(outcome)
    }

    /// The fast case of [`next_at`](Outcomes::next_at): the value at `*pos` if it is a value
    /// outcome with a one-byte length (advancing `pos`); `None` leaves `pos` for `next_at`.
    #[inline]
    pub(crate) fn next_small_value_at<'b>(bytes: &'b [u8], pos: &mut usize) -> Option<&'b [u8]> {
        let [TAG_OK, len, rest @ ..] = bytes.get(*pos..)? else {
            return None;
        };
        let len = usize::from(*len);
        if len >= 0x80 {
            return None;
        }
        let value = rest.get(..len)?;
        *pos += 2 + len;
        Some(value)
    }

    /// Outcomes from a raw encoding previously checked by [`decode_frame`].
    pub(crate) fn from_raw(count: u32, bytes: &'a [u8]) -> Self {
        Self { count, bytes }
    }
}

/// Iterator over [`Outcomes`].
#[derive(Clone, Debug)]
pub struct OutcomeIter<'a> {
    left: u32,
    reader: Reader<'a>,
}

impl<'a> Iterator for OutcomeIter<'a> {
    type Item = Result<&'a [u8], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated when the frame was decoded; a failure here ends the iteration.
        match read_outcome(&mut self.reader) {
            Ok(outcome) => Some(outcome),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

/// Checks one outcome and moves past it.
#[inline]
fn skip_outcome(reader: &mut Reader<'_>) -> Result<(), FrameError> {
    // Fast path: a value outcome with a one-byte length, all there.
    if let [TAG_OK, len, rest @ ..] = reader.bytes {
        let len = usize::from(*len);
        if len < 0x80 && len <= rest.len() {
            reader.bytes = &rest[len..];
            return Ok(());
        }
    }
    read_outcome(reader).map(drop)
}

#[inline]
fn read_outcome<'a>(reader: &mut Reader<'a>) -> Result<Result<&'a [u8], WireError>, FrameError> {
    // Fast path: a value outcome with a one-byte length, all there.
    if let [TAG_OK, len, rest @ ..] = reader.bytes {
        let len = usize::from(*len);
        if len < 0x80 && len <= rest.len() {
            let (value, tail) = rest.split_at(len);
            reader.bytes = tail;
            return Ok(Ok(value));
        }
    }
    match reader.u8()? {
        TAG_OK => Ok(Ok(reader.bytes()?)),
        TAG_ERR => {
            let bytes = reader.bytes()?;
            let mut inner = Reader::new(bytes);
            let error = read_wire_error(&mut inner)?;
            inner.finish()?;
            Ok(Err(error))
        }
        _ => Err(FrameError::Malformed("bad outcome tag")),
    }
}

/// Decodes the first frame of `bytes` with the default size limit.
///
/// Returns the frame and the number of bytes it took.
///
/// # Errors
/// [`FrameError::Incomplete`] if `bytes` ends before the frame does; any other
/// [`FrameError`] if the bytes are not a valid frame.
///
/// # Examples
///
/// ```
/// use concur_process::fuzzing::{decode_frame, FrameError};
///
/// assert!(matches!(decode_frame(&[9, 0]), Err(FrameError::Incomplete { .. })));
/// assert!(decode_frame(&[2, 0, 0, 0, 99, 3]).is_err()); // wrong version
/// ```
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame<'_>, usize), FrameError> {
    decode_frame_with_limit(bytes, DEFAULT_MAX_FRAME)
}

/// The announced total size of the frame at the start of `bytes`, checked against `limit`.
///
/// # Errors
/// [`FrameError::Incomplete`] before 4 bytes, [`FrameError::Oversized`] or
/// [`FrameError::Malformed`] for a bad length.
pub fn frame_size(bytes: &[u8], limit: usize) -> Result<usize, FrameError> {
    let Some(len) = bytes.get(..4) else {
        return Err(FrameError::Incomplete { needed: 4 });
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as u64;
    let total = len + 4;
    if total > limit as u64 {
        return Err(FrameError::Oversized { size: total, limit });
    }
    if (total as usize) < HEADER_LEN {
        return Err(FrameError::Malformed("length below the header size"));
    }
    Ok(total as usize)
}

/// Turns an encoded CALL frame into an AWAITED_CALL one from `caller_cpu`, if it still fits in
/// `limit` bytes (an AWAITED_CALL gets the new CPU); returns whether it did. Any other frame is
/// left as it is.
pub(crate) fn mark_awaited(frame: &mut Vec<u8>, caller_cpu: u32, limit: usize) -> bool {
    if frame.get(5) == Some(&AWAITED_CALL) && frame.len() >= HEADER_LEN + AWAITED_EXTRA {
        // Marked before (a call requeued, then expressed again): only the CPU is new.
        let at = frame.len() - AWAITED_EXTRA;
        frame[at..].copy_from_slice(&caller_cpu.to_le_bytes());
        return true;
    }
    let marked_len = frame.len() + AWAITED_EXTRA;
    if frame.get(5) != Some(&CALL) || marked_len > limit {
        return false;
    }
    let Ok(body_len) = u32::try_from(marked_len - 4) else {
        return false;
    };
    frame[..4].copy_from_slice(&body_len.to_le_bytes());
    frame[5] = AWAITED_CALL;
    frame.extend_from_slice(&caller_cpu.to_le_bytes());
    true
}

/// [`decode_frame`] with an explicit limit on the frame size.
///
/// # Errors
/// As [`decode_frame`].
pub fn decode_frame_with_limit(
    bytes: &[u8],
    limit: usize,
) -> Result<(Frame<'_>, usize), FrameError> {
    let total = frame_size(bytes, limit)?;
    let Some(frame) = bytes.get(..total) else {
        return Err(FrameError::Incomplete { needed: total });
    };
    let version = frame[4];
    if version != PROTOCOL_VERSION {
        return Err(FrameError::Version { found: version });
    }
    let kind = frame[5];
    let mut r = Reader::new(&frame[HEADER_LEN..]);
    let decoded = match kind {
        HELLO => Frame::Hello {
            fingerprint: r.u64()?,
            pid: r.u32()?,
        },
        INIT => {
            let max_frame = r.u32()?;
            let initializer = match r.u8()? {
                0 => None,
                1 => Some((r.str()?, r.u64()?, r.bytes()?)),
                _ => return Err(FrameError::Malformed("bad initializer flag")),
            };
            Frame::Init {
                max_frame,
                initializer,
            }
        }
        READY => Frame::Ready,
        HEARTBEAT => Frame::Heartbeat {
            interval_ms: r.u32()?,
        },
        INIT_FAILED => Frame::InitFailed(read_wire_error(&mut r)?),
        CALL | AWAITED_CALL => {
            let id = r.u64()?;
            let name = r.str()?;
            let signature = r.u64()?;
            let count = r.u32()?;
            let start = r.rest();
            for _ in 0..count {
                r.bytes()?;
            }
            let used = start.len() - r.rest().len();
            let caller_cpu = if kind == AWAITED_CALL {
                Some(r.u32()?)
            } else {
                None
            };
            Frame::Call {
                id,
                name,
                signature,
                args: Items {
                    count,
                    bytes: &start[..used],
                },
                caller_cpu,
            }
        }
        RESULT => {
            let id = r.u64()?;
            let count = r.u32()?;
            let start = r.rest();
            for _ in 0..count {
                skip_outcome(&mut r)?;
            }
            let used = start.len() - r.rest().len();
            Frame::Result {
                id,
                outcomes: Outcomes {
                    count,
                    bytes: &start[..used],
                },
                worker_cpu: r.u32()?,
            }
        }
        found => return Err(FrameError::Kind { found }),
    };
    r.finish()?;
    Ok((decoded, total))
}

fn read_wire_error(r: &mut Reader<'_>) -> Result<WireError, FrameError> {
    Ok(match r.u8()? {
        E_PANIC => {
            let message = match r.u8()? {
                0 => None,
                1 => Some(r.str()?.to_owned()),
                _ => return Err(FrameError::Malformed("bad message flag")),
            };
            let location = match r.u8()? {
                0 => None,
                1 => Some((r.str()?.to_owned(), r.u32()?, r.u32()?)),
                _ => return Err(FrameError::Malformed("bad location flag")),
            };
            WireError::Panicked { message, location }
        }
        E_DECODE => WireError::DecodeArgs(r.str()?.to_owned()),
        E_ENCODE => WireError::EncodeResult(r.str()?.to_owned()),
        E_UNKNOWN => WireError::UnknownTask,
        E_SIGNATURE => WireError::SignatureMismatch,
        E_TOO_LARGE => WireError::ResultTooLarge(r.u64()?),
        _ => return Err(FrameError::Malformed("bad error kind")),
    })
}

/// A bounds-checked little-endian reader; every method fails instead of panicking.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if n > self.bytes.len() {
            return Err(FrameError::Malformed(
                "field runs past the end of the frame",
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, FrameError> {
        // One byte (values below 128) is by far the most common case.
        if let Some((&byte, rest)) = self.bytes.split_first() {
            if byte & 0x80 == 0 {
                self.bytes = rest;
                return Ok(u64::from(byte));
            }
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(FrameError::Malformed("varint longer than 10 bytes"))
    }

    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        // Fast path: a one-byte length (below 128) whose bytes are all there, as for nearly
        // every argument set and outcome of a small value (a `map` over integers reads
        // thousands per frame, twice).
        if let Some((&len, rest)) = self.bytes.split_first() {
            let len = usize::from(len);
            if len < 0x80 && len <= rest.len() {
                let (head, tail) = rest.split_at(len);
                self.bytes = tail;
                return Ok(head);
            }
        }
        self.long_bytes()
    }

    #[inline(never)]
    fn long_bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| FrameError::Malformed("length overflow"))?;
        self.take(len)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, FrameError> {
        let bytes = self.bytes()?;
        if bytes.is_ascii() {
            // Task names are module paths: ASCII, checked a word at a time, where the full
            // UTF-8 validation costs ~100 instructions on every call's name.
            // SAFETY: ASCII bytes are valid UTF-8.
            return Ok(unsafe { core::str::from_utf8_unchecked(bytes) });
        }
        core::str::from_utf8(bytes).map_err(|_| FrameError::Malformed("invalid UTF-8"))
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn finish(&self) -> Result<(), FrameError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed("trailing bytes"))
        }
    }
}

/// Appends frames to a buffer. `begin` writes the header with a placeholder length, `end` patches
/// it; everything in between is the body.
pub(crate) struct FrameWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
}

impl<'b> FrameWriter<'b> {
    #[inline]
    pub(crate) fn begin(buf: &'b mut Vec<u8>, kind: u8) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&[0, 0, 0, 0, PROTOCOL_VERSION, kind]);
        Self { buf, start }
    }

    #[inline]
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    #[inline]
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    #[inline]
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    #[inline]
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    #[inline]
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        put_varint(self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    #[inline]
    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Size of the frame so far.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Patches the length; returns the frame's total size.
    #[inline]
    pub(crate) fn end(self) -> usize {
        let total = self.buf.len() - self.start;
        let len = (total - 4) as u32;
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_le_bytes());
        total
    }
}

#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends one value outcome (tag and length-prefixed bytes).
#[cfg(test)]
pub(crate) fn put_ok(buf: &mut Vec<u8>, value: &[u8]) {
    buf.push(TAG_OK);
    put_varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// Appends one error outcome.
pub(crate) fn put_err(buf: &mut Vec<u8>, error: &WireError) {
    let mut inner = Vec::new();
    put_wire_error(&mut inner, error);
    buf.push(TAG_ERR);
    put_varint(buf, inner.len() as u64);
    buf.extend_from_slice(&inner);
}

pub(crate) fn put_wire_error(buf: &mut Vec<u8>, error: &WireError) {
    let put_str = |buf: &mut Vec<u8>, s: &str| {
        put_varint(buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
    };
    match error {
        WireError::Panicked { message, location } => {
            buf.push(E_PANIC);
            match message {
                Some(m) => {
                    buf.push(1);
                    put_str(buf, m);
                }
                None => buf.push(0),
            }
            match location {
                Some((file, line, col)) => {
                    buf.push(1);
                    put_str(buf, file);
                    buf.extend_from_slice(&line.to_le_bytes());
                    buf.extend_from_slice(&col.to_le_bytes());
                }
                None => buf.push(0),
            }
        }
        WireError::DecodeArgs(m) => {
            buf.push(E_DECODE);
            put_str(buf, m);
        }
        WireError::EncodeResult(m) => {
            buf.push(E_ENCODE);
            put_str(buf, m);
        }
        WireError::UnknownTask => buf.push(E_UNKNOWN),
        WireError::SignatureMismatch => buf.push(E_SIGNATURE),
        WireError::ResultTooLarge(size) => {
            buf.push(E_TOO_LARGE);
            buf.extend_from_slice(&size.to_le_bytes());
        }
    }
}

/// Encodes a HELLO frame.
pub fn encode_hello(buf: &mut Vec<u8>, fingerprint: u64, pid: u32) {
    let mut w = FrameWriter::begin(buf, HELLO);
    w.u64(fingerprint).u32(pid);
    w.end();
}

/// Encodes a READY frame.
pub fn encode_ready(buf: &mut Vec<u8>) {
    FrameWriter::begin(buf, READY).end();
}

/// Encodes a HEARTBEAT frame.
pub fn encode_heartbeat(buf: &mut Vec<u8>, interval_ms: u32) {
    let mut w = FrameWriter::begin(buf, HEARTBEAT);
    w.u32(interval_ms);
    w.end();
}

/// Encodes an INIT_FAILED frame.
pub fn encode_init_failed(buf: &mut Vec<u8>, error: &WireError) {
    let mut w = FrameWriter::begin(buf, INIT_FAILED);
    put_wire_error(w.buf(), error);
    w.end();
}

/// Encodes an INIT frame.
pub fn encode_init(buf: &mut Vec<u8>, max_frame: u32, initializer: Option<(&str, u64, &[u8])>) {
    let mut w = FrameWriter::begin(buf, INIT);
    w.u32(max_frame);
    match initializer {
        Some((name, signature, args)) => {
            w.u8(1).str(name).u64(signature).bytes(args);
        }
        None => {
            w.u8(0);
        }
    }
    w.end();
}

/// Encodes a RESULT frame from raw outcomes (each built with the tag layout), answered on
/// `worker_cpu`.
pub fn encode_result(buf: &mut Vec<u8>, id: u64, count: u32, outcomes: &[u8], worker_cpu: u32) {
    let mut w = FrameWriter::begin(buf, RESULT);
    w.u64(id).u32(count);
    w.buf().extend_from_slice(outcomes);
    w.u32(worker_cpu);
    w.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut buf = Vec::new();
        encode_hello(&mut buf, 7, 42);
        encode_init(&mut buf, 1000, Some(("a::b", 9, &[1, 2, 3])));
        encode_ready(&mut buf);
        let err = WireError::Panicked {
            message: Some("boom".into()),
            location: Some(("x.rs".into(), 3, 4)),
        };
        encode_init_failed(&mut buf, &err);
        let mut outcomes = Vec::new();
        put_ok(&mut outcomes, &[5]);
        put_err(&mut outcomes, &WireError::UnknownTask);
        encode_result(&mut buf, 77, 2, &outcomes, 5);
        encode_heartbeat(&mut buf, 1000);

        let mut at = 0;
        let mut frames = Vec::new();
        while at < buf.len() {
            let (frame, used) = decode_frame(&buf[at..]).unwrap();
            frames.push(frame);
            at += used;
        }
        assert_eq!(
            frames[0],
            Frame::Hello {
                fingerprint: 7,
                pid: 42
            }
        );
        assert_eq!(
            frames[1],
            Frame::Init {
                max_frame: 1000,
                initializer: Some(("a::b", 9, &[1, 2, 3][..]))
            }
        );
        assert_eq!(frames[2], Frame::Ready);
        assert_eq!(frames[3], Frame::InitFailed(err));
        let Frame::Result {
            id,
            outcomes,
            worker_cpu,
        } = &frames[4]
        else {
            panic!("not a result")
        };
        assert_eq!((*id, *worker_cpu), (77, 5));
        let got: Vec<_> = outcomes.iter().collect();
        assert_eq!(got, vec![Ok(&[5u8][..]), Err(WireError::UnknownTask)]);
        assert_eq!(frames[5], Frame::Heartbeat { interval_ms: 1000 });
    }

    #[test]
    fn an_awaited_call_decodes_as_the_same_call_marked_awaited() {
        let frame = small_call(CALL);
        let plain = decode_frame(&frame).unwrap().0;
        let mut awaited = frame.clone();
        assert!(mark_awaited(&mut awaited, 3, DEFAULT_MAX_FRAME));
        assert_eq!(awaited[5], AWAITED_CALL);
        assert_eq!(awaited.len(), frame.len() + AWAITED_EXTRA);
        let Frame::Call {
            id,
            name,
            signature,
            args,
            caller_cpu: Some(3),
        } = decode_frame(&awaited).unwrap().0
        else {
            panic!("not an awaited call from CPU 3")
        };
        assert_eq!(
            plain,
            Frame::Call {
                id,
                name,
                signature,
                args,
                caller_cpu: None
            }
        );
        // Only a CALL is marked: any other frame is left as it is.
        let mut ready = Vec::new();
        encode_ready(&mut ready);
        let before = ready.clone();
        assert!(!mark_awaited(&mut ready, 3, DEFAULT_MAX_FRAME));
        assert_eq!(ready, before);
    }

    #[test]
    fn a_call_that_would_outgrow_the_frame_limit_is_not_marked() {
        let mut frame = small_call(CALL);
        let before = frame.clone();
        let limit = frame.len() + AWAITED_EXTRA - 1;
        assert!(!mark_awaited(&mut frame, 3, limit));
        assert_eq!(frame, before, "left a plain CALL");
        assert!(mark_awaited(&mut frame, 3, limit + 1));
        assert!(decode_frame_with_limit(&frame, limit + 1).is_ok());
        // Marked again (requeued, then expressed again): the same size, the new CPU.
        assert!(mark_awaited(&mut frame, 7, limit + 1));
        assert_eq!(frame.len(), limit + 1);
        let Ok((Frame::Call { caller_cpu, .. }, _)) = decode_frame(&frame) else {
            panic!("not a call")
        };
        assert_eq!(caller_cpu, Some(7));
    }

    #[test]
    fn an_awaited_call_without_its_cpu_is_malformed() {
        assert!(decode_frame(&small_call(AWAITED_CALL)).is_err());
    }

    /// A call of one argument set, as a frame of `kind` with a CALL's body.
    fn small_call(kind: u8) -> Vec<u8> {
        let mut frame = Vec::new();
        let mut w = FrameWriter::begin(&mut frame, kind);
        w.u64(9).str("a::b").u64(5).u32(1).bytes(&[1, 2]);
        w.end();
        frame
    }

    #[test]
    fn every_prefix_and_every_byte_flip_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        let mut outcomes = Vec::new();
        put_ok(&mut outcomes, b"hello");
        put_err(
            &mut outcomes,
            &WireError::Panicked {
                message: None,
                location: Some(("f".into(), 1, 2)),
            },
        );
        encode_result(&mut buf, 1, 2, &outcomes, UNKNOWN_CPU);
        for cut in 0..buf.len() {
            assert!(matches!(
                decode_frame(&buf[..cut]),
                Err(FrameError::Incomplete { .. } | FrameError::Malformed(_))
            ));
        }
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut flipped = buf.clone();
                flipped[i] ^= 1 << bit;
                let _ = decode_frame(&flipped);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let kinds = [
            HELLO,
            INIT,
            READY,
            INIT_FAILED,
            CALL,
            AWAITED_CALL,
            RESULT,
            0,
            200,
        ];
        for round in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len + HEADER_LEN).map(|_| next() as u8).collect();
            // Mostly well-formed headers, so the bodies get exercised.
            if round % 4 != 0 {
                bytes[..4].copy_from_slice(&((len + 2) as u32).to_le_bytes());
                bytes[4] = PROTOCOL_VERSION;
                bytes[5] = kinds[(next() % kinds.len() as u64) as usize];
            }
            if let Ok((Frame::Result { outcomes, .. }, _)) = decode_frame(&bytes) {
                let mut pos = 0;
                for _ in outcomes.iter() {}
                while Outcomes::next_at(outcomes.raw().1, &mut pos).is_some() {}
            }
            if let Ok((Frame::Call { args, .. }, _)) = decode_frame(&bytes) {
                for _ in args.iter() {}
            }
        }
    }

    #[test]
    fn oversized_is_rejected_before_reading() {
        let bytes = [0xff, 0xff, 0xff, 0x7f, PROTOCOL_VERSION, RESULT];
        assert!(matches!(
            decode_frame_with_limit(&bytes, 1024),
            Err(FrameError::Oversized { .. })
        ));
    }
}
