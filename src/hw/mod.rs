//! The machine: its fingerprint, the load other processes put on it, its measured memory
//! bandwidth and the published peak of its chip.

pub mod chips;
pub mod load;
pub mod machine;
pub mod peak;

pub mod stream;
