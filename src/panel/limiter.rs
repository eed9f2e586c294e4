//! The request budget of one panel: our share of each of the panel's windows, never more than the
//! panel says remains in it, and a pause for everyone after a 429.
//!
//! The panel's bucket is the key owner's (panel `app/Providers/RouteServiceProvider.php`: the
//! application throttle is keyed by the admin user's uuid), shared with every other key and
//! integration of that admin, and each counted answer says the limit and what is left
//! (`X-RateLimit-Limit`, `X-RateLimit-Remaining`: Laravel's `ThrottleRequests`). Its window is
//! fixed: it starts at the first request counted after the previous one ended and lasts a minute
//! (Laravel's cache limiter, `config/http.php`), and a normal answer does not say when it ends.
//!
//! So the limiter follows the panel's windows as its answers reveal them. It keeps bounds on when
//! the current window started: an answer that shows a new window (more remains than could) says it
//! began before that answer, and after the previous one ended (at the request that was counted
//! first, when the answer says only one is spent); an answer that still shows the old window says it
//! had not ended when the request left. It spends what remains, up to its budget, at once — the
//! fastest a window allows — and sends nothing more until the window has surely ended; then one
//! request finds out what the next window holds, and the rest follow its answer. (When another
//! integration of the admin began the window, its start is known only to the time of our first
//! answer in it; waiting for the latest end then still spaces our bursts a minute apart, which is
//! the pace of a share per window.)
//!
//! A panel that sends no such headers (Wisp's are unknown) gets the budget per rolling minute. One
//! limiter serves every GamePanel that points at the same panel (see the registry), and outlives key
//! rotations.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

/// Our own sliding window while the panel says nothing, and the panel's fixed window (Pterodactyl:
/// `application_period` of one minute in `config/http.php`).
pub const WINDOW: Duration = Duration::from_secs(60);

/// The longest the limiter ever pauses for a 429, whatever `Retry-After` says: the panel's window
/// is a minute, and a hostile or broken header must not stop a panel for years.
pub const MAX_PAUSE: Duration = Duration::from_secs(300);

/// Requests of our share kept back to find the end of a window whose start is known only roughly:
/// each halves the time it may end in (a minute becomes about a second).
const PROBES: u32 = 6;

/// A window whose start is known this closely needs no probes.
const PRECISE: Duration = Duration::from_millis(500);

/// How long the others wait for the answer of the request that finds out what a new window holds
/// (a probe) before another may go instead: a probe that hangs must not hold the panel for its
/// whole timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared by every request to one panel.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    /// Told when an answer comes back (what remains may have changed).
    answers: Notify,
    /// Requests waiting in `acquire`.
    waiting: AtomicU32,
    /// The length of the panel's window.
    panel_window: Duration,
}

#[derive(Debug)]
struct State {
    /// The request budget each user of the limiter asked for; the smallest applies.
    budgets: BTreeMap<String, u32>,
    /// Our requests of the last minute, while the panel has not said its limit.
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
    /// Requests sent and not answered yet.
    in_flight: u32,
    /// The panel's limit, once an answer said it: from then on its windows are followed.
    limit: Option<u32>,
    /// The panel's current window, while it can still be current.
    window: Option<PanelWindow>,
    /// The earliest the next window can start: the latest evidence that the previous one was still
    /// running (kept when the previous window is dropped).
    next_after: Option<Instant>,
    /// A request is out (since then) to learn what the panel's window holds; the others wait for its
    /// answer, for [`PROBE_TIMEOUT`] at most.
    probing: Option<Instant>,
}

/// What the panel's answers say of its current window.
#[derive(Debug, Clone, Copy)]
struct PanelWindow {
    /// It started at or after `lo` and at or before `hi`.
    lo: Instant,
    hi: Instant,
    /// The least an answer in it said remains: the panel had counted that answer's request and
    /// every one it said less than `said` for. (What remains now is less by the requests still out:
    /// [`PanelWindow::remaining`].)
    said: u32,
    /// Our requests sent in it.
    ours: u32,
    /// Those of them whose answer said nothing of the window (a request that failed on the way may
    /// still have been counted).
    unheard: u32,
}

impl PanelWindow {
    /// What surely remains in it while `in_flight` requests are out: the panel counts requests in
    /// order and says less remains each time, so a request counted after the one that said least
    /// is still out — but one still out may also have been counted already (its answer comes
    /// later), and a least-so-far kept instead (each answer's `said` less the requests then out)
    /// would take those twice, and leave a window's share unspent. A request whose answer said
    /// nothing counts as spent.
    fn remaining(&self, in_flight: u32) -> u32 {
        self.said.saturating_sub(in_flight).saturating_sub(self.unheard)
    }

    /// Before this it has surely not ended; after `ends_by` it surely has.
    fn surely_until(&self, length: Duration) -> Instant {
        self.lo + length
    }

    fn ends_by(&self, length: Duration) -> Instant {
        self.hi + length
    }
}

/// What the limiter decided for one request.
enum Decision {
    Send {
        probe: bool,
    },
    /// Wait this long, or until an answer comes back if `answer` is set.
    Wait {
        until: Instant,
        answer: bool,
    },
}

impl State {
    fn budget(&self) -> u32 {
        self.budgets.values().copied().min().unwrap_or(1).max(1)
    }

    /// What to do with one request now, while `waiting` requests (it among them) wait.
    fn decide(&mut self, now: Instant, length: Duration, waiting: u32) -> Decision {
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Decision::Wait { until, answer: false };
        }
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            self.sent.pop_front();
        }
        let budget = self.budget();
        if self.limit.is_none() {
            // The panel has not said how it counts: our budget per rolling minute.
            if self.sent.len() < budget as usize {
                return Decision::Send { probe: false };
            }
            let oldest = self.sent.front().copied().unwrap_or(now);
            return Decision::Wait { until: oldest + WINDOW, answer: false };
        }
        if let Some(w) = self.window.filter(|w| w.ends_by(length) <= now) {
            // Surely over: the next window starts no earlier than this one could end.
            tracing::debug!(ours = w.ours, said = w.said, in_flight = self.in_flight, waiting, "panel window over");
            self.next_after = Some(self.next_after.map_or(w.surely_until(length), |t| t.max(w.surely_until(length))));
            self.window = None;
        }
        let probe_out = self.probing.map(|t| t + PROBE_TIMEOUT).filter(|until| *until > now);
        let Some(w) = self.window else {
            // What the next window holds is unknown: one request finds out.
            return match probe_out {
                Some(until) => Decision::Wait { until, answer: true },
                None => Decision::Send { probe: true },
            };
        };
        // What the panel's limit holds beyond our budget is the other integrations': it stays in the
        // window whoever began it and wherever its edges fall among our requests.
        let theirs = self.limit.filter(|l| *l != u32::MAX).map_or(0, |l| l.saturating_sub(budget));
        let left = w.remaining(self.in_flight).saturating_sub(theirs).min(budget.saturating_sub(w.ours));
        let (surely, ends_by) = (w.surely_until(length), w.ends_by(length));
        // A window whose start is known only roughly (another integration began it): while more
        // requests wait or are out than remain, the last few of our share find where it ends, one at a time,
        // each halfway through the time it may still end in — so that the next window's share
        // goes at its start, before the others' requests in it.
        let uncertain = w.hi.duration_since(w.lo) > PRECISE;
        let demand = waiting + self.in_flight;
        let reserve = if uncertain && demand > left { PROBES.min(budget / 4) } else { 0 };
        if left > reserve {
            return Decision::Send { probe: false };
        }
        if left == 0 {
            return Decision::Wait { until: ends_by, answer: false };
        }
        if now < surely {
            return Decision::Wait { until: surely, answer: false };
        }
        if let Some(until) = probe_out {
            return Decision::Wait { until: until.min(ends_by), answer: true };
        }
        let halfway = surely + ends_by.saturating_duration_since(surely) / 2;
        match now >= halfway {
            true => Decision::Send { probe: true },
            false => Decision::Wait { until: halfway, answer: false },
        }
    }

    /// Counts a request sent now.
    fn send(&mut self, now: Instant, probe: bool) {
        self.sent.push_back(now);
        self.in_flight += 1;
        if probe {
            self.probing = Some(now);
        }
        if let Some(w) = self.window.as_mut() {
            w.ours += 1;
        }
    }

    /// A request is back (answered or not).
    fn returned(&mut self, permit: &Permit) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if permit.probe {
            self.probing = None;
        }
    }

    /// A request came back saying nothing of the panel's window: spent, if it was sent in it.
    fn unheard(&mut self, permit: &Permit) {
        if let Some(w) = self.window.as_mut().filter(|w| permit.sent >= w.lo) {
            w.unheard += 1;
        }
    }

    /// The panel counted a request sent at `sent` and answered at `now`: `said` remain of `limit`.
    fn counted(&mut self, sent: Instant, now: Instant, said: u32, limit: Option<u32>, probe: bool, length: Duration) {
        // A panel that says what remains but not of how much still counts in windows.
        self.limit = limit.or(self.limit).or(Some(u32::MAX));
        // Our requests still out.
        let others = self.in_flight;
        match self.window.as_mut() {
            // Sent before this window can have begun: an answer of an older window.
            Some(w) if sent < w.lo => return,
            // A probe, alone in flight, that finds more left than we counted: a new window began,
            // after the one we know ended.
            Some(w) if probe && others == 0 && said > w.said => {
                let ended = w.surely_until(length);
                self.next_after = Some(self.next_after.map_or(ended, |t| t.max(ended)));
            }
            // The window we know, until it has surely ended: a panel that says more remains than
            // we counted (an answer that comes back after later ones, which the panel counted
            // before them) is not taken for a new window — only what it says less is.
            Some(w) => {
                w.said = w.said.min(said);
                if let Some(earliest) = sent.checked_sub(length) {
                    w.lo = w.lo.max(earliest).min(w.hi);
                }
                return;
            }
            // Sent while the previous window may still have run: it tells nothing of the next.
            None if self.next_after.is_some_and(|t| sent < t) => return,
            None => {}
        }
        // A window this answer is the first to show: it began before the answer, after the
        // previous one could have ended, and at this request if the panel had counted nothing else.
        let first = self.limit.is_some_and(|l| said.saturating_add(1) >= l);
        let mut lo = now.checked_sub(length).unwrap_or(now);
        if let Some(after) = self.next_after {
            lo = lo.max(after);
        }
        if first {
            lo = lo.max(sent);
        }
        self.window = Some(PanelWindow { lo: lo.min(now), hi: now, said, ours: 1 + others, unheard: 0 });
        self.next_after = None;
    }
}

/// One request waiting in `acquire`, counted out however the wait ends (a caller may drop it).
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicU32) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request the limiter let go; hand it back with what the answer said.
#[derive(Debug)]
#[must_use = "give the permit back with `Limiter::answered`"]
pub struct Permit {
    sent: Instant,
    probe: bool,
}

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
            budgets: BTreeMap::from([(user.to_string(), per_minute.max(1))]),
            sent: VecDeque::new(),
            paused_until: None,
            in_flight: 0,
            limit: None,
            window: None,
            next_after: None,
            probing: None,
        };
        Self { state: Mutex::new(state), answers: Notify::new(), waiting: AtomicU32::new(0), panel_window: WINDOW }
    }

    /// Sets the budget `user` asks for (the smallest of all users' applies).
    pub async fn set_budget(&self, user: &str, per_minute: u32) {
        self.state.lock().await.budgets.insert(user.to_string(), per_minute.max(1));
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
        let _waiting = Waiting::count(&self.waiting);
        loop {
            let answered = self.answers.notified();
            tokio::pin!(answered);
            // Registered before the state is read: an answer in between is not missed.
            answered.as_mut().enable();
            let (until, answer) = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                match state.decide(now, self.panel_window, self.waiting.load(Ordering::Relaxed)) {
                    Decision::Send { probe } => {
                        state.send(now, probe);
                        return Permit { sent: now, probe };
                    }
                    Decision::Wait { until, answer } => (until.max(now + Duration::from_millis(1)), answer),
                }
            };
            match answer {
                true => {
                    tokio::select! {
                        _ = answered => {}
                        _ = tokio::time::sleep_until(until) => {}
                    }
                }
                false => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Requests waiting for the budget now.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A request came back; `remaining` and `limit` are the panel's `X-RateLimit-Remaining` and
    /// `X-RateLimit-Limit`, if it sent them.
    pub async fn answered(&self, permit: Permit, remaining: Option<u32>, limit: Option<u32>) {
        {
            let mut state = self.state.lock().await;
            state.returned(&permit);
            match remaining {
                Some(said) => state.counted(permit.sent, Instant::now(), said, limit, permit.probe, self.panel_window),
                None => state.unheard(&permit),
            }
        }
        self.answers.notify_waiters();
    }

    /// A request came back without an answer (it failed on the way; the panel may have counted it).
    pub async fn unanswered(&self, permit: Permit) {
        {
            let mut state = self.state.lock().await;
            state.returned(&permit);
            state.unheard(&permit);
        }
        self.answers.notify_waiters();
    }

    /// Holds every request to this panel for `delay` (after a 429), at most [`MAX_PAUSE`].
    pub async fn pause(&self, delay: Duration) {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let until = now + delay.min(MAX_PAUSE);
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        // The 429 said nothing remains in a window that ends by then.
        let length = self.panel_window;
        let hi = until.checked_sub(length).unwrap_or(now).min(now);
        let lo = now.checked_sub(length).unwrap_or(now).min(hi);
        state.window = Some(PanelWindow { lo, hi, said: 0, ours: state.budget(), unheard: 0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::access::{Buckets, Throttled};
    use std::sync::Arc;

    async fn send(limiter: &Limiter, remaining: Option<u32>) {
        let permit = limiter.acquire().await;
        limiter.answered(permit, remaining, None).await;
    }

    /// Three requests out at once, answered in the order they went, saying `said` remain.
    async fn three_out(limiter: &Limiter, said: [u32; 3]) {
        let out = [limiter.acquire().await, limiter.acquire().await, limiter.acquire().await];
        for (permit, said) in out.into_iter().zip(said) {
            limiter.answered(permit, Some(said), None).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn without_the_panels_word_the_budget_holds_over_any_minute() {
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
        three_out(&limiter, [2, 1, 0]).await;
        let start = Instant::now();
        send(&limiter, Some(200)).await;
        assert!(start.elapsed() >= WINDOW / 2, "waited {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_counted_before_an_answer_is_not_taken_twice() {
        let limiter = Limiter::new(1_000);
        send(&limiter, Some(10)).await;
        // Three go out; the panel counts the last two first, and the first one's answer comes back
        // first: it says 7 remain, and the two still out are in that already.
        three_out(&limiter, [7, 9, 8]).await;
        let start = Instant::now();
        for _ in 0..7 {
            send(&limiter, None).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the 7 that remain go at once");
        send(&limiter, None).await;
        assert!(start.elapsed() >= WINDOW / 2, "an eighth waits: {:?}", start.elapsed());
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

    /// A panel that counts as Laravel does (the simulator's buckets: fixed windows that start at the
    /// first request), with a latency each way that varies from request to request, so that answers
    /// come back in another order than the panel counted them.
    struct Panel {
        buckets: tokio::sync::Mutex<Buckets>,
        limit: u32,
        latency: Duration,
        refused: std::sync::atomic::AtomicU64,
        requests: std::sync::atomic::AtomicU64,
    }

    impl Panel {
        fn new(limit: u32) -> Arc<Panel> {
            Arc::new(Panel {
                buckets: Default::default(),
                limit,
                latency: Duration::from_millis(10),
                refused: Default::default(),
                requests: Default::default(),
            })
        }

        /// One request through `limiter` (or none, for a client that does not use one).
        async fn request(&self, limiter: Option<&Limiter>) -> bool {
            let permit = match limiter {
                Some(l) => Some(l.acquire().await),
                None => None,
            };
            let n = self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // 1 to 7 times the latency on the way there, 7 to 1 times on the way back.
            let there = 1 + (n * 7_919) % 7;
            tokio::time::sleep(self.latency * there as u32).await;
            let throttled = self.buckets.lock().await.hit("admin", self.limit, WINDOW, Instant::now());
            tokio::time::sleep(self.latency * (8 - there) as u32).await;
            let (remaining, refused) = match throttled {
                Throttled::Passed { remaining } => (remaining, false),
                Throttled::Refused { retry_after } => {
                    self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(l) = limiter {
                        l.pause(Duration::from_secs(retry_after)).await;
                    }
                    (0, true)
                }
            };
            if let (Some(l), Some(p)) = (limiter, permit) {
                l.answered(p, Some(remaining), Some(self.limit)).await;
            }
            !refused
        }
    }

    /// `total` requests through `limiter` from 16 tasks at once; how long they took.
    async fn spend(panel: &Arc<Panel>, limiter: &Arc<Limiter>, total: u32) -> Duration {
        let start = Instant::now();
        let left = Arc::new(std::sync::atomic::AtomicU32::new(total));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (panel, limiter, left) = (panel.clone(), limiter.clone(), left.clone());
                tokio::spawn(async move {
                    while left
                        .fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |n| {
                            n.checked_sub(1)
                        })
                        .is_ok()
                    {
                        assert!(panel.request(Some(&limiter)).await, "the operator got a 429");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        start.elapsed()
    }

    /// The fastest `total` requests can go at `share` per window: a whole share at the start of
    /// each window.
    fn window_bound(total: u32, share: u32) -> Duration {
        WINDOW * (total.div_ceil(share) - 1)
    }

    #[tokio::test(start_paused = true)]
    async fn alone_it_spends_each_whole_window_at_once() {
        // Five whole windows: each must be spent to its last request (answers come back in another
        // order than the panel counted them, and none may be taken for two).
        for total in [1_110, 1_200] {
            let panel = Panel::new(240);
            let limiter = Arc::new(Limiter::new(240));
            let took = spend(&panel, &limiter, total).await;
            let bound = window_bound(total, 240);
            assert_eq!(panel.refused.load(std::sync::atomic::Ordering::Relaxed), 0);
            assert!(took >= bound && took <= bound + Duration::from_secs(2), "{total}: {took:?} against {bound:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn beside_another_client_it_spends_its_share_and_leaves_the_rest() {
        for (offset, other_rate) in [(17, 40), (45, 40), (3, 40), (59, 40), (30, 60), (3, 120)] {
            let panel = Panel::new(240);
            // Another integration of the same admin, a request every 60/rate s, begins the windows.
            let other = {
                let panel = panel.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(WINDOW / other_rate);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut refused = 0;
                    loop {
                        tick.tick().await;
                        refused += u32::from(!panel.request(None).await);
                        if refused > 0 {
                            return refused;
                        }
                    }
                })
            };
            tokio::time::sleep(Duration::from_secs(offset)).await;
            let share = 240 - other_rate;
            let limiter = Arc::new(Limiter::new(share));
            // Four and a half shares: the operator starts in a window the other client began and
            // spent part of, so its first share is short of a whole one.
            let total = share * 9 / 2;
            let took = spend(&panel, &limiter, total).await;
            let bound = window_bound(total, share);
            assert!(!other.is_finished(), "the other client got a 429 (offset {offset} s, rate {other_rate})");
            other.abort();
            // The first window's start is known only to within a minute; probes halve that each
            // window, and what the other client spends meanwhile before our share is not ours: 5 %
            // while it takes a sixth of the limit or less (the default share leaves 40 of 240), a
            // quarter when it takes half.
            let slack = if other_rate <= 60 { 1.05 } else { 1.25 };
            assert!(
                took.as_secs_f64() <= bound.as_secs_f64() * slack,
                "offset {offset} s, rate {other_rate}: {took:?} against {bound:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_in_a_burst_does_not_reopen_the_window() {
        for (said, limit) in [(5, 6), (5, 240)] {
            // The first answer: the window began with it (said + 1 = limit) or earlier.
            let limiter = Limiter::new(1_000);
            let start = Instant::now();
            let first = limiter.acquire().await;
            limiter.answered(first, Some(said), Some(limit)).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            let burst: Vec<Permit> = futures::future::join_all((0..5).map(|_| limiter.acquire())).await;
            let mut burst = burst.into_iter();
            let counted_first = burst.next().expect("five");
            // The four counted after it come back first, then its own answer.
            for (permit, said) in burst.zip([3, 2, 1, 0]) {
                limiter.answered(permit, Some(said), Some(limit)).await;
            }
            limiter.answered(counted_first, Some(4), Some(limit)).await;
            send(&limiter, None).await;
            assert!(start.elapsed() >= WINDOW, "limit {limit}: sent after {:?}", start.elapsed());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_of_an_older_window_does_not_shrink_the_new_one() {
        let limiter = Limiter::new(1_000);
        let slow = limiter.acquire().await;
        limiter.answered(limiter.acquire().await, Some(239), Some(240)).await;
        tokio::time::sleep(WINDOW + Duration::from_secs(1)).await;
        // A new window: its first answer says 239 remain.
        limiter.answered(limiter.acquire().await, Some(239), Some(240)).await;
        // The slow request of the old window comes back saying little remains.
        limiter.answered(slow, Some(2), Some(240)).await;
        let start = Instant::now();
        for _ in 0..100 {
            send(&limiter, None).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
