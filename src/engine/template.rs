//! A chat prompt as the model expects it: the messages rendered with the model's own chat
//! template; for a model without one (a base model), llama.cpp's built-in template of its
//! architecture, or ChatML (as llama-server falls back) when the architecture has none.

use super::model::Model;
use crate::scenario::Prompt;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate};
use llama_cpp_2::ChatTemplateError;
use thiserror::Error;

/// Template label: the chat template stored in the GGUF file.
pub const TEMPLATE_MODEL: &str = "model";
/// Template label: ChatML, for a model without a chat template whose architecture has no
/// built-in one in llama.cpp.
pub const TEMPLATE_CHATML_FALLBACK: &str = "chatml (the model has no chat template)";
/// Template label: the prompt text as is.
pub const TEMPLATE_RAW: &str = "raw";

#[derive(Debug, Error)]
pub enum TemplateError {
    #[error("the model's chat template cannot be read: {0}")]
    Read(String),
    #[error("llama.cpp could not apply the {label} chat template ({reason}); it only knows its built-in chat formats")]
    Apply { label: String, reason: String },
    #[error("a chat message contains a NUL byte")]
    NulInMessage,
}

/// A rendered prompt and how it was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// [`TEMPLATE_MODEL`], [`TEMPLATE_RAW`], [`TEMPLATE_CHATML_FALLBACK`] or a built-in
    /// template's label (`gemma (llama.cpp's built-in template for gemma3; ...)`).
    pub template: String,
    /// The model has no chat template of its own: a base model, whose answers to chat
    /// prompts measure little.
    pub base_model: bool,
}

/// llama.cpp's built-in chat template for models of an architecture, where the architecture
/// implies one (for `llama`, whose fine-tunes use several formats, there is none).
pub fn builtin_for(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "gemma" | "gemma2" | "gemma3" | "gemma3n" => "gemma",
        "qwen2" | "qwen2moe" | "qwen3" | "qwen3moe" | "qwen35" | "qwen35moe" => "chatml",
        "phi3" => "phi3",
        "llama4" => "llama4",
        "command-r" | "cohere2" => "command-r",
        "deepseek2" => "deepseek2",
        "chatglm" => "chatglm4",
        "exaone" => "exaone3",
        "exaone4" => "exaone4",
        "granite" => "granite",
        "gpt-oss" => "gpt-oss",
        _ => return None,
    })
}

/// Builds the prompt text: `prompt.raw_prompt` as is; with `force_raw`, the messages'
/// contents joined with newlines (roles dropped); otherwise the messages through the model's
/// chat template with the assistant's turn opened.
pub fn render(model: &Model, prompt: &Prompt, force_raw: bool) -> Result<Rendered, TemplateError> {
    let own = model.llama.chat_template(None);
    let base_model = matches!(own, Err(ChatTemplateError::MissingTemplate));
    let raw = |text: String| Rendered {
        text,
        template: TEMPLATE_RAW.to_string(),
        base_model,
    };
    if let Some(text) = &prompt.raw_prompt {
        return Ok(raw(text.clone()));
    }
    if force_raw {
        let contents: Vec<&str> = prompt.messages.iter().map(|m| m.content.as_str()).collect();
        return Ok(raw(contents.join("\n")));
    }
    let (template, label) = match own {
        Ok(t) => (t, TEMPLATE_MODEL.to_string()),
        Err(ChatTemplateError::MissingTemplate) => fallback(&model.info.architecture)?,
        Err(e) => return Err(TemplateError::Read(e.to_string())),
    };
    let messages = prompt
        .messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TemplateError::NulInMessage)?;
    let text = model
        .llama
        .apply_chat_template(&template, &messages, true)
        .map_err(|e| TemplateError::Apply {
            label: label.clone(),
            reason: e.to_string(),
        })?;
    Ok(Rendered {
        text,
        template: label,
        base_model,
    })
}

/// The template of a model without one, and its label.
fn fallback(arch: &str) -> Result<(LlamaChatTemplate, String), TemplateError> {
    let (name, label) = match builtin_for(arch) {
        Some(name) => (
            name,
            format!(
                "{name} (llama.cpp's built-in template for {arch}; the model has no chat template)"
            ),
        ),
        None => ("chatml", TEMPLATE_CHATML_FALLBACK.to_string()),
    };
    let t = LlamaChatTemplate::new(name).map_err(|e| TemplateError::Read(e.to_string()))?;
    Ok((t, label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use llama_cpp_sys_2 as sys;

    /// The names of llama.cpp's built-in chat templates.
    fn builtin_templates() -> Vec<String> {
        // SAFETY: with a null output and length 0 llama.cpp only counts the templates.
        let n = unsafe { sys::llama_chat_builtin_templates(std::ptr::null_mut(), 0) };
        let mut names: Vec<*const std::ffi::c_char> =
            vec![std::ptr::null(); usize::try_from(n).unwrap_or(0)];
        // SAFETY: `names` has room for `names.len()` pointers, which llama.cpp fills with static
        // NUL-terminated strings.
        unsafe { sys::llama_chat_builtin_templates(names.as_mut_ptr(), names.len()) };
        names
            .into_iter()
            .filter(|p| !p.is_null())
            // SAFETY: non-null pointers to static NUL-terminated strings (above).
            .map(|p| {
                unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn architectures_map_to_built_in_templates_llama_cpp_knows() {
        assert_eq!(builtin_for("gemma3"), Some("gemma"));
        assert_eq!(builtin_for("qwen2"), Some("chatml"));
        assert_eq!(
            builtin_for("llama"),
            None,
            "llama fine-tunes use several formats"
        );
        assert_eq!(builtin_for("unknown-arch"), None);
        // Every name is one of llama.cpp's built-in templates.
        let known = builtin_templates();
        for arch in [
            "gemma",
            "qwen3moe",
            "phi3",
            "llama4",
            "command-r",
            "deepseek2",
            "chatglm",
            "exaone",
            "exaone4",
            "granite",
            "gpt-oss",
        ] {
            let name = builtin_for(arch).unwrap();
            assert!(known.iter().any(|k| k == name), "{name} is not built in");
        }
    }
}
