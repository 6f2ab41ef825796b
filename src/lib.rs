//! runner: a benchmark harness for local LLM inference (llama.cpp in-process, real latency
//! histograms). The modules are layered: each uses only those below it (docs/architecture.md).
#![deny(unsafe_code)]

pub mod app;
pub mod backend;
pub mod cli;
pub mod engine;
pub mod exec;
pub mod gguf;
pub mod grade;
pub mod hw;
pub mod measure;
pub mod models;
pub mod moe;
pub mod plan;
pub mod record;
pub mod report;
pub mod scenario;
pub mod util;
