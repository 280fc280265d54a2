//! Per-key rate limits (SPEC §8): GCRA with a burst of one second's worth of requests.
//! Embedded mode keeps the state in this process (governor); with `--redis` the state lives in
//! Redis and is updated by one atomic Lua script using Redis's own clock, so any number of
//! instances enforce one combined limit. If Redis cannot be reached the request is let through
//! and a warning logged: a broken limiter must not take the API down. This module owns the
//! limiter state and the [`Decision`] each check returns; the HTTP headers are the edge's.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter as Governor};

type KeyLimiter = Governor<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    StateInformationMiddleware,
>;

/// Each key's limiter, with the rate it was built for (a plan change rebuilds it).
type KeyLimiters = Mutex<HashMap<String, (u32, Arc<KeyLimiter>)>>;

/// The outcome of one check, with what the `RateLimit-*` headers need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// How long until a refused request would be allowed.
    pub retry_after: Duration,
    /// How long until the full burst is available again.
    pub reset: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RateLimitError(#[from] redis::RedisError);

#[derive(Clone)]
pub enum RateLimiter {
    Memory(Arc<KeyLimiters>),
    Redis(redis::aio::ConnectionManager),
}

/// GCRA in microseconds on Redis's clock. KEYS[1]: the key's state; ARGV[1]: emission interval
/// (µs per request); ARGV[2]: burst. Returns {allowed, remaining, retry_after_us, reset_us}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
";

impl RateLimiter {
    pub fn memory() -> Self {
        RateLimiter::Memory(Arc::new(Mutex::new(HashMap::new())))
    }

    pub async fn redis(url: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        let manager = client.get_connection_manager().await?;
        Ok(RateLimiter::Redis(manager))
    }

    /// Counts one request of `key_id` against `per_second` (burst = `per_second`).
    pub async fn check(&self, key_id: &str, per_second: u32) -> Decision {
        let per_second = per_second.max(1);
        match self {
            RateLimiter::Memory(map) => check_memory(map, key_id, per_second),
            RateLimiter::Redis(manager) => {
                match check_redis(manager.clone(), key_id, per_second).await {
                    Ok(decision) => decision,
                    Err(e) => {
                        tracing::warn!("rate limiter unavailable, request let through: {e}");
                        Decision {
                            allowed: true,
                            limit: per_second,
                            remaining: per_second.saturating_sub(1),
                            retry_after: Duration::ZERO,
                            reset: Duration::ZERO,
                        }
                    }
                }
            }
        }
    }
}

fn check_memory(
    map: &Mutex<HashMap<String, (u32, Arc<KeyLimiter>)>>,
    key_id: &str,
    per_second: u32,
) -> Decision {
    let limiter = {
        let mut map = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(key_id.to_string())
            .or_insert_with(|| (per_second, new_limiter(per_second)));
        if entry.0 != per_second {
            *entry = (per_second, new_limiter(per_second));
        }
        entry.1.clone()
    };
    let interval = Duration::from_secs(1) / per_second;
    match limiter.check() {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            Decision {
                allowed: true,
                limit: per_second,
                remaining,
                retry_after: Duration::ZERO,
                reset: interval * (per_second - remaining),
            }
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Decision {
                allowed: false,
                limit: per_second,
                remaining: 0,
                retry_after: wait,
                reset: wait + interval * per_second.saturating_sub(1),
            }
        }
    }
}

fn new_limiter(per_second: u32) -> Arc<KeyLimiter> {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    Arc::new(
        Governor::direct(Quota::per_second(rate)).with_middleware::<StateInformationMiddleware>(),
    )
}

async fn check_redis(
    mut manager: redis::aio::ConnectionManager,
    key_id: &str,
    per_second: u32,
) -> redis::RedisResult<Decision> {
    let interval_us = 1_000_000 / u64::from(per_second);
    let reply: Vec<i64> = redis::Script::new(GCRA_LUA)
        .key(format!("pixpress:rate:{key_id}"))
        .arg(interval_us)
        .arg(per_second)
        .invoke_async(&mut manager)
        .await?;
    let at = |i: usize| reply.get(i).copied().unwrap_or(0).max(0) as u64;
    Ok(Decision {
        allowed: at(0) == 1,
        limit: per_second,
        remaining: u32::try_from(at(1)).unwrap_or(u32::MAX).min(per_second),
        retry_after: Duration::from_micros(at(2)),
        reset: Duration::from_micros(at(3)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn embedded_gcra_allows_one_seconds_burst_then_refuses() {
        let limiter = RateLimiter::memory();
        let mut allowed = 0;
        for _ in 0..8 {
            if limiter.check("k", 5).await.allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5);
        let refused = limiter.check("k", 5).await;
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > Duration::ZERO
                && refused.retry_after <= Duration::from_millis(200)
        );
        // Other keys are independent.
        assert!(limiter.check("other", 1).await.allowed);
        assert!(!limiter.check("other", 1).await.allowed);
    }
}
