//! What the parent sweep hands a cell's child process: everything it needs, as JSON.

use crate::llama::context::FlashAttn;
use crate::record::CellKey;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One (model, quantization) cell of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSpec {
    pub cell: CellKey,
    /// The source model file.
    pub source: PathBuf,
    /// Its sha256 when already known (a verified known model).
    pub source_sha256: Option<String>,
    /// The quantization to make, or `None` to run the source as given.
    pub quant: Option<String>,
    pub scenarios: Vec<PathBuf>,
    pub limit: Option<u32>,
    /// `(scenario, prompt id)` pairs already recorded: not run again.
    pub done: Vec<(String, String)>,
    /// The results file the child appends its records to.
    pub results: PathBuf,
    pub cache_dir: PathBuf,
    pub engine: EngineSpec,
    pub no_text: bool,
    pub raw: bool,
    pub verbose: bool,
    /// Other load, in busy cores, above which a request is marked as measured on a busy machine.
    pub busy_threshold: f64,
}

/// Engine settings of a cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSpec {
    pub threads: u32,
    /// Context size; `None` sizes it to the longest prompt plus its output limit.
    pub n_ctx: Option<u32>,
    pub flash_attn: String,
    pub n_gpu_layers: u32,
}

impl EngineSpec {
    pub fn flash_attn(&self) -> FlashAttn {
        match self.flash_attn.as_str() {
            "on" => FlashAttn::On,
            "off" => FlashAttn::Off,
            _ => FlashAttn::Auto,
        }
    }
}

/// What the child prints on stdout, one JSON object per line, for the parent's progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// The model file is ready (quantized or taken from the cache) and loaded.
    Loaded {
        quantize_ms: Option<f64>,
        load_ms: f64,
    },
    /// One request finished and was recorded.
    Request {
        scenario: String,
        prompt: String,
        pass: bool,
    },
}
