//! Rate limits for what a client address can make the task do over HTTP (create guests,
//! read history, open WebSockets): one bucket per client address and (optionally) one for the
//! whole task, so neither one address nor many spoofed ones can burn the user counter, the
//! store or the CPU. The client address
//! is the peer's, or behind trusted proxies (the ALB) the `X-Forwarded-For` entry the
//! outermost trusted proxy appended.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

/// Addresses tracked at most; beyond it new addresses share one bucket (memory stays bounded
/// whatever addresses a flood claims).
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

/// One kind of request, limited per client address and per task.
pub struct Throttle {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_task: Option<DefaultDirectRateLimiter>,
    /// Serialises the bounded-size check with the insert of a new address.
    grow: Mutex<()>,
}

impl Throttle {
    pub fn new(per_address: Rate, per_task: Option<Rate>) -> Self {
        Self {
            per_address: RateLimiter::keyed(per_address.quota()),
            per_task: per_task.map(|r| RateLimiter::direct(r.quota())),
            grow: Mutex::new(()),
        }
    }

    /// Takes one request from `addr`'s bucket and the task's.
    pub fn check(&self, addr: IpAddr) -> Result<(), Refused> {
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

    fn key_for(&self, addr: IpAddr) -> IpAddr {
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
            OVERFLOW
        }
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
