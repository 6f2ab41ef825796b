//! runner: a benchmark harness for local LLM inference (llama.cpp in-process, real latency histograms).

pub mod app;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod gguf;
pub mod hw;
pub mod llama;
pub mod measure;
pub mod models;
pub mod moe;
pub mod plan;
pub mod profile;
pub mod quant;
pub mod record;
pub mod report;
pub mod scenario;
pub mod sweep;
