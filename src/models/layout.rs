//! The tensors and GGUF keys of a catalogue architecture at a given depth, as llama.cpp's loader
//! expects them (`create_tensor` calls in `src/models/<arch>.cpp` of the pinned llama.cpp).

use super::catalogue::{Arch, CatalogueError, Family, Init, TensorSpec};
use crate::gguf::{ArrayValue, GgmlType, MetaValue, ValueType};

/// Collects tensor specs with the source type a converter would give them: 1-D tensors, biases
/// and routers in F32, matrices in F16.
struct Tensors(Vec<TensorSpec>);

impl Tensors {
    fn add(&mut self, name: String, dims: &[u64], init: Init) {
        let source_type = match init {
            Init::Matrix | Init::Embedding if dims.len() >= 2 => GgmlType::F16,
            _ => GgmlType::F32,
        };
        self.0.push(TensorSpec {
            name,
            dims: dims.to_vec(),
            init,
            source_type,
        });
    }
}

impl Arch {
    /// Checks that the entry's shapes are consistent before anything is built from it.
    pub fn check(&self) -> Result<(), CatalogueError> {
        let bad = |reason: String| {
            Err(CatalogueError::Shape {
                name: self.name.to_string(),
                reason,
            })
        };
        let moe = !matches!(self.family, Family::Llama | Family::Qwen2) || self.experts > 0;
        let dense = matches!(
            self.family,
            Family::Qwen35 | Family::Gemma3 | Family::Qwen2 | Family::Qwen3
        );
        if self.layers == 0 || self.embd == 0 || self.vocab == 0 || self.head_dim == 0 {
            return bad("layers, hidden size, vocabulary and head size must be positive".into());
        }
        if self.heads == 0 || self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return bad(format!(
                "{} query heads cannot share {} key/value heads",
                self.heads, self.kv_heads
            ));
        }
        if dense && self.ff == 0 {
            return bad("a dense FFN size is required".into());
        }
        if moe && !dense && (self.experts == 0 || self.used == 0 || self.used > self.experts) {
            return bad(format!(
                "{} of {} experts per token is not a Mixture of Experts",
                self.used, self.experts
            ));
        }
        if self.rope_dims > self.head_dim || !self.rope_dims.is_multiple_of(2) {
            return bad(format!(
                "{} rotary dims do not fit a {}-wide head",
                self.rope_dims, self.head_dim
            ));
        }
        if matches!(self.family, Family::Qwen35 | Family::Qwen35Moe) && self.ssm.is_none() {
            return bad("Qwen3.5/3.6 layers need their linear-attention (ssm) sizes".into());
        }
        if let Some(s) = self.ssm {
            if s.state * s.dt_rank != s.inner || s.interval == 0 || s.groups == 0 {
                return bad(format!(
                    "linear attention: {} value heads × {} ≠ inner size {}",
                    s.dt_rank, s.state, s.inner
                ));
            }
        }
        if let Some(w) = self.swa {
            if w.window == 0 || w.period == 0 {
                return bad("a sliding window and its period must be positive".into());
            }
        }
        Ok(())
    }

    /// Checks a `--layers` value: 1 to the full depth.
    pub fn check_layers(&self, layers: u32) -> Result<(), CatalogueError> {
        if layers == 0 || layers > self.layers {
            return Err(CatalogueError::Layers {
                name: self.name.to_string(),
                asked: layers.into(),
                layers: self.layers,
            });
        }
        // A hybrid model cut inside its pattern may have no attention layer at all (llama.cpp
        // then aborts on the empty KV cache): keep whole repeats of it.
        if let Some(s) = self.ssm.filter(|s| !layers.is_multiple_of(s.interval)) {
            return Err(CatalogueError::Pattern {
                name: self.name.to_string(),
                asked: layers,
                period: s.interval,
                layers: self.layers,
            });
        }
        Ok(())
    }

    /// Layers in one repeat of the attention pattern (linear/full, local/global): a
    /// layer-scaled fit measures at multiples of it.
    pub fn period(&self) -> u32 {
        match (self.ssm, self.swa) {
            (Some(s), _) => s.interval,
            (None, Some(w)) => w.period,
            _ => 1,
        }
    }

    /// Whether layer `il` has full (softmax) attention rather than linear attention.
    fn full_attention(&self, il: u32) -> bool {
        self.ssm.is_none_or(|s| (il + 1).is_multiple_of(s.interval))
    }

    /// The model's tensors with `layers` layers, in the order a converter writes them.
    pub fn tensors(&self, layers: u32) -> Vec<TensorSpec> {
        let mut t = Tensors(Vec::new());
        let (e, v) = (self.embd, self.vocab);
        t.add("token_embd.weight".into(), &[e, v], Init::Embedding);
        if self.rope_freqs {
            let half = self.rotary_dims() / 2;
            t.add("rope_freqs.weight".into(), &[half], Init::One);
        }
        for il in 0..layers {
            self.layer(&mut t, il);
        }
        t.add("output_norm.weight".into(), &[e], Init::Norm);
        if !self.tied {
            t.add("output.weight".into(), &[e, v], Init::Matrix);
        }
        t.0
    }

    fn layer(&self, t: &mut Tensors, il: u32) {
        let n = |s: &str| format!("blk.{il}.{s}");
        let e = self.embd;
        let (q, kv) = (
            self.heads as u64 * self.head_dim,
            self.kv_heads as u64 * self.head_dim,
        );
        t.add(n("attn_norm.weight"), &[e], Init::Norm);
        let post_attention_norm = matches!(
            self.family,
            Family::Qwen35 | Family::Qwen35Moe | Family::Gemma3 | Family::GptOss
        );
        if post_attention_norm {
            t.add(n("post_attention_norm.weight"), &[e], Init::Norm);
        }
        if self.full_attention(il) {
            let gated = matches!(self.family, Family::Qwen35 | Family::Qwen35Moe);
            t.add(
                n("attn_q.weight"),
                &[e, if gated { 2 * q } else { q }],
                Init::Matrix,
            );
            t.add(n("attn_k.weight"), &[e, kv], Init::Matrix);
            t.add(n("attn_v.weight"), &[e, kv], Init::Matrix);
            if matches!(self.family, Family::Qwen2 | Family::GptOss) {
                t.add(n("attn_q.bias"), &[q], Init::Bias);
                t.add(n("attn_k.bias"), &[kv], Init::Bias);
                t.add(n("attn_v.bias"), &[kv], Init::Bias);
            }
            t.add(n("attn_output.weight"), &[q, e], Init::Matrix);
            if self.family == Family::GptOss {
                t.add(n("attn_output.bias"), &[e], Init::Bias);
                t.add(n("attn_sinks.weight"), &[self.heads as u64], Init::Zero);
            }
            if !matches!(self.family, Family::Llama | Family::Qwen2 | Family::GptOss) {
                t.add(n("attn_q_norm.weight"), &[self.head_dim], Init::Norm);
                t.add(n("attn_k_norm.weight"), &[self.head_dim], Init::Norm);
            }
        } else {
            self.linear_attention(t, il);
        }
        self.ffn(t, il);
    }

    /// A Gated DeltaNet layer of Qwen3.5/3.6.
    fn linear_attention(&self, t: &mut Tensors, il: u32) {
        let Some(s) = self.ssm else { return };
        let n = |x: &str| format!("blk.{il}.{x}");
        let e = self.embd;
        let key_dim = s.state * s.groups;
        let conv_dim = 2 * key_dim + s.inner;
        t.add(n("attn_qkv.weight"), &[e, conv_dim], Init::Matrix);
        t.add(n("attn_gate.weight"), &[e, s.inner], Init::Matrix);
        t.add(
            n("ssm_conv1d.weight"),
            &[s.conv_kernel, conv_dim],
            Init::Bias,
        );
        t.add(n("ssm_dt.bias"), &[s.dt_rank], Init::Bias);
        t.add(n("ssm_a"), &[s.dt_rank], Init::Decay);
        t.add(n("ssm_beta.weight"), &[e, s.dt_rank], Init::Matrix);
        t.add(n("ssm_alpha.weight"), &[e, s.dt_rank], Init::Matrix);
        t.add(n("ssm_norm.weight"), &[s.state], Init::Norm);
        t.add(n("ssm_out.weight"), &[s.inner, e], Init::Matrix);
    }

    fn ffn(&self, t: &mut Tensors, il: u32) {
        let n = |x: &str| format!("blk.{il}.{x}");
        let e = self.embd;
        if !matches!(
            self.family,
            Family::Qwen35 | Family::Qwen35Moe | Family::GptOss
        ) {
            t.add(n("ffn_norm.weight"), &[e], Init::Norm);
        }
        if self.experts == 0 {
            let f = self.ff;
            t.add(n("ffn_gate.weight"), &[e, f], Init::Matrix);
            t.add(n("ffn_up.weight"), &[e, f], Init::Matrix);
            t.add(n("ffn_down.weight"), &[f, e], Init::Matrix);
            if self.family == Family::Gemma3 {
                t.add(n("post_ffw_norm.weight"), &[e], Init::Norm);
            }
            return;
        }
        let x = self.experts as u64;
        let f = self.expert_ff();
        t.add(n("ffn_gate_inp.weight"), &[e, x], Init::Router);
        t.add(n("ffn_gate_exps.weight"), &[e, f, x], Init::Matrix);
        t.add(n("ffn_up_exps.weight"), &[e, f, x], Init::Matrix);
        t.add(n("ffn_down_exps.weight"), &[f, e, x], Init::Matrix);
        if self.family == Family::GptOss {
            t.add(n("ffn_gate_inp.bias"), &[x], Init::Bias);
            t.add(n("ffn_gate_exps.bias"), &[f, x], Init::Bias);
            t.add(n("ffn_up_exps.bias"), &[f, x], Init::Bias);
            t.add(n("ffn_down_exps.bias"), &[e, x], Init::Bias);
        }
        if self.ff_shexp > 0 {
            let s = self.ff_shexp;
            t.add(n("ffn_gate_inp_shexp.weight"), &[e], Init::Router);
            t.add(n("ffn_gate_shexp.weight"), &[e, s], Init::Matrix);
            t.add(n("ffn_up_shexp.weight"), &[e, s], Init::Matrix);
            t.add(n("ffn_down_shexp.weight"), &[s, e], Init::Matrix);
        }
    }

    /// A dense model of equal active bytes per token: the same attention, and one FFN as wide
    /// as the experts a token uses (plus the shared one), without a router. The reference
    /// against which routing overhead is measured. `None` where llama.cpp has no dense
    /// counterpart of the architecture (gpt-oss) or the entry is dense.
    pub fn dense_reference(&self) -> Option<Arch> {
        let family = match (self.family, self.experts) {
            (_, 0) => return None,
            (Family::Qwen3Moe, _) => Family::Qwen3,
            (Family::Qwen35Moe, _) => Family::Qwen35,
            (Family::Llama, _) => Family::Llama,
            _ => return None,
        };
        let mut a = self.clone();
        a.family = family;
        a.ff = self.used as u64 * self.expert_ff() + self.ff_shexp;
        (a.experts, a.used, a.ff_exp, a.ff_shexp) = (0, 0, 0, 0);
        Some(a)
    }

    /// Bytes of llama.cpp's KV cache (F16 keys and values) at a context of `ctx` tokens: a full
    /// attention layer holds every token, a sliding-window layer its window, a linear-attention
    /// layer none (its recurrent state is small and not counted).
    pub fn kv_bytes(&self, ctx: u64) -> u64 {
        (0..self.layers)
            .filter(|&il| self.full_attention(il))
            .map(|il| {
                let tokens = match self.swa {
                    Some(w) if !(il + 1).is_multiple_of(w.period) => ctx.min(w.window as u64),
                    _ => ctx,
                };
                2 * self.kv_heads as u64 * self.head_dim * 2 * tokens
            })
            .sum()
    }

    /// Dimensions of a head that are rotated: all of it unless the entry names fewer.
    fn rotary_dims(&self) -> u64 {
        match self.rope_dims {
            0 => self.head_dim,
            d => d,
        }
    }

    /// The FFN size of one routed expert.
    pub fn expert_ff(&self) -> u64 {
        if self.ff_exp > 0 {
            self.ff_exp
        } else {
            self.ff
        }
    }

    /// Parameters with `layers` layers: all, and those one token uses (the unused experts
    /// left out).
    pub fn params(&self, layers: u32) -> (u64, u64) {
        let total: u64 = self.tensors(layers).iter().map(|t| t.elements()).sum();
        let per_expert = 3 * self.embd * self.expert_ff();
        let unused = (self.experts.saturating_sub(self.used)) as u64 * per_expert * layers as u64;
        (total, total - unused)
    }

    /// The GGUF keys llama.cpp reads for this architecture at `layers` layers, the vocabulary
    /// as token ids only (`tokenizer.ggml.model = "none"`).
    pub fn metadata(&self, layers: u32) -> Vec<(String, MetaValue)> {
        let a = self.family.as_str();
        let mut m: Vec<(String, MetaValue)> = Vec::new();
        let mut put = |k: &str, v: MetaValue| {
            let key = if k.starts_with("general.") || k.starts_with("tokenizer.") {
                k.to_string()
            } else {
                format!("{a}.{k}")
            };
            m.push((key, v));
        };
        let u32v = |x: u64| MetaValue::U32(x as u32);
        put("general.architecture", MetaValue::Str(a.into()));
        put(
            "general.name",
            MetaValue::Str(format!("{} (synthetic)", self.display)),
        );
        put("context_length", u32v(self.context));
        put("embedding_length", u32v(self.embd));
        put("block_count", MetaValue::U32(layers));
        if self.ff > 0 {
            put("feed_forward_length", u32v(self.ff));
        }
        put("attention.head_count", MetaValue::U32(self.heads));
        put("attention.head_count_kv", MetaValue::U32(self.kv_heads));
        put("attention.key_length", u32v(self.head_dim));
        put("attention.value_length", u32v(self.head_dim));
        put("rope.dimension_count", u32v(self.rotary_dims()));
        put("rope.freq_base", MetaValue::F32(self.rope_base));
        put(
            "attention.layer_norm_rms_epsilon",
            MetaValue::F32(self.rms_eps),
        );
        if self.experts > 0 {
            put("expert_count", MetaValue::U32(self.experts));
            put("expert_used_count", MetaValue::U32(self.used));
        }
        if self.ff_exp > 0 {
            put("expert_feed_forward_length", u32v(self.ff_exp));
        }
        if self.ff_shexp > 0 {
            put("expert_shared_feed_forward_length", u32v(self.ff_shexp));
        }
        if let Some(w) = self.swa {
            put("attention.sliding_window", MetaValue::U32(w.window));
            if self.family == Family::Gemma3 {
                put("rope.freq_base_swa", MetaValue::F32(10_000.0));
            }
        }
        if let Some(s) = self.ssm {
            let sections = [11i32, 11, 10, 0].map(MetaValue::I32).to_vec();
            put(
                "rope.dimension_sections",
                MetaValue::Array(ArrayValue {
                    elem_type: ValueType::I32,
                    len: sections.len() as u64,
                    head: sections,
                }),
            );
            put("ssm.conv_kernel", u32v(s.conv_kernel));
            put("ssm.inner_size", u32v(s.inner));
            put("ssm.state_size", u32v(s.state));
            put("ssm.time_step_rank", u32v(s.dt_rank));
            put("ssm.group_count", u32v(s.groups));
            put("full_attention_interval", MetaValue::U32(s.interval));
        }
        put("vocab_size", u32v(self.vocab));
        put("tokenizer.ggml.model", MetaValue::Str("none".into()));
        m
    }
}
