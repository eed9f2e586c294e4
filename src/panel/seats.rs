//! A panel's share of the reconciles in flight. `--concurrency` bounds the reconciles of a kind that
//! run at once, and a reconcile holds its slot while it waits for its panel (an answer that takes
//! seconds, or the request budget of a spent window). Without a share, one slow panel would hold
//! every slot and stall the servers of all the others. With more than one panel, a panel holds at
//! most half the slots; a GameServer reconcile that finds its panel's seats taken gives its slot
//! back at once, waits in line, and is woken when a seat of its panel frees up (through the same
//! channel as a listing's changes). A box's reconcile retries after [`RETRY`] instead.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::snapshot::Listed;

/// When a box reconcile that found no seat is tried again.
pub const RETRY: Duration = Duration::from_secs(1);

/// The seats of one panel: how many reconciles hold one, and the GameServers waiting for one.
pub struct Seats {
    state: Mutex<State>,
    /// Wakes a waiting GameServer (by UID), as a listing does.
    wake: mpsc::UnboundedSender<Listed>,
}

#[derive(Default)]
struct State {
    taken: usize,
    /// Waiting GameServers' UIDs, in order, without repeats.
    line: VecDeque<String>,
    waiting: HashSet<String>,
}

/// A seat; given back when dropped, waking the first in line.
pub struct Seat {
    seats: Arc<Seats>,
}

impl Seats {
    pub fn new(wake: mpsc::UnboundedSender<Listed>) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State::default()), wake })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A seat if fewer than `of` are taken; else `None`, and `waiter` (a GameServer's UID), if
    /// given, is woken when one frees up. Checked and queued under one lock: a seat given back in
    /// between cannot be missed.
    pub fn take(self: &Arc<Self>, of: usize, waiter: Option<&str>) -> Option<Seat> {
        let mut state = self.state();
        if state.taken < of.max(1) {
            state.taken += 1;
            return Some(Seat { seats: self.clone() });
        }
        if let Some(uid) = waiter
            && state.waiting.insert(uid.to_string())
        {
            state.line.push_back(uid.to_string());
        }
        None
    }

    /// Seats taken now.
    pub fn taken(&self) -> usize {
        self.state().taken
    }

    /// GameServers waiting for a seat now.
    pub fn waiting(&self) -> usize {
        self.state().line.len()
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let next = {
            let mut state = self.seats.state();
            state.taken = state.taken.saturating_sub(1);
            let next = state.line.pop_front();
            if let Some(uid) = &next {
                state.waiting.remove(uid);
            }
            next
        };
        if let Some(uid) = next {
            let _ = self.seats.wake.send(Listed::Changed(vec![uid]));
        }
    }
}

/// The seats a panel may hold of `slots` reconciles of a kind, when the operator serves `panels`
/// panels: all of them alone, else half (at least one).
pub fn share(slots: usize, panels: usize) -> usize {
    match panels {
        0 | 1 => slots.max(1),
        _ => slots.div_ceil(2).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_given_back_wakes_the_first_in_line_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let seats = Seats::new(tx);
        let first = seats.take(1, Some("a")).expect("a free seat");
        assert!(seats.take(1, Some("b")).is_none());
        assert!(seats.take(1, Some("c")).is_none());
        assert!(seats.take(1, Some("b")).is_none(), "b asks again");
        assert_eq!(seats.waiting(), 2, "b is in line once");
        drop(first);
        assert_eq!(rx.try_recv().ok(), Some(Listed::Changed(vec!["b".into()])));
        assert!(rx.try_recv().is_err(), "one seat, one woken");
        assert_eq!(seats.taken(), 0);
        let again = seats.take(1, Some("b")).expect("the freed seat");
        drop(again);
        assert_eq!(rx.try_recv().ok(), Some(Listed::Changed(vec!["c".into()])));
        assert_eq!(seats.waiting(), 0);
    }

    #[test]
    fn a_box_without_a_seat_is_not_put_in_line() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let seats = Seats::new(tx);
        let held = seats.take(1, None).expect("a free seat");
        assert!(seats.take(1, None).is_none());
        drop(held);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn one_panel_has_every_slot_and_several_share_them() {
        assert_eq!(share(16, 1), 16);
        assert_eq!(share(16, 10), 8);
        assert_eq!(share(1, 3), 1);
        assert_eq!(share(0, 1), 1);
    }
}
