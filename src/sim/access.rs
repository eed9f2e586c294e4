//! Who may call the simulated panel, and how often.
//!
//! - Application keys belong to an admin user and carry one permission value per resource (`r_servers`,
//!   `r_allocations`, …: 0 none, 1 read, 3 read and write; panel `app/Models/ApiKey.php`,
//!   `app/Services/Acl/Api/AdminAcl.php`). GET needs bit 1, every other method bit 2, checked after
//!   route-model binding (a missing `{id}` is a 404 first) and before validation (a 422 comes after)
//!   (`app/Http/Requests/Api/Application/ApplicationApiRequest.php`, Laravel's `FormRequest`).
//! - The rate limit is one fixed window per key *owner* (`app/Providers/RouteServiceProvider.php`:
//!   `throttle:api.application` keyed by `$request->user()->uuid`): every key of one admin, and every
//!   other integration using that admin, share it. Every answer that passed the throttle carries
//!   `X-RateLimit-Limit` and `X-RateLimit-Remaining` (Laravel `ThrottleRequests::addHeaders`).
//!
//! Wisp has the same `r_*` columns (wisp-api.md §2, CONFIRMED); its rate-limit numbers and headers
//! are unknown, so the same ones are served (INFERRED).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use crate::panel::acl::{RESOURCES, resource_of};

/// An application API key of the simulated panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimKey {
    /// The bearer token.
    pub key: String,
    /// The admin user the key belongs to (its rate-limit bucket).
    #[serde(default = "default_owner")]
    pub owner: String,
    /// `r_<resource>` → 0 (none), 1 (read) or 3 (read and write); a resource not listed has 3.
    #[serde(default)]
    pub permissions: BTreeMap<String, u8>,
}

/// The owner of the simulator's main key.
pub const DEFAULT_OWNER: &str = "admin";

fn default_owner() -> String {
    DEFAULT_OWNER.to_string()
}

impl SimKey {
    /// A key of the default admin with every permission.
    pub fn full(key: impl Into<String>) -> Self {
        Self { key: key.into(), owner: default_owner(), permissions: BTreeMap::new() }
    }

    /// The resource of a permission: Pterodactyl's and Wisp's `r_servers` column, or Pelican's
    /// singular `server` (its keys hold a map of them).
    fn resource(column: &str) -> Option<String> {
        let plural = match column.strip_prefix("r_") {
            Some(r) => r.to_string(),
            None => format!("{column}s"),
        };
        RESOURCES.contains(&plural.as_str()).then_some(plural)
    }

    /// Why the permissions cannot be stored, if they cannot (an unknown column or value).
    pub fn invalid(&self) -> Option<String> {
        self.permissions.iter().find_map(|(column, bits)| {
            let known = Self::resource(column).is_some();
            if !known {
                Some(format!("unknown permission {column:?} (known: r_{})", RESOURCES.join(", r_")))
            } else if !matches!(bits, 0 | 1 | 3) {
                Some(format!("{column}: {bits} is not 0, 1 or 3"))
            } else {
                None
            }
        })
    }

    /// Whether the key may read (or, with `write`, write) `resource`.
    pub fn allows(&self, resource: &str, write: bool) -> bool {
        let bits = self
            .permissions
            .iter()
            .find(|(column, _)| Self::resource(column).as_deref() == Some(resource))
            .map_or(3, |(_, bits)| *bits);
        bits & if write { 2 } else { 1 } != 0
    }
}

/// One fixed window: it starts at the first counted request and lasts the window's length, as
/// Laravel's cache limiter.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// The rate-limit buckets, one per key owner.
#[derive(Debug, Default)]
pub struct Buckets {
    windows: HashMap<String, Window>,
    /// Windows that ended, oldest first (the last [`WINDOWS_KEPT`]): what each owner spent in each.
    ended: std::collections::VecDeque<(String, Window)>,
}

/// How many ended windows [`Buckets`] keeps.
const WINDOWS_KEPT: usize = 1000;

/// One window of one key owner, for `GET /_sim/stats`: when it started (seconds after `since`) and
/// how many requests it counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountedWindow {
    pub owner: String,
    pub started: f64,
    pub counted: u32,
}

/// What the throttle said of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Counted: this many requests remain in the window.
    Passed { remaining: u32 },
    /// Refused: retry after this many seconds.
    Refused { retry_after: u64 },
}

impl Buckets {
    /// Counts one request of `owner` against `limit` per `window`.
    pub fn hit(&mut self, owner: &str, limit: u32, window: Duration, now: Instant) -> Throttled {
        let w = self.windows.entry(owner.to_string()).or_insert(Window { started: now, count: 0 });
        if now.duration_since(w.started) >= window {
            let ended = std::mem::replace(w, Window { started: now, count: 0 });
            if self.ended.len() == WINDOWS_KEPT {
                self.ended.pop_front();
            }
            self.ended.push_back((owner.to_string(), ended));
        }
        if w.count < limit {
            w.count += 1;
            return Throttled::Passed { remaining: limit - w.count };
        }
        let reset = window.saturating_sub(now.duration_since(w.started));
        Throttled::Refused { retry_after: reset.as_secs() + u64::from(reset.subsec_nanos() > 0) }
    }

    /// Every window kept, ended or current, in the order they started; `since` is time zero.
    pub fn counted(&self, since: Instant) -> Vec<CountedWindow> {
        let mut all: Vec<CountedWindow> = self
            .ended
            .iter()
            .map(|(owner, w)| (owner, w))
            .chain(&self.windows)
            .map(|(owner, w)| CountedWindow {
                owner: owner.clone(),
                started: w.started.saturating_duration_since(since).as_secs_f64(),
                counted: w.count,
            })
            .collect();
        all.sort_by(|a, b| a.started.total_cmp(&b.started));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_read_and_write_bits() {
        let key = SimKey {
            key: "k".into(),
            owner: "admin".into(),
            permissions: BTreeMap::from([("r_allocations".into(), 0), ("r_users".into(), 1)]),
        };
        assert!(!key.allows("allocations", false));
        assert!(key.allows("users", false) && !key.allows("users", true));
        assert!(key.allows("servers", true), "an unlisted resource has every bit");
        let pelican = SimKey { permissions: BTreeMap::from([("egg".into(), 1)]), ..key.clone() };
        assert!(pelican.allows("eggs", false) && !pelican.allows("eggs", true), "Pelican's singular names");
        assert_eq!(key.invalid(), None);
        let bad = SimKey { permissions: BTreeMap::from([("r_pets".into(), 3)]), ..key.clone() };
        assert!(bad.invalid().is_some_and(|m| m.contains("r_pets")));
        let bad = SimKey { permissions: BTreeMap::from([("r_users".into(), 2)]), ..key };
        assert!(bad.invalid().is_some_and(|m| m.contains("not 0, 1 or 3")));
    }

    #[test]
    fn one_window_per_owner() {
        let mut buckets = Buckets::default();
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        assert_eq!(buckets.hit("a", 2, minute, now), Throttled::Passed { remaining: 1 });
        assert_eq!(buckets.hit("a", 2, minute, now), Throttled::Passed { remaining: 0 });
        assert_eq!(
            buckets.hit("a", 2, minute, now + Duration::from_millis(59_500)),
            Throttled::Refused { retry_after: 1 }
        );
        assert_eq!(buckets.hit("b", 2, minute, now), Throttled::Passed { remaining: 1 }, "another owner");
        assert_eq!(buckets.hit("a", 2, minute, now + minute), Throttled::Passed { remaining: 1 }, "a new window");
    }
}
