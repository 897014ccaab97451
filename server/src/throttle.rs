//! Rate limits for what a client address (or a guest) can make the task do over HTTP (create
//! guests, read history, open WebSockets, upload images): one bucket per client address or
//! user and (optionally) one for the whole task, so neither one address nor many spoofed ones
//! can burn the user counter, the store, the disk or the CPU. The client address
//! is the peer's, or behind trusted proxies (the ALB) the `X-Forwarded-For` entry the
//! outermost trusted proxy appended.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

/// Addresses (or users) tracked at most; beyond it new ones share one bucket (memory stays
/// bounded whatever addresses a flood claims).
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// The bucket every address beyond [`MAX_TRACKED_ADDRESSES`] shares.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// A sustained rate with a burst above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per minute, sustained.
    pub per_minute: NonZeroU32,
    /// Requests allowed at once.
    pub burst: NonZeroU32,
}

impl Rate {
    fn quota(self) -> Quota {
        let period = Duration::from_secs(60) / self.per_minute.get();
        Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.burst)
    }
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Address,
    Task,
}

/// One kind of request, limited per client address (or another key: a user id) and per task.
pub struct Throttle<K: Hash + Eq + Clone = IpAddr> {
    per_address: DefaultKeyedRateLimiter<K>,
    per_task: Option<DefaultDirectRateLimiter>,
    /// The bucket every key beyond [`MAX_TRACKED_ADDRESSES`] shares.
    overflow: K,
    /// Serialises the bounded-size check with the insert of a new address.
    grow: Mutex<()>,
}

impl Throttle<IpAddr> {
    /// Limited per client address and, with `per_task`, per task.
    pub fn new(per_address: Rate, per_task: Option<Rate>) -> Self {
        Self::keyed(per_address, per_task, OVERFLOW)
    }
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// Limited per key (with `overflow` the key every key beyond the tracked ones shares) and,
    /// with `per_task`, per task.
    pub fn keyed(per_key: Rate, per_task: Option<Rate>, overflow: K) -> Self {
        Self {
            per_address: RateLimiter::keyed(per_key.quota()),
            per_task: per_task.map(|r| RateLimiter::direct(r.quota())),
            overflow,
            grow: Mutex::new(()),
        }
    }

    /// Takes one request from `addr`'s bucket and the task's.
    pub fn check(&self, addr: K) -> Result<(), Refused> {
        let key = self.key_for(addr);
        self.per_address
            .check_key(&key)
            .map_err(|_| Refused::Address)?;
        match &self.per_task {
            Some(limiter) => limiter.check().map_err(|_| Refused::Task),
            None => Ok(()),
        }
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.per_address.len()
    }

    fn key_for(&self, addr: K) -> K {
        if self.per_address.len() < MAX_TRACKED_ADDRESSES {
            return addr;
        }
        let _one_at_a_time = self.grow.lock();
        if self.per_address.len() >= MAX_TRACKED_ADDRESSES {
            // Forget addresses whose buckets are full again (indistinguishable from new).
            self.per_address.retain_recent();
            self.per_address.shrink_to_fit();
        }
        if self.per_address.len() < MAX_TRACKED_ADDRESSES {
            addr
        } else {
            self.overflow.clone()
        }
    }
}

/// A venue is one address: conference Wi-Fi puts hundreds of attendees behind one NAT address,
/// and a drain or a rebalance makes them all reconnect within seconds, far past that address's
/// connection budget (`CHAT_CONNECT_LIMIT_ADDR`). A WebSocket beyond the budget is admitted on
/// probation, up to [`PROBATION_PER_ADDRESS`] per address: its `hello` must carry a valid token
/// (as every connection's must), and it is counted against that guest's reconnects
/// ([`RECONNECTS_PER_USER`]) instead of its address. A reconnect with a valid token is thus never
/// refused for its address, and a planned move makes no 429 to trip the 4xx alarm that gates it.
pub struct Reconnects {
    /// Probation admissions per address: the audience one address may bring back at once.
    per_address: Throttle,
    /// Reconnects on probation per guest.
    per_user: Arc<Throttle<u64>>,
}

/// Connections beyond an address's budget admitted on probation: 5,000 at once per address,
/// refilled at 5,000 a minute: an audience of 5,000 behind one NAT may all reconnect together.
pub const PROBATION_PER_ADDRESS: Rate = Rate {
    per_minute: NonZeroU32::new(5_000).unwrap(),
    burst: NonZeroU32::new(5_000).unwrap(),
};

/// Reconnects on probation one guest may make: 10 at once, 30 a minute (a client backs off
/// far below this; a script reusing one token does not).
pub const RECONNECTS_PER_USER: Rate = Rate {
    per_minute: NonZeroU32::new(30).unwrap(),
    burst: NonZeroU32::new(10).unwrap(),
};

impl Default for Reconnects {
    fn default() -> Self {
        Self {
            per_address: Throttle::new(PROBATION_PER_ADDRESS, None),
            // 0 is no guest's id: the bucket of guests beyond the tracked ones.
            per_user: Arc::new(Throttle::keyed(RECONNECTS_PER_USER, None, 0)),
        }
    }
}

impl Reconnects {
    /// Admits a connection from `addr` beyond its budget on probation: the check its guest must
    /// then pass ([`Probation::admit`]), or `None` when the address has used up even that.
    pub fn probation(&self, addr: IpAddr) -> Option<Probation> {
        self.per_address.check(addr).ok()?;
        Some(Probation(Arc::clone(&self.per_user)))
    }
}

/// A connection admitted beyond its address's budget, waiting for its guest.
pub struct Probation(Arc<Throttle<u64>>);

impl Probation {
    /// Counts the reconnect against `user`: false when the guest has used up its reconnects.
    pub fn admit(&self, user: u64) -> bool {
        self.0.check(user).is_ok()
    }
}

/// The client's address: with `trusted_proxies` proxies in front (each appending the address
/// it received from to `X-Forwarded-For`), the entry the outermost one appended; without
/// proxies, or when the header has fewer entries than expected, the best that is known.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted_proxies: usize) -> IpAddr {
    if trusted_proxies == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return peer;
    }
    // The last entry was appended by the nearest proxy, the one before by the next, ...
    let idx = entries.len().saturating_sub(trusted_proxies);
    entries[idx].parse().unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_minute: u32, burst: u32) -> Rate {
        Rate {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_address_has_its_burst_and_the_task_caps_them_all() {
        let t = Throttle::new(rate(1, 3), Some(rate(1, 5)));
        for _ in 0..3 {
            assert_eq!(t.check(ip("10.0.0.1")), Ok(()));
        }
        assert_eq!(t.check(ip("10.0.0.1")), Err(Refused::Address));
        assert_eq!(t.check(ip("10.0.0.2")), Ok(()));
        assert_eq!(t.check(ip("10.0.0.3")), Ok(()));
        assert_eq!(t.check(ip("10.0.0.4")), Err(Refused::Task));
    }

    /// A venue's whole audience reconnects from one address: beyond the address's budget each
    /// connection is admitted, and only a guest reconnecting too often is refused.
    #[test]
    fn a_venue_reconnects_on_its_guests_tokens_not_its_address() {
        let connect = Throttle::new(rate(600, 200), None);
        let reconnects = Reconnects::default();
        let venue = ip("203.0.113.7");
        let mut on_probation = 0;
        for user in 1..=1_000u64 {
            if connect.check(venue).is_err() {
                let probation = reconnects.probation(venue).expect("probation for a venue");
                assert!(probation.admit(user), "guest {user} refused");
                on_probation += 1;
            }
        }
        assert_eq!(on_probation, 800, "the first 200 fit the address's burst");
        let probation = reconnects.probation(venue).expect("probation");
        let burst = RECONNECTS_PER_USER.burst.get();
        let admitted = (0..burst + 5).filter(|_| probation.admit(42)).count();
        assert_eq!(
            admitted, burst as usize,
            "one guest's reconnects are bounded"
        );
    }

    #[test]
    fn the_address_set_stays_bounded() {
        let t = Throttle::new(rate(1, 1), None);
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 500) {
            let _ = t.check(IpAddr::V4(i.into()));
        }
        assert!(t.tracked() <= MAX_TRACKED_ADDRESSES + 1, "{}", t.tracked());
    }

    #[test]
    fn the_client_is_the_entry_the_outermost_trusted_proxy_appended() {
        let peer = ip("172.31.0.9");
        let mut h = HeaderMap::new();
        assert_eq!(client_ip(&h, peer, 1), peer);
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        // ALB only: the client forged 6.6.6.6; the ALB appended the real address.
        assert_eq!(client_ip(&h, peer, 1), ip("203.0.113.7"));
        // CloudFront then the ALB: CloudFront appended the viewer.
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 130.176.0.1".parse().unwrap(),
        );
        assert_eq!(client_ip(&h, peer, 2), ip("203.0.113.7"));
        assert_eq!(client_ip(&h, peer, 0), peer);
        h.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(&h, peer, 1), peer);
    }
}
