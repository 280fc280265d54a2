//! Storage: where bytes go. The hosted-result store (`hosted`: bytes in a directory or an object
//! store; `results`: their rows and expiry), exports to the users' own buckets (`export`, one
//! module per provider), the one OpenDAL operator builder both use (`operator`) and the
//! credentials they carry (`secret`). Nothing here knows about HTTP or the optimise service.

pub mod export;
pub mod hosted;
pub mod operator;
pub mod results;
pub mod secret;
