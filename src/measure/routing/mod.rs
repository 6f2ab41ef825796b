//! Pure computations of `runner profile`: op categories of graph nodes, time and bytes per
//! category, expert-selection statistics and the routing-overhead figure. The callback that
//! feeds them lives in `crate::llama::profile`.

pub mod category;
pub mod experts;
pub mod overhead;
pub mod summary;
pub mod timing;

pub use category::{categorize, Category};
pub use experts::{ExpertStats, SelectionTrace};
pub use overhead::{Overhead, TokenCost};
pub use summary::{RoutingPhase, RoutingSummary};
pub use timing::{Breakdown, GraphTotals, NodeCost, NodeRow, NodeTable};
