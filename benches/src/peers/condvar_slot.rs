//! The textbook baseline: a one-shot slot guarded by a `Mutex` and a `Condvar`.

use std::sync::{Arc, Condvar, Mutex};

enum State<T> {
    Empty,
    Full(T),
    Closed,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

/// The sending half: fills the slot once; dropping it unfilled closes the slot.
pub struct Sender<T>(Option<Arc<Shared<T>>>);

/// The receiving half: blocks until the slot is filled or closed.
pub struct Receiver<T>(Arc<Shared<T>>);

/// A fresh empty slot (one allocation: the `Arc`).
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::Empty),
        ready: Condvar::new(),
    });
    (Sender(Some(shared.clone())), Receiver(shared))
}

impl<T> Sender<T> {
    /// Fills the slot and wakes the receiver.
    pub fn send(mut self, value: T) {
        if let Some(shared) = self.0.take() {
            close(&shared, State::Full(value));
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            close(&shared, State::Closed);
        }
    }
}

fn close<T>(shared: &Shared<T>, state: State<T>) {
    *shared.state.lock().unwrap() = state;
    shared.ready.notify_one();
}

impl<T> Receiver<T> {
    /// Waits for the value; `None` if the sender was dropped without sending.
    pub fn recv(self) -> Option<T> {
        let mut state = self.0.state.lock().unwrap();
        loop {
            match std::mem::replace(&mut *state, State::Closed) {
                State::Empty => {
                    *state = State::Empty;
                    state = self.0.ready.wait(state).unwrap();
                }
                State::Full(value) => return Some(value),
                State::Closed => return None,
            }
        }
    }
}
