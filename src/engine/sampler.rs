//! A llama.cpp sampler chain (top-k, top-p, temperature, seeded draw) owned by runner.
//!
//! Greedy decoding on the host does not come here: it takes the argmax of the logits
//! ([`super::context::Context::greedy_at`]). This chain is for temperature > 0, in llama.cpp's
//! usual order: top-k, top-p, temperature, then a draw from a generator seeded with the
//! scenario's seed. [`Sampler::greedy`] is the one-sampler chain that a context attaches to
//! its graph to choose greedily on the device that holds the output layer.

use super::context::Context;
use crate::scenario::Sampling;
use llama_cpp_sys_2 as sys;
use std::ptr::NonNull;
use thiserror::Error;

/// The seed value that llama.cpp's `dist` sampler takes to mean "random" (`LLAMA_DEFAULT_SEED`).
pub const RANDOM_SEED: u32 = u32::MAX;

#[derive(Debug, Error, PartialEq)]
pub enum SamplerError {
    #[error("temperature {0} is not a positive finite number")]
    Temperature(f32),
    #[error("top_p {0} is not in (0, 1]")]
    TopP(f32),
    #[error("seed {RANDOM_SEED} means a random seed to llama.cpp; choose another seed")]
    RandomSeed,
    #[error("llama.cpp could not create a sampler")]
    Create,
}

/// An owned llama.cpp sampler chain; `Drop` frees it and the samplers it holds.
#[derive(Debug)]
pub struct Sampler {
    chain: NonNull<sys::llama_sampler>,
}

impl Sampler {
    /// Builds the chain for `s` (which samples: temperature > 0).
    pub fn new(s: &Sampling) -> Result<Sampler, SamplerError> {
        if !(s.temperature.is_finite() && s.temperature > 0.0) {
            return Err(SamplerError::Temperature(s.temperature));
        }
        if let Some(p) = s
            .top_p
            .filter(|p| !(p.is_finite() && *p > 0.0 && *p <= 1.0))
        {
            return Err(SamplerError::TopP(p));
        }
        if s.seed == RANDOM_SEED {
            return Err(SamplerError::RandomSeed);
        }
        let mut sampler = Sampler::empty()?;
        if let Some(k) = s.top_k {
            // SAFETY: creates a standalone sampler; `add` hands it to the chain.
            sampler.add(unsafe {
                sys::llama_sampler_init_top_k(i32::try_from(k).unwrap_or(i32::MAX))
            })?;
        }
        if let Some(p) = s.top_p {
            // SAFETY: as above.
            sampler.add(unsafe { sys::llama_sampler_init_top_p(p, 1) })?;
        }
        // SAFETY: as above.
        sampler.add(unsafe { sys::llama_sampler_init_temp(s.temperature) })?;
        // SAFETY: as above.
        sampler.add(unsafe { sys::llama_sampler_init_dist(s.seed) })?;
        Ok(sampler)
    }

    /// A chain of llama.cpp's greedy sampler alone.
    pub(crate) fn greedy() -> Result<Sampler, SamplerError> {
        let mut sampler = Sampler::empty()?;
        // SAFETY: creates a standalone sampler; `add` hands it to the chain.
        sampler.add(unsafe { sys::llama_sampler_init_greedy() })?;
        Ok(sampler)
    }

    fn empty() -> Result<Sampler, SamplerError> {
        // SAFETY: returns a plain struct of defaults.
        let mut params = unsafe { sys::llama_sampler_chain_default_params() };
        params.no_perf = true;
        // SAFETY: creates a new, empty chain that `Sampler` owns from here on.
        let chain = unsafe { sys::llama_sampler_chain_init(params) };
        Ok(Sampler {
            chain: NonNull::new(chain).ok_or(SamplerError::Create)?,
        })
    }

    pub(crate) fn raw(&self) -> *mut sys::llama_sampler {
        self.chain.as_ptr()
    }

    /// Appends a freshly created sampler to the chain, which takes ownership of it.
    fn add(&mut self, smpl: *mut sys::llama_sampler) -> Result<(), SamplerError> {
        if smpl.is_null() {
            return Err(SamplerError::Create);
        }
        // SAFETY: the chain is live and `smpl` is a new sampler owned by no one else; the
        // chain frees it with itself.
        unsafe { sys::llama_sampler_chain_add(self.chain.as_ptr(), smpl) };
        Ok(())
    }

    /// Draws the next token from the logits of entry `i` of the last batch (-1: the last
    /// row), recording it in the chain's state, or `None` when that entry made none.
    pub(crate) fn sample_at(&mut self, ctx: &mut Context, i: i32) -> Option<i32> {
        // llama.cpp aborts the process when there are no logits: make sure there are.
        ctx.logits_row(i)?;
        // SAFETY: the chain and the context are live, and entry `i` has logits (checked).
        let token = unsafe { sys::llama_sampler_sample(self.chain.as_ptr(), ctx.raw(), i) };
        (token >= 0).then_some(token)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: the chain was created in `empty` and is freed exactly once, with the samplers
        // it owns.
        unsafe { sys::llama_sampler_free(self.chain.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f32) -> Sampling {
        Sampling {
            temperature,
            seed: 7,
            top_p: Some(0.9),
            top_k: Some(40),
        }
    }

    #[test]
    fn chains_build_and_bad_settings_are_refused() {
        Sampler::new(&sampling(0.8)).expect("a valid chain");
        assert_eq!(
            Sampler::new(&sampling(0.0)).unwrap_err(),
            SamplerError::Temperature(0.0)
        );
        assert!(matches!(
            Sampler::new(&sampling(f32::NAN)),
            Err(SamplerError::Temperature(_))
        ));
        let bad_p = Sampling {
            top_p: Some(1.5),
            ..sampling(0.8)
        };
        assert_eq!(Sampler::new(&bad_p).unwrap_err(), SamplerError::TopP(1.5));
        let random = Sampling {
            seed: RANDOM_SEED,
            ..sampling(0.8)
        };
        assert_eq!(Sampler::new(&random).unwrap_err(), SamplerError::RandomSeed);
    }
}
