//! Reading a worker's frames: the launcher noise before its greeting, the handshake (HELLO
//! with the build fingerprint, then READY or INIT_FAILED) and the results of its calls.

use std::time::Instant;

use concur_core::Failure;

use crate::error::{HandshakeError, InitializerFailed};
use crate::frame::{self, Frame, FrameError, Outcomes, PROTOCOL_VERSION};
use crate::job::wire_failure;
use crate::worker::SYNC;

use super::Io;
use super::lifecycle::{Kill, Phase};

/// Most bytes a launcher may print before its worker greets the pool.
const NOISE_LIMIT: usize = 64 * 1024;

/// What reading a worker's frames asks of the pool.
pub(super) enum Event {
    Ready,
    Broken(Failure),
}

impl Io {
    /// Handles every complete frame in worker `i`'s buffer.
    pub(super) fn process_frames(&mut self, i: usize) -> Vec<Event> {
        let limit = self.config.max_frame;
        let init_name = self.config.initializer.as_ref().map_or("", |(n, _, _)| *n);
        let fingerprint = self.fingerprint;
        let worker = &mut self.workers[i];
        let mut events = Vec::new();
        if worker.marker.is_some() {
            // Part of the marker may be among the bytes: decode nothing until it is cut off.
            return events;
        }
        if !worker.synced {
            let noise = &worker.rbuf[worker.rpos..];
            match noise.windows(SYNC.len()).position(|w| w == SYNC) {
                Some(at) => {
                    worker.rpos += at + SYNC.len();
                    worker.synced = true;
                }
                None if noise.len() > NOISE_LIMIT => {
                    events.push(Event::Broken(Failure::from_error(
                        HandshakeError::Malformed(FrameError::Malformed(
                            "no greeting in the launcher's first 64 KiB",
                        )),
                    )));
                    worker.rpos = worker.rbuf.len();
                    return events;
                }
                None => return events,
            }
        }
        while worker.rpos < worker.rbuf.len() {
            if matches!(worker.kill, Some(Kill::Protocol(_))) {
                worker.rpos = worker.rbuf.len();
                break;
            }
            let bytes = &worker.rbuf[worker.rpos..];
            let (decoded, used) = match frame::decode_frame_with_limit(bytes, limit) {
                Ok(ok) => ok,
                Err(FrameError::Incomplete { .. }) => break,
                Err(error) => {
                    if worker.phase == Phase::Hello {
                        let handshake = match error {
                            FrameError::Version { found } => HandshakeError::Version {
                                expected: PROTOCOL_VERSION,
                                found,
                            },
                            other => HandshakeError::Malformed(other),
                        };
                        events.push(Event::Broken(Failure::from_error(handshake)));
                    } else {
                        worker.signal(libc::SIGKILL, Kill::Protocol(error));
                    }
                    worker.rpos = worker.rbuf.len();
                    break;
                }
            };
            match (worker.phase, decoded) {
                (
                    Phase::Hello,
                    Frame::Hello {
                        fingerprint: found, ..
                    },
                ) => {
                    if found != fingerprint {
                        events.push(Event::Broken(Failure::from_error(
                            HandshakeError::Fingerprint {
                                expected: fingerprint,
                                found,
                            },
                        )));
                    }
                    worker.phase = Phase::Init;
                }
                (Phase::Init | Phase::Ready, Frame::Heartbeat { .. }) => {}
                (Phase::Init, Frame::Ready) => {
                    worker.phase = Phase::Ready;
                    worker.head_since = Instant::now();
                    worker.last_heard = worker.head_since;
                    events.push(Event::Ready);
                }
                (Phase::Init, Frame::InitFailed(wire)) => {
                    let message = wire_failure(wire, init_name).to_string();
                    events.push(Event::Broken(Failure::from_error(InitializerFailed {
                        message,
                    })));
                }
                (
                    Phase::Ready,
                    Frame::Result {
                        id,
                        outcomes,
                        worker_cpu,
                    },
                ) => {
                    if worker.in_flight.front().is_none_or(|job| job.id != id)
                        || worker.unwritten == 0
                    {
                        worker.signal(
                            libc::SIGKILL,
                            Kill::Protocol(FrameError::Malformed("result for a call not running")),
                        );
                        worker.rpos = worker.rbuf.len();
                        break;
                    }
                    let Some(job) = worker.in_flight.pop_front() else {
                        break;
                    };
                    if !self.attempts.is_empty() {
                        self.attempts.remove(&job.id);
                    }
                    worker.unwritten -= 1;
                    worker.cpu = crate::frame::known_cpu(worker_cpu);
                    let (count, raw) = outcomes.raw();
                    job.completion
                        .complete(job.name, Ok(Outcomes::from_raw(count, raw)));
                    worker.head_since = Instant::now();
                    if let Some(next) = worker.in_flight.front() {
                        if next.kill_on_start {
                            let id = next.id;
                            worker.signal(libc::SIGKILL, Kill::Cancel { id });
                        }
                    }
                }
                (phase, other) => {
                    let error = FrameError::Malformed(match other {
                        Frame::Hello { .. } => "unexpected HELLO",
                        Frame::Ready => "unexpected READY",
                        Frame::InitFailed(_) => "unexpected INIT_FAILED",
                        Frame::Result { .. } => "RESULT before READY",
                        _ => "a worker may not send this kind",
                    });
                    if phase == Phase::Hello {
                        events.push(Event::Broken(Failure::from_error(
                            HandshakeError::Malformed(error),
                        )));
                    } else {
                        worker.signal(libc::SIGKILL, Kill::Protocol(error));
                    }
                    worker.rpos = worker.rbuf.len();
                    break;
                }
            }
            worker.rpos += used;
        }
        if worker.rpos > 0 && worker.rpos < worker.rbuf.len() {
            worker.rbuf.drain(..worker.rpos);
            worker.rpos = 0;
        }
        events
    }
}
