//! [`Failure`]: why a task produced no value (the seeds' "exception").

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;
use core::error::Error as StdError;
use core::fmt;
// Not part of the waiter protocol, so not routed through the loom shim: a panic payload is
// handed out at most once and nothing else synchronises through this word.
use core::sync::atomic::{AtomicPtr, Ordering};

/// Why a task finished without a value: it panicked, it reported an error, or its producer went
/// away without completing it ("abandoned").
///
/// Cheap to clone (one reference count); every reader of a failed future gets a clone.
///
/// # Examples
///
/// ```
/// let (promise, future) = concur_core::promise::<u32>();
/// promise.set_error(std::io::Error::other("disk on fire")).unwrap();
/// let failure = future.try_error().unwrap().unwrap().unwrap();
/// assert!(failure.is_error());
/// assert_eq!(failure.to_string(), "disk on fire");
/// assert!(failure.downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct Failure {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Abandoned,
    Panic(Arc<PanicData>),
    Error(Arc<dyn StdError + Send + Sync>),
}

struct PanicData {
    message: Option<String>,
    /// The original payload until someone takes it with [`Failure::into_panic`].
    ///
    /// Invariant: null, or a pointer from `Box::into_raw(Box<Box<dyn Any + Send>>)` owned by
    /// this field.
    payload: AtomicPtr<Box<dyn Any + Send>>,
}

impl Drop for PanicData {
    fn drop(&mut self) {
        let payload = *self.payload.get_mut();
        if !payload.is_null() {
            // SAFETY: by the field's invariant we own this box, and `&mut self` excludes takers.
            drop(unsafe { Box::from_raw(payload) });
        }
    }
}

impl Failure {
    /// A failure carrying `error`, as `set_exception` does in Python. A `Failure` passed here
    /// is returned as it is, not wrapped.
    pub fn from_error<E>(error: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        let mut error = Some(error);
        if let Some(failure) = (&mut error as &mut dyn Any).downcast_mut::<Option<Failure>>() {
            if let Some(failure) = failure.take() {
                return failure;
            }
        }
        match error {
            Some(error) => Self {
                repr: Repr::Error(Arc::new(error)),
            },
            None => Self::abandoned(),
        }
    }

    /// A failure carrying an already boxed error.
    pub fn from_boxed_error(error: Box<dyn StdError + Send + Sync>) -> Self {
        Self {
            repr: Repr::Error(Arc::from(error)),
        }
    }

    /// A failure for a task that panicked with `payload` (as from `std::panic::catch_unwind`).
    /// The message is kept for display; the payload itself can be taken back once.
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = panic_message(&*payload);
        let payload = Box::into_raw(Box::new(payload));
        let data = PanicData {
            message,
            payload: AtomicPtr::new(payload),
        };
        Self {
            repr: Repr::Panic(Arc::new(data)),
        }
    }

    /// The failure of a future whose producer was dropped without completing it.
    pub const fn abandoned() -> Self {
        Self {
            repr: Repr::Abandoned,
        }
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// Whether the task reported an error (rather than panicking or being abandoned).
    pub fn is_error(&self) -> bool {
        matches!(self.repr, Repr::Error(_))
    }

    /// Whether the producer went away without completing the future (a dropped `Promise`: a
    /// dead worker, a dropped executor, a task that was never run).
    pub fn is_abandoned(&self) -> bool {
        matches!(self.repr, Repr::Abandoned)
    }

    /// The panic message, when the task panicked with a string (as `panic!` does).
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(data) => data.message.as_deref(),
            _ => None,
        }
    }

    /// The reported error, if the task reported one.
    pub fn error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match &self.repr {
            Repr::Error(error) => Some(&**error),
            _ => None,
        }
    }

    /// The reported error as a concrete type, if it is one.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.error()?.downcast_ref::<E>()
    }

    /// The panic payload, for `std::panic::resume_unwind`. The first caller across all clones
    /// gets the original payload; later callers get a `String` payload with the same message.
    ///
    /// # Errors
    /// Returns the failure unchanged if the task did not panic.
    pub fn into_panic(self) -> Result<Box<dyn Any + Send>, Failure> {
        let Repr::Panic(data) = &self.repr else {
            return Err(self);
        };
        // ORDERING: AcqRel: the winner of the swap takes ownership of the box (Acquire pairs with
        // the Release of its creation publishing through the Arc); Release is harmless.
        let taken = data.payload.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if taken.is_null() {
            let message = data.message.clone().unwrap_or_default();
            return Ok(Box::new(message));
        }
        // SAFETY: the swap made us the sole owner of this pointer from `Box::into_raw`.
        Ok(*unsafe { Box::from_raw(taken) })
    }

    /// Re-raises the task's panic in this thread; any other failure is raised as a panic with
    /// its message.
    #[cfg(feature = "std")]
    pub fn resume_unwind(self) -> ! {
        match self.into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(other) => std::panic::panic_any(alloc::format!("{other}")),
        }
    }
}

/// The message of a panic payload made by `panic!`, if it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<String> {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        return Some(String::from(*message));
    }
    payload.downcast_ref::<String>().cloned()
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Abandoned => {
                f.write_str("the producer was dropped without completing the future")
            }
            Repr::Panic(data) => match &data.message {
                Some(message) => write!(f, "task panicked: {message}"),
                None => f.write_str("task panicked"),
            },
            Repr::Error(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Abandoned => f.write_str("Failure::Abandoned"),
            Repr::Panic(data) => f
                .debug_tuple("Failure::Panic")
                .field(&data.message)
                .finish(),
            Repr::Error(error) => f.debug_tuple("Failure::Error").field(error).finish(),
        }
    }
}

impl StdError for Failure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.repr {
            Repr::Error(error) => Some(&**error),
            _ => None,
        }
    }
}
