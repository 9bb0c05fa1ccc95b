//! Exit statuses: a contract scripts depend on.

/// Every probe healthy.
pub(crate) const HEALTHY: u8 = 0;
/// At least one probe unhealthy.
pub(crate) const UNHEALTHY: u8 = 1;
/// Bad usage or configuration (clap uses 2 for its own usage errors too).
pub(crate) const USAGE: u8 = 2;
