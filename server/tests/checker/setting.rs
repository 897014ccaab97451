//! A whole-number knob of a randomized or scaled test, read from the environment (the
//! checker's `CHECKER_*`, the live-connections test's `LIVE_*`): its default when unset, a
//! clear panic when it is not a number.

pub fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}
