//! The request budget of one panel: our own limit (at most `requests_per_minute` in any 60 s), what
//! the panel says remains in its window, and a pause for everyone after a 429.
//!
//! The panel's bucket is the key owner's (panel `app/Providers/RouteServiceProvider.php`: the
//! application throttle is keyed by the admin user's uuid), shared with every other key and
//! integration of that admin, and each counted answer says what is left (`X-RateLimit-Remaining`).
//! Its window is fixed: it starts at the first counted request and lasts a minute (Laravel's cache
//! limiter), and a normal answer does not say when it ends. So the limiter counts down from what the
//! panel last said and sends nothing once that reaches zero, until the latest time that window can
//! end; after that, the next answers say what the new window holds. One limiter serves every
//! GamePanel that points at the same panel (see the registry), and outlives key rotations.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Our own sliding window, and the panel's fixed window (Pterodactyl: `application_period` of one
/// minute in `config/http.php`).
pub const WINDOW: Duration = Duration::from_secs(60);

/// The longest the limiter ever pauses for a 429, whatever `Retry-After` says: the panel's window
/// is a minute, and a hostile or broken header must not stop a panel for years.
pub const MAX_PAUSE: Duration = Duration::from_secs(300);

/// Shared by every request to one panel.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    /// The length of the panel's window.
    panel_window: Duration,
}

#[derive(Debug)]
struct State {
    /// The request budget each user of the limiter asked for; the smallest applies.
    budgets: BTreeMap<String, usize>,
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
    /// Requests sent and not answered yet.
    in_flight: u32,
    panel: Option<PanelWindow>,
}

/// What the panel last said of its window.
#[derive(Debug, Clone, Copy)]
struct PanelWindow {
    /// What it said remains, less what we sent since.
    remaining: u32,
    /// The latest time this window can end.
    ends_by: Instant,
}

impl State {
    fn budget(&self) -> usize {
        self.budgets.values().copied().min().unwrap_or(1).max(1)
    }

    /// The panel's window, while it can still be the current one.
    fn panel_window(&mut self, now: Instant) -> Option<&mut PanelWindow> {
        if self.panel.is_some_and(|p| p.ends_by <= now) {
            self.panel = None;
        }
        self.panel.as_mut()
    }
}

/// A request the limiter let go; hand it back with what the answer said.
#[derive(Debug)]
#[must_use = "give the permit back with `Limiter::answered`"]
pub struct Permit(());

impl Limiter {
    /// A budget of `per_minute` requests (at least one).
    pub fn new(per_minute: u32) -> Self {
        Self::shared("", per_minute)
    }

    /// A limiter of a panel whose rate-limit window lasts `window` instead of a minute (a
    /// simulated panel in a test).
    pub fn with_panel_window(per_minute: u32, window: Duration) -> Self {
        Self { panel_window: window, ..Self::shared("", per_minute) }
    }

    /// A limiter whose first user, `user`, asks for `per_minute`.
    pub fn shared(user: &str, per_minute: u32) -> Self {
        let state = State {
            budgets: BTreeMap::from([(user.to_string(), per_minute.max(1) as usize)]),
            sent: VecDeque::new(),
            paused_until: None,
            in_flight: 0,
            panel: None,
        };
        Self { state: Mutex::new(state), panel_window: WINDOW }
    }

    /// Sets the budget `user` asks for (the smallest of all users' applies).
    pub async fn set_budget(&self, user: &str, per_minute: u32) {
        self.state.lock().await.budgets.insert(user.to_string(), per_minute.max(1) as usize);
    }

    /// Forgets the budget of `user`.
    pub async fn forget(&self, user: &str) {
        let mut state = self.state.lock().await;
        if state.budgets.len() > 1 {
            state.budgets.remove(user);
        }
    }

    /// Waits until one more request fits our budget and what the panel says remains, and no pause
    /// is in force; counts it.
    pub async fn acquire(&self) -> Permit {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                while state.sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    state.sent.pop_front();
                }
                let budget = state.budget();
                let exhausted = state.panel_window(now).filter(|p| p.remaining == 0).map(|p| p.ends_by);
                match (state.paused_until, exhausted) {
                    (Some(until), _) if until > now => until - now,
                    (_, Some(ends_by)) => ends_by - now,
                    _ if state.sent.len() < budget => {
                        state.sent.push_back(now);
                        state.in_flight += 1;
                        if let Some(p) = state.panel_window(now) {
                            p.remaining -= 1;
                        }
                        return Permit(());
                    }
                    // Full: wait until the oldest request leaves the window.
                    _ => state.sent.front().map(|t| (*t + WINDOW).saturating_duration_since(now)).unwrap_or_default(),
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// A request came back; `remaining` is the panel's `X-RateLimit-Remaining`, if it sent one.
    /// Requests still in flight may or may not be counted in it: they are taken as not counted yet.
    pub async fn answered(&self, _permit: Permit, remaining: Option<u32>) {
        let mut state = self.state.lock().await;
        state.in_flight = state.in_flight.saturating_sub(1);
        let Some(said) = remaining else { return };
        let now = Instant::now();
        let others = state.in_flight;
        let left = said.saturating_sub(others);
        match state.panel_window(now) {
            // More left than our count allows: a new window began, at the latest just now.
            Some(p) if left > p.remaining + others => {
                *p = PanelWindow { remaining: left, ends_by: now + self.panel_window }
            }
            Some(p) => p.remaining = p.remaining.min(left),
            None => state.panel = Some(PanelWindow { remaining: left, ends_by: now + self.panel_window }),
        }
    }

    /// A request came back without counting (it failed before an answer).
    pub async fn unanswered(&self, _permit: Permit) {
        let mut state = self.state.lock().await;
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    /// Holds every request to this panel for `delay` (after a 429), at most [`MAX_PAUSE`].
    pub async fn pause(&self, delay: Duration) {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let until = now + delay.min(MAX_PAUSE);
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        // The 429 said nothing remains until then.
        state.panel = Some(PanelWindow { remaining: 0, ends_by: until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn send(limiter: &Limiter, remaining: Option<u32>) {
        let permit = limiter.acquire().await;
        limiter.answered(permit, remaining).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_holds_over_any_minute() {
        let limiter = Limiter::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            send(&limiter, None).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the first three go at once");
        send(&limiter, None).await;
        assert!(start.elapsed() >= WINDOW, "the fourth waits for the window: {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request() {
        let limiter = Limiter::new(100);
        limiter.pause(Duration::from_secs(7)).await;
        let start = Instant::now();
        send(&limiter, None).await;
        assert!(start.elapsed() >= Duration::from_secs(7));
        // A shorter pause does not shorten a longer one.
        limiter.pause(Duration::from_secs(5)).await;
        limiter.pause(Duration::from_secs(1)).await;
        let start = Instant::now();
        send(&limiter, None).await;
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hostile_retry_after_is_capped() {
        let limiter = Limiter::new(100);
        limiter.pause(Duration::MAX).await;
        let start = Instant::now();
        send(&limiter, None).await;
        assert!(start.elapsed() <= MAX_PAUSE + Duration::from_secs(1), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_panel_says_remains() {
        let limiter = Limiter::new(1_000);
        let start = Instant::now();
        // Another client spent most of the panel's window: two remain after this answer.
        send(&limiter, Some(2)).await;
        send(&limiter, Some(1)).await;
        send(&limiter, Some(0)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // Nothing remains: the next request waits until the window must have ended.
        send(&limiter, Some(239)).await;
        assert!(start.elapsed() >= WINDOW, "{:?}", start.elapsed());
        // The new window's answer lets the budget flow again.
        let again = Instant::now();
        send(&limiter, Some(238)).await;
        assert_eq!(again.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_count_against_what_remains() {
        let limiter = Limiter::new(1_000);
        send(&limiter, Some(3)).await;
        // Three go out at once; the first answer says 2 remain, the two others not yet counted.
        let (a, b, c) = (limiter.acquire().await, limiter.acquire().await, limiter.acquire().await);
        limiter.answered(a, Some(2)).await;
        limiter.answered(b, Some(1)).await;
        limiter.answered(c, Some(0)).await;
        let start = Instant::now();
        send(&limiter, Some(200)).await;
        assert!(start.elapsed() >= WINDOW / 2, "waited {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn the_smallest_budget_applies() {
        let limiter = Limiter::shared("a", 100);
        limiter.set_budget("b", 2).await;
        let start = Instant::now();
        for _ in 0..3 {
            send(&limiter, None).await;
        }
        assert!(start.elapsed() >= WINDOW);
        limiter.forget("b").await;
        let start = Instant::now();
        for _ in 0..10 {
            send(&limiter, None).await;
        }
        assert!(start.elapsed() < WINDOW);
    }
}
