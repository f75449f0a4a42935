//! How many connection pairs a run may use now (issue 12, provider signals): `--jobs` at the
//! start, fewer once a server says it has too many connections or throttles; never below
//! one. Workers hold a [`Seat`] while they work; a worker over the limit finishes its folder
//! and leaves ([`Connections::leave_if_over`]), and one whose login was refused waits until
//! someone has left ([`Connections::wait_settled`]) rather than spend its retries.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub(crate) struct Connections {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    /// Workers that may hold a connection pair now.
    allowed: usize,
    /// Workers seated now: each holds a pair, or is about to open one.
    active: usize,
    /// Seated workers waiting in [`Connections::wait_settled`].
    waiting: usize,
    /// Counts the times every seated worker was waiting: each ends every wait then begun.
    stuck: u64,
}

/// What a "too many connections" signal did to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lowering {
    /// The limit went down (once per change: the event says so).
    Lowered { from: usize, to: usize },
    /// An earlier lowering has not taken effect yet (more workers seated than allowed): a
    /// burst of refusals lowers once; a worker will leave at its next folder.
    Pending,
    /// Already one connection pair: nothing to give back.
    Floor,
}

/// A worker's place among the active ones; given back when dropped or when it leaves.
pub(crate) struct Seat<'a> {
    conns: &'a Connections,
    seated: bool,
}

impl Connections {
    pub(crate) fn new(jobs: usize) -> Connections {
        Connections {
            state: Mutex::new(State {
                allowed: jobs.max(1),
                active: 0,
                waiting: 0,
                stuck: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connection pairs the run may use now.
    pub(crate) fn allowed(&self) -> usize {
        self.lock().allowed
    }

    /// A worker starts work: seated until its seat drops or it leaves.
    pub(crate) fn seat(&self) -> Seat<'_> {
        self.lock().active += 1;
        Seat {
            conns: self,
            seated: true,
        }
    }

    /// A server (or an answer from it) said too many connections, throttled or unavailable,
    /// to a seated worker: allow one pair fewer than are seated now.
    pub(crate) fn lower(&self) -> Lowering {
        let mut st = self.lock();
        if st.active > st.allowed {
            return Lowering::Pending;
        }
        let to = st.active.saturating_sub(1).max(1);
        if to >= st.allowed {
            return Lowering::Floor;
        }
        let from = std::mem::replace(&mut st.allowed, to);
        Lowering::Lowered { from, to }
    }

    /// Between folders: is this worker one too many? Then it leaves (is no longer counted)
    /// and must stop, logging its pair out.
    pub(crate) fn leave_if_over(&self, seat: &mut Seat<'_>) -> bool {
        let mut st = self.lock();
        if !seat.seated || st.active <= st.allowed {
            return !seat.seated;
        }
        st.active -= 1;
        seat.seated = false;
        drop(st);
        self.changed.notify_all();
        true
    }

    /// Wait until no lowering is pending (a worker over the limit has left), or `stop()`.
    /// `false` when it cannot happen: every seated worker is waiting here, so the refusals
    /// come from connections that are not ours, and the caller spends its retries instead.
    pub(crate) fn wait_settled(&self, stop: impl Fn() -> bool) -> bool {
        let mut st = self.lock();
        st.waiting += 1;
        let began = st.stuck;
        let settled = loop {
            if st.active <= st.allowed {
                break true;
            }
            if st.waiting >= st.active {
                st.stuck += 1;
                self.changed.notify_all();
                break false;
            }
            if st.stuck != began || stop() {
                break false;
            }
            // Ctrl-C sets a flag, not this condition: look at it every 100 ms.
            st = self
                .changed
                .wait_timeout(st, Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        };
        st.waiting -= 1;
        settled
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        if self.seated {
            self.conns.lock().active -= 1;
            self.conns.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_lowers_once_and_one_worker_leaves() {
        let c = Connections::new(4);
        let mut seats: Vec<Seat<'_>> = (0..4).map(|_| c.seat()).collect();
        assert_eq!(c.lower(), Lowering::Lowered { from: 4, to: 3 });
        // A burst: the others refused at the same time lower nothing more.
        assert_eq!(c.lower(), Lowering::Pending);
        assert_eq!(c.allowed(), 3);
        assert!(c.leave_if_over(&mut seats[0]), "one worker is over");
        assert!(!c.leave_if_over(&mut seats[1]), "the rest go on");
        assert!(c.wait_settled(|| false), "settled once one left");
        // Another refusal with three seated: two.
        assert_eq!(c.lower(), Lowering::Lowered { from: 3, to: 2 });
        drop(seats.pop());
        assert!(
            c.wait_settled(|| false),
            "a worker that ends also gives its place"
        );
    }

    #[test]
    fn never_below_one() {
        let c = Connections::new(2);
        let _a = c.seat();
        assert_eq!(c.lower(), Lowering::Lowered { from: 2, to: 1 });
        assert_eq!(c.lower(), Lowering::Floor);
        assert_eq!(c.allowed(), 1);
        assert_eq!(Connections::new(0).allowed(), 1);
    }

    #[test]
    fn waiting_ends_when_everyone_waits() {
        let c = Connections::new(2);
        let _seats = (c.seat(), c.seat());
        assert_eq!(c.lower(), Lowering::Lowered { from: 2, to: 1 });
        std::thread::scope(|s| {
            let other = s.spawn(|| c.wait_settled(|| false));
            // Both seated workers wait: nobody will leave, so neither waits for ever.
            assert!(!c.wait_settled(|| false));
            assert!(!other.join().unwrap());
        });
        assert!(!c.wait_settled(|| true), "Ctrl-C ends a wait");
    }
}
