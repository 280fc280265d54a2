//! Per-key rate limits (SPEC §8): GCRA with a burst of one second's worth of requests.
//! Embedded mode keeps the state in this process (governor); with `--redis` the state lives in
//! Redis and is updated by one atomic Lua script using Redis's own clock, so any number of
//! instances enforce one combined limit. If Redis cannot be reached (or does not answer within
//! [`REDIS_TIMEOUT`]) the [`RedisDown`] policy decides: fail-open lets the request through, or
//! fail-closed refuses it ([`RateLimitError::Unavailable`]). Either way the error is counted
//! (`pixpress_ratelimit_backend_errors_total`) and logged at most once per
//! [`WARN_INTERVAL`], not once per request. This module owns the limiter state and the
//! [`Decision`] each check returns; the HTTP headers are the edge's.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
type KeyLimiters = Mutex<HashMap<String, KeyState>>;

pub struct KeyState {
    per_second: u32,
    limiter: Arc<KeyLimiter>,
    /// When the full burst is back, as of the last check: what [`RateLimiter::peek`] reports.
    full_at: Instant,
}

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

impl Decision {
    /// A queued job's: its request was counted when it was submitted, so nothing is decided.
    pub fn counted_at_submission(per_second: u32) -> Self {
        Decision {
            allowed: true,
            limit: per_second,
            remaining: per_second,
            retry_after: Duration::ZERO,
            reset: Duration::ZERO,
        }
    }

    /// A refusal for when the limiter cannot decide: retry in a second.
    pub fn unavailable(per_second: u32) -> Self {
        Decision {
            allowed: false,
            limit: per_second,
            remaining: 0,
            retry_after: Duration::from_secs(1),
            reset: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// Redis is down and the policy is fail-closed; `decision` is a refusal for the headers.
    #[error("the rate limiter's backend cannot be reached: {reason}")]
    Unavailable { reason: String, decision: Decision },
}

/// What a request gets while Redis cannot be reached (`serve --redis-down`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedisDown {
    /// Let it through: a broken limiter must not take the API down.
    #[default]
    FailOpen,
    /// Refuse it (503 `rate_limiter_unavailable`): no request goes unlimited.
    FailClosed,
}

impl std::str::FromStr for RedisDown {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail-open" => Ok(RedisDown::FailOpen),
            "fail-closed" => Ok(RedisDown::FailClosed),
            other => Err(format!("{other:?}: use fail-open or fail-closed")),
        }
    }
}

impl RedisDown {
    pub fn label(self) -> &'static str {
        match self {
            RedisDown::FailOpen => "fail_open",
            RedisDown::FailClosed => "fail_closed",
        }
    }
}

/// How long one check may wait for Redis before it counts as down.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// At most one "Redis is down" warning per this interval, with the count in between.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub enum RateLimiter {
    Memory(Arc<KeyLimiters>),
    Redis {
        manager: redis::aio::ConnectionManager,
        when_down: RedisDown,
        warnings: Arc<WarnThrottle>,
    },
}

/// Rate-limits a warning: the first error of each interval is logged with how many followed
/// the last one logged.
#[derive(Debug, Default)]
pub struct WarnThrottle {
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl WarnThrottle {
    /// Whether to log now, and how many were suppressed since the last log.
    fn should_log(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= WARN_INTERVAL.as_millis() as u64;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
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

/// The same state read without counting a request. Returns {remaining, reset_us}.
const PEEK_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local remaining = burst - math.ceil((tat - now) / interval)
if remaining < 0 then remaining = 0 end
return {remaining, tat - now}
";

impl RateLimiter {
    pub fn memory() -> Self {
        RateLimiter::Memory(Arc::new(Mutex::new(HashMap::new())))
    }

    /// Connects to Redis at start-up (it must answer then); later outages follow `when_down`.
    pub async fn redis(url: &str, when_down: RedisDown) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        // Fail fast while Redis is down: one reconnection attempt, bounded waits.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT);
        let manager = client.get_connection_manager_with_config(config).await?;
        Ok(RateLimiter::Redis {
            manager,
            when_down,
            warnings: Arc::default(),
        })
    }

    /// Counts one request of `key_id` against `per_second` (burst = `per_second`). Errs only
    /// when Redis is down and the policy is fail-closed.
    pub async fn check(&self, key_id: &str, per_second: u32) -> Result<Decision, RateLimitError> {
        let per_second = per_second.max(1);
        let (manager, when_down, warnings) = match self {
            RateLimiter::Memory(map) => return Ok(check_memory(map, key_id, per_second)),
            RateLimiter::Redis {
                manager,
                when_down,
                warnings,
            } => (manager, *when_down, warnings),
        };
        let checked = tokio::time::timeout(
            REDIS_TIMEOUT,
            check_redis(manager.clone(), key_id, per_second),
        )
        .await;
        let reason = match checked {
            Ok(Ok(decision)) => return Ok(decision),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {REDIS_TIMEOUT:?}"),
        };
        crate::metrics::record_ratelimit_backend_error(when_down.label());
        if let Some(suppressed) = warnings.should_log(crate::db::now_unix_ms().max(0) as u64) {
            tracing::warn!(
                policy = when_down.label(),
                errors_since_last_warning = suppressed,
                "rate limiter's Redis unavailable: {reason}"
            );
        }
        match when_down {
            RedisDown::FailOpen => Ok(Decision {
                allowed: true,
                limit: per_second,
                remaining: per_second.saturating_sub(1),
                retry_after: Duration::ZERO,
                reset: Duration::ZERO,
            }),
            RedisDown::FailClosed => Err(RateLimitError::Unavailable {
                reason,
                decision: Decision::unavailable(per_second),
            }),
        }
    }
}

impl RateLimiter {
    /// The state of `key_id`'s limit without counting a request, for the headers of answers
    /// that the limit does not refuse (`GET /v1/usage`, a mistake found before admission).
    /// None when Redis cannot be reached.
    pub async fn peek(&self, key_id: &str, per_second: u32) -> Option<Decision> {
        let per_second = per_second.max(1);
        match self {
            RateLimiter::Memory(map) => Some(peek_memory(map, key_id, per_second)),
            RateLimiter::Redis { manager, .. } => {
                let peeked = peek_redis(manager.clone(), key_id, per_second);
                tokio::time::timeout(REDIS_TIMEOUT, peeked).await.ok()?.ok()
            }
        }
    }
}

fn check_memory(map: &KeyLimiters, key_id: &str, per_second: u32) -> Decision {
    let limiter = {
        let mut map = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(key_id.to_string())
            .or_insert_with(|| KeyState::new(per_second));
        if entry.per_second != per_second {
            *entry = KeyState::new(per_second);
        }
        entry.limiter.clone()
    };
    let decision = decide_memory(&limiter, per_second);
    let full_at = Instant::now() + decision.reset;
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(entry) = map.get_mut(key_id).filter(|e| e.per_second == per_second) {
        entry.full_at = entry.full_at.max(full_at);
    }
    decision
}

/// The state of `key_id`'s limit without counting a request.
fn peek_memory(map: &KeyLimiters, key_id: &str, per_second: u32) -> Decision {
    let now = Instant::now();
    let full_at = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key_id)
        .filter(|e| e.per_second == per_second)
        .map_or(now, |e| e.full_at);
    let reset = full_at.saturating_duration_since(now);
    let interval = Duration::from_secs(1) / per_second;
    let used = reset.as_nanos().div_ceil(interval.as_nanos().max(1));
    Decision {
        allowed: true,
        limit: per_second,
        remaining: per_second.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)),
        retry_after: Duration::ZERO,
        reset,
    }
}

impl KeyState {
    fn new(per_second: u32) -> Self {
        KeyState {
            per_second,
            limiter: new_limiter(per_second),
            full_at: Instant::now(),
        }
    }
}

fn decide_memory(limiter: &KeyLimiter, per_second: u32) -> Decision {
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
    manager: redis::aio::ConnectionManager,
    key_id: &str,
    per_second: u32,
) -> redis::RedisResult<Decision> {
    let reply = run_gcra_script(GCRA_LUA, manager, key_id, per_second).await?;
    Ok(Decision {
        allowed: reply(0) == 1,
        limit: per_second,
        remaining: u32::try_from(reply(1)).unwrap_or(u32::MAX).min(per_second),
        retry_after: Duration::from_micros(reply(2)),
        reset: Duration::from_micros(reply(3)),
    })
}

async fn peek_redis(
    manager: redis::aio::ConnectionManager,
    key_id: &str,
    per_second: u32,
) -> redis::RedisResult<Decision> {
    let reply = run_gcra_script(PEEK_LUA, manager, key_id, per_second).await?;
    Ok(Decision {
        allowed: true,
        limit: per_second,
        remaining: u32::try_from(reply(0)).unwrap_or(u32::MAX).min(per_second),
        retry_after: Duration::ZERO,
        reset: Duration::from_micros(reply(1)),
    })
}

/// Runs one of the GCRA scripts on the key's state; the reply's fields by index (missing or
/// negative ones as 0).
async fn run_gcra_script(
    script: &str,
    mut manager: redis::aio::ConnectionManager,
    key_id: &str,
    per_second: u32,
) -> redis::RedisResult<impl Fn(usize) -> u64> {
    let interval_us = 1_000_000 / u64::from(per_second);
    let reply: Vec<i64> = redis::Script::new(script)
        .key(format!("pixpress:rate:{key_id}"))
        .arg(interval_us)
        .arg(per_second)
        .invoke_async(&mut manager)
        .await?;
    Ok(move |i: usize| reply.get(i).copied().unwrap_or(0).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn embedded_gcra_allows_one_seconds_burst_then_refuses() {
        let limiter = RateLimiter::memory();
        let mut allowed = 0;
        for _ in 0..8 {
            if limiter.check("k", 5).await.unwrap().allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5);
        let refused = limiter.check("k", 5).await.unwrap();
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > Duration::ZERO
                && refused.retry_after <= Duration::from_millis(200)
        );
        // Other keys are independent.
        assert!(limiter.check("other", 1).await.unwrap().allowed);
        assert!(!limiter.check("other", 1).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn a_peek_reports_the_state_without_counting() {
        let limiter = RateLimiter::memory();
        let fresh = limiter.peek("k", 2).await.unwrap();
        assert_eq!((fresh.remaining, fresh.reset), (2, Duration::ZERO));
        limiter.check("k", 2).await.unwrap();
        for _ in 0..3 {
            let peeked = limiter.peek("k", 2).await.unwrap();
            assert_eq!((peeked.limit, peeked.remaining), (2, 1), "{peeked:?}");
            assert!(peeked.reset > Duration::ZERO && peeked.reset <= Duration::from_millis(500));
        }
        // Peeking took nothing: the second request of the burst still passes.
        assert!(limiter.check("k", 2).await.unwrap().allowed);
        assert_eq!(limiter.peek("k", 2).await.unwrap().remaining, 0);
    }

    #[test]
    fn the_outage_warning_is_logged_once_per_interval() {
        let throttle = WarnThrottle::default();
        assert_eq!(throttle.should_log(1_000), Some(0));
        assert_eq!(throttle.should_log(1_500), None);
        assert_eq!(throttle.should_log(2_000), None);
        let later = 1_000 + WARN_INTERVAL.as_millis() as u64;
        assert_eq!(throttle.should_log(later), Some(2));
        assert_eq!(throttle.should_log(later + 1), None);
    }

    #[test]
    fn the_policy_parses_from_its_flag_values() {
        assert_eq!("fail-open".parse(), Ok(RedisDown::FailOpen));
        assert_eq!("fail-closed".parse(), Ok(RedisDown::FailClosed));
        assert!("closed".parse::<RedisDown>().is_err());
    }
}
