//! Accounts: who may call and how much. API keys (`keys`), the account plans and their
//! allowances (`plans`), per-key rate limits (`ratelimit`) and monthly metering (`usage`). Each
//! module owns its table or state and returns its own typed error; none knows about HTTP.

pub mod keys;
pub mod plans;
pub mod ratelimit;
pub mod usage;
