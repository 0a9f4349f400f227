//! Tasks: plain functions registered under a stable name, and the [`task!`](crate::task) macro.
//!
//! A task crosses the process boundary by *name* (`module_path!() :: fn name`), never by code
//! address: every registration is a `linkme` distributed-slice entry holding the name, a
//! monomorphic shim that decodes the arguments, calls the function and encodes the result, and a
//! hash of the argument and result type names (the signature) that the worker checks.

use core::fmt;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{WireError, put_err, put_varint};

/// A registered task taking `A` and returning `R`, made by [`task!`](crate::task).
///
/// A `Task` is a name plus the local function; it is `Copy` and `'static`. Tasks with several
/// parameters take them as a tuple `A = (P1, P2, ..)`; one parameter is passed as itself; none
/// as `()`.
///
/// Only functions declared in `task!` are tasks, so a closure, let alone one with captures, can
/// never be sent to a worker:
///
/// ```compile_fail
/// use concur_process::ProcessPool;
///
/// let pool = ProcessPool::builder().build().unwrap();
/// let offset = 10u64;
/// pool.submit(move |x: u64| x + offset, 1u64); // error: expected `Task<_, _>`, found closure
/// ```
///
/// and a task body cannot capture its surroundings either:
///
/// ```compile_fail
/// let offset = 10u64;
/// concur_process::task! {
///     fn add_offset(x: u64) -> u64 { x + offset } // error: can't capture dynamic environment
/// }
/// ```
pub struct Task<A, R> {
    entry: &'static TaskEntry,
    local: fn(A) -> R,
}

impl<A, R> Clone for Task<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Task<A, R> {}

impl<A, R> fmt::Debug for Task<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Task").field(&self.entry.name).finish()
    }
}

impl<A, R> Task<A, R> {
    #[doc(hidden)]
    pub const fn __new(entry: &'static TaskEntry, local: fn(A) -> R) -> Self {
        Self { entry, local }
    }

    /// The stable name the task is registered under: `module::path::fn_name`.
    ///
    /// # Examples
    ///
    /// ```
    /// concur_process::task! {
    ///     fn double(x: u64) -> u64 { 2 * x }
    /// }
    /// assert!(double.name().ends_with("::double"));
    /// ```
    pub fn name(&self) -> &'static str {
        self.entry.name
    }

    /// Runs the task's function in this process, without any pool.
    ///
    /// # Examples
    ///
    /// ```
    /// concur_process::task! {
    ///     fn add(a: u32, b: u32) -> u32 { a + b }
    /// }
    /// assert_eq!(add.call((2, 3)), 5);
    /// ```
    pub fn call(&self, args: A) -> R {
        (self.local)(args)
    }

    pub(crate) fn signature(&self) -> u64 {
        (self.entry.signature)()
    }

    /// Whether the task was declared `#[idempotent]`, so that with
    /// [`retries`](crate::ProcessPoolBuilder::retries) a call whose worker died runs again.
    ///
    /// # Examples
    ///
    /// ```
    /// concur_process::task! {
    ///     #[idempotent]
    ///     fn square(x: u64) -> u64 { x * x }
    ///     fn append(line: String) { let _ = line; }
    /// }
    /// assert!(square.is_idempotent());
    /// assert!(!append.is_idempotent());
    /// ```
    pub fn is_idempotent(&self) -> bool {
        self.entry.idempotent
    }
}

/// One registration in the task registry. Built by [`task!`](crate::task) only.
#[doc(hidden)]
pub struct TaskEntry {
    /// The stable name.
    pub name: &'static str,
    /// Decodes one argument set from the input, runs the function and appends one outcome.
    pub run: fn(&[u8], &mut Vec<u8>),
    /// The signature hash of the argument and result types.
    pub signature: fn() -> u64,
    /// Declared `#[idempotent]`: a call may run again after its worker died
    /// ([`retries`](crate::ProcessPoolBuilder::retries)).
    pub idempotent: bool,
}

#[doc(hidden)]
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

#[doc(hidden)]
#[linkme::distributed_slice]
pub static TEST_WORKERS: [&'static str];

/// The registered task called `name`, in this process.
pub(crate) fn lookup(name: &str) -> Option<&'static TaskEntry> {
    static INDEX: OnceLock<HashMap<&'static str, &'static TaskEntry>> = OnceLock::new();
    INDEX
        .get_or_init(|| TASKS.iter().map(|entry| (entry.name, entry)).collect())
        .get(name)
        .copied()
}

/// The libtest name of the helper test registered by [`test_worker!`](crate::test_worker).
pub(crate) fn test_worker_name() -> Option<&'static str> {
    let path = TEST_WORKERS.first()?;
    // `module_path!()` starts with the crate name, which libtest's names leave out.
    Some(path.split_once("::").map_or(*path, |(_, rest)| rest))
}

/// FNV-1a, 64 bits: small, stable across builds and platforms.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separate the parts so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[doc(hidden)]
pub fn signature<A, R>() -> u64 {
    fnv1a(&[
        core::any::type_name::<A>().as_bytes(),
        core::any::type_name::<R>().as_bytes(),
    ])
}

/// A postcard output that appends to a `Vec` (postcard's own `Extend` flavor pushes byte by
/// byte).
struct VecFlavor<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for VecFlavor<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Postcard writes each integer as a slice of a few varint bytes; a `memcpy` call per
        // integer costs more than pushing them.
        if data.len() <= 16 {
            // One capacity check, then a plain copy loop (a trusted-length extend).
            self.0.extend(data.iter().copied());
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends `value` as a varint length followed by its postcard encoding. On failure nothing is
/// appended.
pub(crate) fn put_encoded<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<(), postcard::Error> {
    let at = buf.len();
    buf.push(0);
    if let Err(error) = postcard::serialize_with_flavor::<T, _, _>(value, VecFlavor(buf)) {
        buf.truncate(at);
        return Err(error);
    }
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        buf.splice(at..at + 1, prefix);
    }
    Ok(())
}

/// The shim body of every task: decode, call, encode one outcome onto `out`.
#[doc(hidden)]
pub fn invoke<A, R>(f: fn(A) -> R, input: &[u8], out: &mut Vec<u8>)
where
    A: DeserializeOwned,
    R: Serialize,
{
    let args = match postcard::from_bytes::<A>(input) {
        Ok(args) => args,
        Err(error) => return put_err(out, &WireError::DecodeArgs(error.to_string())),
    };
    let value = f(args);
    let at = out.len();
    out.push(0); // TAG_OK
    if let Err(error) = put_encoded(out, &value) {
        out.truncate(at);
        put_err(out, &WireError::EncodeResult(error.to_string()));
    }
}

/// Declares tasks: plain functions that a [`ProcessPool`](crate::ProcessPool) can run in its
/// workers.
///
/// Each `fn` becomes a `const` of type [`Task<A, R>`](crate::Task) with the function's name
/// and doc comments, registered under `module_path!() :: name`. Parameters must be plain
/// identifiers with types that implement `serde::Deserialize`; the result type must implement
/// `serde::Serialize` (a missing `-> R` means `()`). Generic and `async` functions are not
/// supported. Several functions may be declared in one block. `#[idempotent]`, after a function's
/// doc comment and before any other attribute, marks a task that is safe to run again: with
/// [`retries`](crate::ProcessPoolBuilder::retries), its call re-runs on another worker when its
/// worker dies.
///
/// Like any `const`, a task's name is a pattern in its module: there, `let square = 3;` or
/// `for pid in ..` do not compile when tasks named `square` or `pid` are in scope. Declaring
/// tasks in a module of their own and referring to them by path (`tasks::square`) avoids that.
///
/// # Examples
///
/// ```
/// concur_process::task! {
///     /// Whether `n` is prime.
///     pub fn is_prime(n: u64) -> bool {
///         n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
///     }
///
///     fn add(a: i64, b: i64) -> i64 { a + b }
///
///     fn hello() { println!("hello from a worker") }
/// }
///
/// assert!(is_prime.call(7));
/// assert_eq!(add.call((2, 3)), 5);
/// hello.call(());
/// ```
#[macro_export]
macro_rules! task {
    () => {};
    (
        $(#[doc = $doc:literal])*
        #[idempotent]
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::__task_one! { [$(#[doc = $doc])* $(#[$meta])*] [$vis] $name [$($arg : $ty),*] [$ret] [true] $body }
        $crate::task! { $($rest)* }
    };
    (
        $(#[doc = $doc:literal])*
        #[idempotent]
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $body:block
        $($rest:tt)*
    ) => {
        $crate::__task_one! { [$(#[doc = $doc])* $(#[$meta])*] [$vis] $name [$($arg : $ty),*] [()] [true] $body }
        $crate::task! { $($rest)* }
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::__task_one! { [$(#[$meta])*] [$vis] $name [$($arg : $ty),*] [$ret] [false] $body }
        $crate::task! { $($rest)* }
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $body:block
        $($rest:tt)*
    ) => {
        $crate::__task_one! { [$(#[$meta])*] [$vis] $name [$($arg : $ty),*] [()] [false] $body }
        $crate::task! { $($rest)* }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_one {
    ([$($meta:tt)*] [$vis:vis] $name:ident [$($arg:ident : $ty:ty),*] [$ret:ty] [$idempotent:literal] $body:block) => {
        $($meta)*
        #[allow(non_upper_case_globals)]
        $vis const $name: $crate::Task<$crate::__task_args!($($ty),*), $ret> = {
            #[allow(clippy::too_many_arguments)]
            fn $name($($arg : $ty),*) -> $ret $body
            fn __call(
                $crate::__task_pat!($($arg),*): $crate::__task_args!($($ty),*),
            ) -> $ret {
                $name($($arg),*)
            }
            fn __run(input: &[u8], out: &mut ::std::vec::Vec<u8>) {
                $crate::__private::invoke(__call, input, out)
            }
            fn __signature() -> u64 {
                // Hashed once: every call's frame carries it, and the worker checks it.
                static SIGNATURE: ::std::sync::OnceLock<u64> = ::std::sync::OnceLock::new();
                *SIGNATURE.get_or_init(
                    $crate::__private::signature::<$crate::__task_args!($($ty),*), $ret>,
                )
            }
            #[$crate::__private::linkme::distributed_slice($crate::__private::TASKS)]
            #[linkme(crate = $crate::__private::linkme)]
            static __ENTRY: $crate::__private::TaskEntry = $crate::__private::TaskEntry {
                name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!($name)),
                run: __run,
                signature: __signature,
                idempotent: $idempotent,
            };
            $crate::Task::__new(&__ENTRY, __call)
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_args {
    () => { () };
    ($one:ty) => { $one };
    ($($many:ty),+) => { ($($many),+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_pat {
    () => { () };
    ($one:ident) => { $one };
    ($($many:ident),+) => { ($($many),+) };
}

/// Declares the helper test that lets `cargo test` binaries start pools.
///
/// A test binary's `main` belongs to libtest, so it cannot call [`worker_main`](crate::worker_main)
/// first. Invoke this macro once in each test crate (an integration test file, or the library's
/// `#[cfg(test)]` module) that builds a [`ProcessPool`](crate::ProcessPool): it defines a
/// `#[test]` function that is a no-op in a normal run, and pools started by that binary re-run it
/// as `<test binary> --exact <path>::__concur_process_worker --nocapture --test-threads=1` to become
/// workers (as procspawn and rusty-fork do). libtest's own start-up output goes to `/dev/null`;
/// tasks print to the pool's stdout as usual.
///
/// # Examples
///
/// (`no_run`: a doc test is not a libtest binary the pool could re-run as a worker; the same
/// shape runs for real in `process/tests/`.)
///
/// ```no_run
/// // tests/my_pool.rs
/// concur_process::test_worker!();
///
/// concur_process::task! {
///     fn square(x: u64) -> u64 { x * x }
/// }
///
/// #[test]
/// fn squares() {
///     let pool = concur_process::ProcessPool::builder().max_workers(2).build().unwrap();
///     assert_eq!(*pool.submit(square, 7).unwrap().result().unwrap(), 49);
/// }
/// ```
#[macro_export]
macro_rules! test_worker {
    () => {
        #[test]
        fn __concur_process_worker() {
            $crate::worker_main();
        }

        #[cfg(test)]
        #[$crate::__private::linkme::distributed_slice($crate::__private::TEST_WORKERS)]
        #[linkme(crate = $crate::__private::linkme)]
        static __CONCUR_PROCESS_TEST_WORKER: &'static str =
            ::core::concat!(::core::module_path!(), "::__concur_process_worker");
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_encoded_prefixes_length() {
        let mut buf = Vec::new();
        put_encoded(&mut buf, &300u32).unwrap();
        assert_eq!(buf, [2, 0xac, 0x02]);
        let big = vec![7u8; 200];
        let mut buf = vec![9];
        put_encoded(&mut buf, &big).unwrap();
        assert_eq!(&buf[..5], &[9, 0xca, 0x01, 0xc8, 0x01]);
        assert_eq!(buf.len(), 1 + 2 + 2 + 200);
    }
}
