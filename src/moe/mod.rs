//! Mixture-of-Experts models made from dense ones ("upcycling"): each layer's FFN copied into N
//! identical experts, a seeded router, the expert metadata and the dense source's provenance,
//! written as a new GGUF file. Such an MoE computes the dense model's function, which makes
//! the dense model its test oracle.

pub mod error;
pub mod provenance;
pub mod router;
pub mod transform;
pub mod upcycle;

pub use error::UpcycleError;
pub use provenance::Provenance;
pub use router::Router;

/// What to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpcycleOptions {
    /// Experts per layer (N).
    pub experts: u32,
    /// Experts used per token (K).
    pub used: u32,
    pub router: Router,
    /// Seed of a random router.
    pub seed: u64,
}
