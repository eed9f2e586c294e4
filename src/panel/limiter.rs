//! A per-panel request budget: at most `requests_per_minute` requests in any 60 s window, and a
//! pause for the whole panel after a 429 (`Retry-After`).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

/// Shared by every request to one panel.
#[derive(Debug)]
pub struct Limiter {
    per_minute: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Limiter {
    /// A budget of `per_minute` requests (at least one).
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1) as usize, state: Mutex::new(State::default()) }
    }

    /// Waits until one more request fits the budget and no pause is in force, and counts it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                while state.sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    state.sent.pop_front();
                }
                match state.paused_until {
                    Some(until) if until > now => until - now,
                    _ if state.sent.len() < self.per_minute => {
                        state.sent.push_back(now);
                        return;
                    }
                    // Full: wait until the oldest request leaves the window.
                    _ => state.sent.front().map(|t| (*t + WINDOW).saturating_duration_since(now)).unwrap_or_default(),
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Holds every request to this panel for `delay` (after a 429).
    pub async fn pause(&self, delay: Duration) {
        let mut state = self.state.lock().await;
        let until = Instant::now() + delay;
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_budget_holds_over_any_minute() {
        let limiter = Limiter::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the first three go at once");
        limiter.acquire().await;
        assert!(start.elapsed() >= WINDOW, "the fourth waits for the window: {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request() {
        let limiter = Limiter::new(100);
        limiter.pause(Duration::from_secs(7)).await;
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
        // A shorter pause does not shorten a longer one.
        limiter.pause(Duration::from_secs(5)).await;
        limiter.pause(Duration::from_secs(1)).await;
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(5));
    }
}
