//! The machine: its fingerprint and the load other processes put on it.

pub mod load;
pub mod machine;
