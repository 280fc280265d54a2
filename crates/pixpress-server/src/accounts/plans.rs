//! Account plans: what a key may do per month and per second (SPEC §8), its [`Allowance`]. This
//! module owns the four plans, their defaults (from the product page) and the config file's
//! overrides. ("Plan" means the account plan only in this crate; resize geometry is the core's.)
//! Each allowance can be changed in the TOML config file:
//!
//! ```toml
//! [plans.free]
//! bytes_per_month = 104857600
//! requests_per_second = 1
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const PLAN_NAMES: [&str; 4] = ["free", "starter", "pro", "business"];

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

/// What one plan allows: bytes per month, requests per second, and whether the quota stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    pub bytes_per_month: u64,
    pub requests_per_second: u32,
    /// Free plans stop at their quota; paid plans go on and record overage.
    #[serde(default)]
    pub hard_quota: bool,
}

#[derive(Clone, Debug)]
pub struct Plans(BTreeMap<String, Allowance>);

impl Default for Plans {
    fn default() -> Self {
        let mut plans = BTreeMap::new();
        let plan = |bytes, rps, hard| Allowance {
            bytes_per_month: bytes,
            requests_per_second: rps,
            hard_quota: hard,
        };
        plans.insert("free".to_string(), plan(100 * MB, 1, true));
        plans.insert("starter".to_string(), plan(GB, 5, false));
        plans.insert("pro".to_string(), plan(20 * GB, 25, false));
        plans.insert("business".to_string(), plan(250 * GB, 100, false));
        Plans(plans)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown plan {0:?} in config; plans are {plans}", plans = PLAN_NAMES.join(", "))]
    Unknown(String),
    #[error("plans.{0}.requests_per_second must be at least 1")]
    ZeroRate(String),
}

/// The partial override a config file may give for one plan.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanOverride {
    pub bytes_per_month: Option<u64>,
    pub requests_per_second: Option<u32>,
}

impl Plans {
    /// Applies overrides from the config file; unknown plan names are an error.
    pub fn with_overrides(
        mut self,
        overrides: &BTreeMap<String, PlanOverride>,
    ) -> Result<Self, PlanError> {
        for (name, o) in overrides {
            let Some(allowance) = self.0.get_mut(name) else {
                return Err(PlanError::Unknown(name.clone()));
            };
            if let Some(bytes) = o.bytes_per_month {
                allowance.bytes_per_month = bytes;
            }
            if let Some(rps) = o.requests_per_second {
                if rps == 0 {
                    return Err(PlanError::ZeroRate(name.clone()));
                }
                allowance.requests_per_second = rps;
            }
        }
        Ok(self)
    }

    /// The allowance of `name`; an unknown name (a plan removed from the config) gets free's.
    pub fn get(&self, name: &str) -> Allowance {
        self.0
            .get(name)
            .or_else(|| self.0.get("free"))
            .copied()
            .unwrap_or(Allowance {
                bytes_per_month: 100 * MB,
                requests_per_second: 1,
                hard_quota: true,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec_and_overrides_apply() {
        let plans = Plans::default();
        assert_eq!(plans.get("free").requests_per_second, 1);
        assert_eq!(plans.get("pro").bytes_per_month, 20 * GB);
        assert!(plans.get("free").hard_quota && !plans.get("business").hard_quota);
        let mut o = BTreeMap::new();
        o.insert(
            "free".to_string(),
            PlanOverride {
                bytes_per_month: Some(1000),
                requests_per_second: Some(3),
            },
        );
        let plans = plans.with_overrides(&o).unwrap();
        assert_eq!(plans.get("free").bytes_per_month, 1000);
        assert_eq!(plans.get("free").requests_per_second, 3);
        o.insert("gold".to_string(), PlanOverride::default());
        assert!(Plans::default().with_overrides(&o).is_err());
    }
}
