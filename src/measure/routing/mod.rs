//! Pure computations of `runner profile`: time and bytes per op category, expert-selection
//! statistics and the routing-overhead figure, from what the engine's evaluation callback
//! collected (`crate::engine::profile`).

pub mod experts;
pub mod overhead;
pub mod summary;
pub mod timing;

pub use experts::ExpertStats;
pub use summary::{RoutingPhase, RoutingSummary};
pub use timing::Breakdown;
