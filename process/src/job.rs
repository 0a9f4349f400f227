//! A call on its way to a worker ([`Job`]) and how its outcome reaches its future
//! ([`Completion`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

use concur_core::{Failure, Future, Promise};

use crate::error::{CodecError, CodecStage, SignatureMismatch, TaskPanicked, UnknownTask};
use crate::frame::{self, FrameWriter, Outcomes, WireError};
use crate::registry::{Task, put_encoded};

/// One CALL frame and the future(s) waiting for it.
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) name: &'static str,
    /// The encoded CALL frame (kept until the result arrives, to resend it if the worker dies
    /// before starting it).
    pub(crate) frame: Vec<u8>,
    /// Argument sets in the call (the per-task timeout scales with it).
    pub(crate) items: u32,
    /// Identity of the caller's future, for [`ProcessPool::cancel`](crate::ProcessPool::cancel);
    /// 0 when there is none.
    pub(crate) key: usize,
    /// Kill the worker as soon as this call starts (its cancel arrived while it was queued in
    /// the worker's pipe).
    pub(crate) kill_on_start: bool,
    /// Its future was claimed (a call sent once and requeued, or written express and then
    /// queued, is not claimed again: a second claim is refused).
    pub(crate) claimed: bool,
    pub(crate) completion: Box<dyn Completion>,
}

impl Job {
    /// Claims the job's future once, before its first send; false if it was cancelled.
    pub(crate) fn claim(&mut self) -> bool {
        if !self.claimed {
            self.claimed = self.completion.start();
        }
        self.claimed
    }
}

/// The consumer side of a job, type-erased.
pub(crate) trait Completion: Send {
    /// Claims the future before the call is sent (`set_running_or_notify_cancel`); false if it
    /// was cancelled, and then the job is dropped unsent.
    fn start(&mut self) -> bool;
    /// Cancels the future of a job that was never sent (`shutdown(cancel_futures = true)`).
    fn cancel(&mut self);
    /// Resolves the future with the call's outcomes or a failure.
    fn complete(self: Box<Self>, name: &str, outcome: Result<Outcomes<'_>, Failure>);
    /// Resolves the future with a failure.
    fn fail(self: Box<Self>, failure: Failure) {
        self.complete("", Err(failure));
    }
}

/// A `Future` the pool may move to its I/O thread when `T` is only `Send`.
///
/// The pool never reads the value through it: it only cancels the future and drops the handle.
pub(crate) struct CancelHandle<T>(Future<T>);

impl<T> CancelHandle<T> {
    pub(crate) fn new(future: Future<T>) -> Self {
        Self(future)
    }
}

// SAFETY: through this wrapper the pool only calls `cancel` (which touches the state word, not
// the value) and drops the handle (which, when last, drops the `T` on the dropping thread: that
// needs `T: Send`, nothing more). No `&T` is ever shared across threads through it.
unsafe impl<T: Send> Send for CancelHandle<T> {}

/// Completion of a `submit`: decodes the single outcome into `R`.
pub(crate) struct Single<R> {
    pub(crate) promise: Promise<R>,
    pub(crate) future: Option<CancelHandle<R>>,
}

/// `Completion::start` for a job holding its promise and a cancel handle: the handle is
/// dropped once the job runs (a running future cannot be cancelled).
fn start_job<T>(promise: &Promise<T>, future: &mut Option<CancelHandle<T>>) -> bool {
    *future = None;
    promise.set_running_or_notify_cancel()
}

/// `Completion::cancel` for a job holding a cancel handle.
fn cancel_job<T>(future: &mut Option<CancelHandle<T>>) {
    if let Some(handle) = future.take() {
        handle.0.cancel();
    }
}

impl<R: DeserializeOwned + Send + 'static> Completion for Single<R> {
    fn start(&mut self) -> bool {
        start_job(&self.promise, &mut self.future)
    }

    fn cancel(&mut self) {
        cancel_job(&mut self.future);
    }

    fn complete(self: Box<Self>, name: &str, outcome: Result<Outcomes<'_>, Failure>) {
        let this = *self;
        drop(this.future);
        let outcome = outcome.and_then(|outcomes| {
            let (_, raw) = outcomes.raw();
            match Outcomes::next_small_value_at(raw, &mut 0) {
                Some(bytes) => decode_value::<R>(bytes),
                None => decode_first(outcomes, name),
            }
        });
        let _ = this.promise.set_outcome(outcome);
    }
}

/// The first outcome of a call, decoded (the general case of `Single::complete`).
fn decode_first<R: DeserializeOwned>(outcomes: Outcomes<'_>, name: &str) -> Result<R, Failure> {
    match outcomes.iter().next() {
        Some(Ok(bytes)) => decode_value::<R>(bytes),
        Some(Err(wire)) => Err(wire_failure(wire, name)),
        None => Err(Failure::from_error(CodecError {
            stage: CodecStage::DecodeResult,
            message: "the worker sent no outcome".into(),
        })),
    }
}

/// The raw outcomes of a chunk, decoded item by item by the `map` iterator.
pub(crate) struct ChunkReply {
    pub(crate) bytes: Vec<u8>,
}

/// Completion of a `map` chunk: hands the raw outcomes over to the consumer.
pub(crate) struct Chunk {
    pub(crate) promise: Promise<ChunkReply>,
    pub(crate) future: Option<CancelHandle<ChunkReply>>,
}

impl Completion for Chunk {
    fn start(&mut self) -> bool {
        start_job(&self.promise, &mut self.future)
    }

    fn cancel(&mut self) {
        cancel_job(&mut self.future);
    }

    fn complete(self: Box<Self>, _name: &str, outcome: Result<Outcomes<'_>, Failure>) {
        let this = *self;
        drop(this.future);
        let reply = outcome.map(|outcomes| ChunkReply {
            bytes: outcomes.raw().1.to_vec(),
        });
        let _ = this.promise.set_outcome(reply);
    }
}

/// Decodes one value sent by a worker.
///
/// `R`'s `Deserialize` is the user's code and runs on whichever thread reads the answer (the
/// waiting thread, or the pool's I/O thread): a panic in it becomes this value's failure.
pub(crate) fn decode_value<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, Failure> {
    let decoded = std::panic::catch_unwind(|| postcard::from_bytes::<R>(bytes))
        .map_err(Failure::from_panic)?;
    decoded.map_err(|error| {
        Failure::from_error(CodecError {
            stage: CodecStage::DecodeResult,
            message: error.to_string(),
        })
    })
}

/// The typed error for a failure reported by a worker.
pub(crate) fn wire_failure(wire: WireError, name: &str) -> Failure {
    match wire {
        WireError::Panicked { message, location } => Failure::from_error(TaskPanicked {
            message,
            location: location.map(|(file, line, col)| format!("{file}:{line}:{col}")),
        }),
        WireError::DecodeArgs(message) => Failure::from_error(CodecError {
            stage: CodecStage::DecodeArgs,
            message,
        }),
        WireError::EncodeResult(message) => Failure::from_error(CodecError {
            stage: CodecStage::EncodeResult,
            message,
        }),
        WireError::UnknownTask => Failure::from_error(UnknownTask { name: name.into() }),
        WireError::SignatureMismatch => {
            Failure::from_error(SignatureMismatch { name: name.into() })
        }
        WireError::ResultTooLarge(size) => Failure::from_error(CodecError {
            stage: CodecStage::TooLarge,
            message: format!("the encoded result takes {size} bytes"),
        }),
    }
}

/// Why [`CallEncoder::push`] did not add an argument set.
pub(crate) enum PushError {
    /// The frame is full; the argument set fits in a frame of its own.
    Full,
    /// The argument set cannot be sent.
    Failed(Failure),
}

impl PushError {
    pub(crate) fn into_failure(self) -> Failure {
        match self {
            PushError::Full => Failure::from_error(CodecError {
                stage: CodecStage::TooLarge,
                message: "the frame is full".into(),
            }),
            PushError::Failed(failure) => failure,
        }
    }
}

/// Builds a CALL frame one argument set at a time.
pub(crate) struct CallEncoder {
    frame: Vec<u8>,
    count_at: usize,
    count: u32,
    limit: usize,
}

impl CallEncoder {
    /// `capacity`: bytes to reserve for the argument sets, besides the header.
    pub(crate) fn new<A, R>(id: u64, task: &Task<A, R>, limit: usize, capacity: usize) -> Self {
        // Header, id, name (with a length of up to 2 bytes), signature, count.
        let header = frame::HEADER_LEN + 8 + 2 + task.name().len() + 8 + 4;
        let mut frame = Vec::with_capacity(header + capacity);
        let mut w = FrameWriter::begin(&mut frame, frame::CALL);
        w.u64(id).str(task.name()).u64(task.signature());
        let count_at = w.len();
        w.u32(0);
        w.end();
        Self {
            frame,
            count_at,
            count: 0,
            limit,
        }
    }

    /// Appends one argument set.
    ///
    /// # Errors
    /// [`PushError::Full`] when the frame already holds argument sets and this one would take it
    /// past its limit (start another frame); otherwise the serializer's error or a too-large
    /// error. The frame is unchanged on error.
    pub(crate) fn push<A: Serialize + ?Sized>(&mut self, args: &A) -> Result<(), PushError> {
        let mark = self.frame.len();
        // `A`'s `Serialize` is the user's code: a panic in it fails this call, as an error would.
        let frame = &mut self.frame;
        let encoded =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| put_encoded(frame, args)));
        match encoded {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                return Err(PushError::Failed(Failure::from_error(CodecError {
                    stage: CodecStage::EncodeArgs,
                    message: error.to_string(),
                })));
            }
            Err(panic) => {
                self.frame.truncate(mark);
                return Err(PushError::Failed(Failure::from_panic(panic)));
            }
        }
        if self.frame.len() > self.limit {
            let size = self.frame.len() - mark;
            self.frame.truncate(mark);
            if self.count > 0 {
                return Err(PushError::Full);
            }
            return Err(PushError::Failed(Failure::from_error(CodecError {
                stage: CodecStage::TooLarge,
                message: format!("the encoded arguments take {size} bytes"),
            })));
        }
        self.count += 1;
        Ok(())
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The finished frame.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = (self.frame.len() - 4) as u32;
        self.frame[..4].copy_from_slice(&len.to_le_bytes());
        self.frame[self.count_at..self.count_at + 4].copy_from_slice(&self.count.to_le_bytes());
        self.frame
    }
}
