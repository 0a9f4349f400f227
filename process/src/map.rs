//! [`Map`]: Python's `ProcessPoolExecutor.map`, with `chunksize`, as an iterator.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use concur_core::{Error, Failure, Future, promise};

use crate::frame::{Outcomes, WireError};
use crate::job::{
    CallEncoder, CancelHandle, Chunk, ChunkReply, Job, PushError, decode_value, wire_failure,
};
use crate::pool::ProcessPool;
use crate::registry::Task;

/// Options for [`ProcessPool::map_with`]: those of [`concur_core::MapOptions`] plus
/// `chunksize`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concur_process::MapOptions;
///
/// let options = MapOptions::new()
///     .chunksize(256)
///     .in_flight(4096)
///     .timeout(Duration::from_secs(60));
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MapOptions {
    timeout: Option<Duration>,
    in_flight: Option<NonZeroUsize>,
    chunksize: NonZeroUsize,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl MapOptions {
    /// No timeout, every input submitted at once, one input per call (Python's defaults).
    pub fn new() -> Self {
        Self {
            timeout: None,
            in_flight: None,
            chunksize: NonZeroUsize::MIN,
        }
    }

    /// One deadline for the whole iteration, counted from the `map` call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// At most `window` inputs submitted but not yet yielded (rounded up to whole chunks), so a
    /// long or infinite input is never drained eagerly. Zero is taken as one.
    pub fn in_flight(mut self, window: usize) -> Self {
        self.in_flight = Some(NonZeroUsize::new(window).unwrap_or(NonZeroUsize::MIN));
        self
    }

    /// Inputs sent to a worker per call (Python's `chunksize`): fewer round trips for small
    /// tasks. Each input still gets its own result or error; if a worker dies during a chunk,
    /// every input of that chunk gets the error. Zero is taken as one.
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.chunksize = NonZeroUsize::new(chunksize).unwrap_or(NonZeroUsize::MIN);
        self
    }
}

/// One submitted chunk (or an input that never got sent), in input order.
enum Pending {
    Chunk {
        future: Future<ChunkReply>,
        len: usize,
    },
    /// One input that failed before it was sent (its arguments did not encode, or the pool
    /// refused the submission).
    Failed(Failure, usize),
}

/// The items of the chunk being yielded.
enum Current {
    Reply {
        reply: ChunkReply,
        pos: usize,
        left: usize,
    },
    Failed {
        failure: Failure,
        left: usize,
    },
}

/// The results of [`ProcessPool::map`], in input order; the same contract as
/// [`concur_core::Map`], the thread pool's map.
///
/// - Each item is that input's result; a failed task (panic, dead worker, codec error, ...)
///   yields its [`Error::Failed`] and iteration goes on.
/// - With a timeout, one deadline counts from the `map` call. When it passes, every chunk not
///   yet started is cancelled, the iterator yields [`Error::TimedOut`] once, and then ends.
/// - **Work starts at the call.** Without an in-flight window every input is encoded and
///   queued by the `map` call itself; with one, the first window is, and later inputs are
///   pulled as results are yielded.
/// - A submission the pool refuses (shut down, broken) yields the refusal as each item's
///   failure.
/// - **What a drop cancels** (Python's rule, bpo-11777): dropped before its first `next`, the
///   iterator cancels nothing, and every chunk the `map` call queued runs to completion (its
///   results dropped). Once advanced, dropping it cancels every chunk not yet sent to a worker
///   (a chunk prefetched into a worker's pipe counts as started); running ones finish and
///   their results are dropped.
#[must_use = "a map's results are only seen by iterating it (dropped unread, its calls still run)"]
pub struct Map<'p, A, R, I: Iterator> {
    pool: &'p ProcessPool,
    task: Task<A, R>,
    inputs: I,
    /// An input pulled but not yet sent: it did not fit in the previous chunk's frame.
    carried: Option<I::Item>,
    chunksize: usize,
    window: usize,
    deadline: Option<Instant>,
    pending: VecDeque<Pending>,
    current: Option<Current>,
    /// Inputs submitted and not yet yielded.
    outstanding: usize,
    ended: bool,
    /// `next` was called once: from then on a drop cancels what has not started.
    advanced: bool,
    _results: PhantomData<fn() -> R>,
}

impl<'p, A, R, I> Map<'p, A, R, I>
where
    A: Serialize,
    R: DeserializeOwned + Send + 'static,
    I: Iterator,
    I::Item: Borrow<A>,
{
    pub(crate) fn new(
        pool: &'p ProcessPool,
        task: Task<A, R>,
        inputs: I,
        options: MapOptions,
    ) -> Self {
        let deadline = options
            .timeout
            .map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        let mut map = Self {
            pool,
            task,
            inputs,
            carried: None,
            chunksize: options.chunksize.get(),
            window: options.in_flight.map_or(usize::MAX, NonZeroUsize::get),
            deadline,
            pending: VecDeque::new(),
            current: None,
            outstanding: 0,
            ended: false,
            advanced: false,
            _results: PhantomData,
        };
        map.refill();
        map
    }

    /// Encodes and submits inputs until the window is full or the inputs run out.
    ///
    /// The chunks go to the pool in batches that double (the first chunk alone, then as many
    /// chunks' inputs as were sent before): workers start on the first chunk while later ones
    /// are still being encoded, and a long input still costs only a logarithmic number of
    /// trips through the pool's lock.
    fn refill(&mut self) {
        let mut jobs = Vec::new();
        let mut chunks = Vec::new();
        let mut exhausted = false;
        let (mut gathered, mut sent) = (0, 0);
        while self.outstanding < self.window && !exhausted {
            let id = self.pool.new_id();
            let mut encoder = CallEncoder::new(
                id,
                &self.task,
                self.pool.shared.max_frame,
                64 + 16 * self.chunksize.min(4096),
            );
            let mut failed = None;
            while (encoder.count() as usize) < self.chunksize {
                let input = match self.carried.take() {
                    Some(input) => input,
                    None => match self.inputs.next() {
                        Some(input) => input,
                        None => {
                            exhausted = true;
                            break;
                        }
                    },
                };
                match encoder.push(input.borrow()) {
                    Ok(()) => {}
                    // It goes first in the next chunk.
                    Err(PushError::Full) => {
                        self.carried = Some(input);
                        break;
                    }
                    Err(PushError::Failed(failure)) => {
                        failed = Some(failure);
                        break;
                    }
                }
            }
            let len = encoder.count() as usize;
            if len > 0 {
                let (promise, future) = promise::<ChunkReply>();
                jobs.push(Job {
                    id,
                    name: self.task.name(),
                    frame: encoder.finish(),
                    items: len as u32,
                    key: 0,
                    kill_on_start: false,
                    claimed: false,
                    completion: Box::new(Chunk {
                        promise,
                        future: Some(CancelHandle::new(future.clone())),
                    }),
                });
                chunks.push((future, len));
                self.outstanding += len;
                gathered += len;
                if gathered >= sent {
                    self.flush(&mut jobs, &mut chunks);
                    sent += gathered;
                    gathered = 0;
                }
            }
            if let Some(failure) = failed {
                // Keep input order: the chunk so far, then the input that failed.
                self.flush(&mut jobs, &mut chunks);
                self.pending.push_back(Pending::Failed(failure, 1));
                self.outstanding += 1;
            }
        }
        self.flush(&mut jobs, &mut chunks);
    }

    /// Submits the gathered chunks in one go.
    fn flush(&mut self, jobs: &mut Vec<Job>, chunks: &mut Vec<(Future<ChunkReply>, usize)>) {
        if jobs.is_empty() {
            return;
        }
        match self.pool.enqueue(std::mem::take(jobs)) {
            Ok(()) => {
                for (future, len) in chunks.drain(..) {
                    self.pending.push_back(Pending::Chunk { future, len });
                }
            }
            Err(refused) => {
                let failure = Failure::from_error(refused);
                for (_, len) in chunks.drain(..) {
                    self.pending
                        .push_back(Pending::Failed(failure.clone(), len));
                }
            }
        }
    }

    /// The next item of the current chunk, if it has one left.
    fn next_current(&mut self) -> Option<Result<R, Error>> {
        let name = self.task.name();
        let item = match self.current.as_mut()? {
            Current::Failed { left: 0, .. } | Current::Reply { left: 0, .. } => None,
            Current::Failed { failure, left } => {
                *left -= 1;
                Some(Err(Error::Failed(failure.clone())))
            }
            Current::Reply { reply, pos, left } => {
                *left -= 1;
                if let Some(bytes) = Outcomes::next_small_value_at(&reply.bytes, pos) {
                    return Some(decode_value::<R>(bytes).map_err(Error::Failed));
                }
                let outcome = Outcomes::next_at(&reply.bytes, pos);
                Some(match outcome {
                    Some(Ok(bytes)) => decode_value::<R>(bytes).map_err(Error::Failed),
                    Some(Err(wire)) => Err(Error::Failed(wire_failure(wire, name))),
                    None => Err(Error::Failed(wire_failure(
                        WireError::EncodeResult("the worker sent too few outcomes".into()),
                        name,
                    ))),
                })
            }
        };
        if item.is_none() {
            self.current = None;
        }
        item
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 100)
}

impl<A, R, I> Iterator for Map<'_, A, R, I>
where
    A: Serialize,
    R: DeserializeOwned + Send + 'static,
    I: Iterator,
    I::Item: Borrow<A>,
{
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advanced = true;
        loop {
            if self.ended {
                return None;
            }
            if let Some(item) = self.next_current() {
                return Some(item);
            }
            let Some(pending) = self.pending.pop_front() else {
                self.ended = true;
                return None;
            };
            match pending {
                Pending::Failed(failure, len) => {
                    self.outstanding -= len;
                    self.current = Some(Current::Failed { failure, left: len });
                }
                Pending::Chunk { future, len } => {
                    if let Some(deadline) = self.deadline {
                        if !future.wait_deadline(deadline) {
                            future.cancel();
                            self.cancel_all();
                            self.ended = true;
                            return Some(Err(Error::TimedOut));
                        }
                    }
                    self.outstanding -= len;
                    self.current = Some(match future.into_result() {
                        Ok(reply) => Current::Reply {
                            left: len,
                            reply,
                            pos: 0,
                        },
                        Err(Error::Failed(failure)) => Current::Failed { failure, left: len },
                        Err(other) => Current::Failed {
                            failure: Failure::from_error(other),
                            left: len,
                        },
                    });
                }
            }
            self.refill();
        }
    }
}

impl<A, R, I: Iterator> Map<'_, A, R, I> {
    /// Cancels every chunk queued and not yet yielded (those sent to a worker finish).
    fn cancel_all(&mut self) {
        for pending in self.pending.drain(..) {
            if let Pending::Chunk { future, .. } = pending {
                future.cancel();
            }
        }
    }
}

impl<A, R, I: Iterator> Drop for Map<'_, A, R, I> {
    /// Cancels what has not started, but only once advanced (see [`Map`]).
    fn drop(&mut self) {
        if self.advanced {
            self.cancel_all();
        }
    }
}

impl<A, R, I: Iterator> std::fmt::Debug for Map<'_, A, R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("task", &self.task)
            .field("chunksize", &self.chunksize)
            .field("outstanding", &self.outstanding)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ProcessPool {
    /// Applies `task` to every input on the workers and yields the results in input order
    /// (Python's `map`), one call per input; see [`Map`] for the semantics.
    ///
    /// Inputs may be owned or borrowed (`[1u64, 2]`, `&vec`, `vec.iter()`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn square(x: u64) -> u64 { x * x } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// let squares: Vec<u64> = pool.map(square, 1..=4u64).map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// ```
    pub fn map<A, R, I>(&self, task: Task<A, R>, inputs: I) -> Map<'_, A, R, I::IntoIter>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator,
        I::Item: Borrow<A>,
    {
        Map::new(self, task, inputs.into_iter(), MapOptions::new())
    }

    /// [`map`](ProcessPool::map) with a timeout, an in-flight window and a `chunksize`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # concur_process::task! { fn square(x: u64) -> u64 { x * x } }
    /// # let pool = concur_process::ProcessPool::builder().build().unwrap();
    /// use concur_process::MapOptions;
    ///
    /// let options = MapOptions::new().chunksize(1000);
    /// let total: u64 = pool.map_with(square, 0..100_000u64, options).map(Result::unwrap).sum();
    /// # let _ = total;
    /// ```
    pub fn map_with<A, R, I>(
        &self,
        task: Task<A, R>,
        inputs: I,
        options: MapOptions,
    ) -> Map<'_, A, R, I::IntoIter>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator,
        I::Item: Borrow<A>,
    {
        Map::new(self, task, inputs.into_iter(), options)
    }
}
