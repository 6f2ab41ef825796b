//! Grading answers: the deterministic graders of scenario prompts, the judge panel's scoring
//! and what a request cost.

mod check;
pub mod cost;
pub mod execute;
pub mod graders;
pub mod judge;
pub mod sandbox;
mod text;

pub use graders::{grade, outcome, pair_symmetry, passed, score, Outcome};
