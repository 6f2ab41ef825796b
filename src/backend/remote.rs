//! A backend behind HTTP: Ollama, an OpenAI-compatible server or Anthropic's API, run in the
//! calling process (a server's failure cannot take runner down). Preparing a cell checks an
//! Ollama server and loads its model, and renders the cell's prompts with the template model's
//! chat template for Ollama's raw mode; each request is one streamed exchange.

use super::exchange::{Exchange, Failure};
use super::http::Client;
use super::render::{self, Ready};
use super::spec::Endpoint;
use super::{
    anthropic, ollama, openai, Backend, CellError, ChatReply, ChatRequest, Reply, Request, Setup,
};
use crate::measure::FailureKind;
use crate::record::{BackendKind, CellInfo, EndpointInfo};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Template label: the server applied its own chat template to the messages.
pub const TEMPLATE_SERVER: &str = "server";
/// Template label: a raw prompt sent to a chat API as one user message.
pub const TEMPLATE_RAW_AS_USER: &str = "raw (sent as one user message)";

/// An HTTP backend and its cell state.
pub struct Remote {
    pub endpoint: Endpoint,
    pub client: Client,
    /// The GGUF whose chat template renders prompts for Ollama's raw mode.
    pub template_model: Option<PathBuf>,
    /// Ollama's prompts of the prepared cell, by prompt id.
    rendered: HashMap<String, Ready>,
}

impl Remote {
    pub fn new(endpoint: Endpoint, client: Client) -> Remote {
        Remote {
            endpoint,
            client,
            template_model: None,
            rendered: HashMap::new(),
        }
    }

    fn render(&mut self, setup: &Setup) -> Result<(), String> {
        self.rendered.clear();
        if self.endpoint.spec.kind != BackendKind::Ollama {
            return Ok(());
        }
        let path = self
            .template_model
            .as_ref()
            .ok_or("ollama needs a GGUF model (-m) whose chat template renders the prompts")?;
        let model = render::vocab(path)?;
        for p in &setup.prompts {
            let ready = render::render(&model, p, setup.raw)?;
            self.rendered.insert(p.id.clone(), ready);
        }
        Ok(())
    }

    fn chat(&self, req: &ChatRequest<'_>) -> ChatReply {
        let rendered = self.rendered.get(&req.prompt.id);
        let mut x = exchange(
            &self.client,
            &self.endpoint,
            req,
            rendered.map(|r| r.rendered.text.as_str()),
        );
        let template = match (rendered, req.raw().is_some()) {
            (Some(r), _) => r.rendered.template.clone(),
            (None, true) => TEMPLATE_RAW_AS_USER.to_string(),
            (None, false) => TEMPLATE_SERVER.to_string(),
        };
        let bytes = req.raw().map_or_else(
            || req.prompt.messages.iter().map(|m| m.content.len()).sum(),
            str::len,
        );
        x.drop_impossible_usage();
        x.drop_impossible_timings(req.prompt.max_tokens, bytes);
        let mut trace = x.trace(&req.prompt.stop, req.prompt.max_tokens, bytes);
        if trace.prompt_tokens == 0 {
            // Ollama leaves out prompt_eval_count when the prompt came from its cache; a count
            // no prompt of this length has is not believed either.
            trace.prompt_tokens = rendered.map_or(0, |r| r.tokens);
        }
        ChatReply {
            trace,
            http: Some(x.http_report()),
            before_answer: x.start.saturating_duration_since(x.began),
            failure: x.failure,
            template,
            server: Some(x.server),
            ..Default::default()
        }
    }
}

impl Backend for Remote {
    fn prepare(&mut self, setup: &Setup) -> Result<CellInfo, CellError> {
        self.render(setup)?;
        let ep = &self.endpoint;
        let mut endpoint = EndpointInfo {
            kind: ep.spec.kind,
            base_url: ep.base_url.clone(),
            model: ep.spec.model.clone(),
            local: ep.local,
            server_version: None,
            details: None,
            loaded_bytes: None,
            loaded_vram_bytes: None,
            warmup_ms: None,
            load_ms: None,
        };
        if ep.spec.kind == BackendKind::Ollama && !setup.prompts.is_empty() {
            ollama::preflight(&self.client, ep, &mut endpoint)
                .map_err(|f| format!("preflight: {}", f.message))?;
        }
        Ok(CellInfo {
            machine: crate::hw::machine::fingerprint(),
            endpoint: Some(endpoint),
            ..Default::default()
        })
    }

    fn run(&mut self, req: &Request<'_>) -> Reply {
        match req {
            Request::Chat(c) => Reply::Chat(self.chat(c)),
            Request::Load(l) => Reply::Load(super::load::run_threads(l, &|c| self.chat(c))),
            _ => Reply::Failed(Failure::new(
                FailureKind::Other,
                format!("{} runs chat requests only", self.endpoint.spec),
            )),
        }
    }

    fn release(&mut self) {
        self.rendered.clear();
    }

    fn serving_pids(&self) -> Vec<u32> {
        let Ok(uri) = ureq::http::Uri::try_from(self.endpoint.base_url.as_str()) else {
            return Vec::new();
        };
        if !matches!(
            uri.host(),
            Some("localhost" | "127.0.0.1" | "::1" | "[::1]")
        ) {
            return Vec::new();
        }
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        crate::hw::load::listening_pids(port)
    }
}

/// Sends one chat request to an HTTP endpoint and reads its answer (`rendered`: the prompt as
/// text, for Ollama's raw mode).
pub fn exchange(
    client: &Client,
    ep: &Endpoint,
    req: &ChatRequest<'_>,
    rendered: Option<&str>,
) -> Exchange {
    match ep.spec.kind {
        BackendKind::OpenAi => openai::request(client, ep, req),
        BackendKind::Anthropic => anthropic::request(client, ep, req),
        BackendKind::Ollama => {
            let joined = || {
                let parts: Vec<&str> = req.prompt.messages.iter().map(|m| &*m.content).collect();
                parts.join("\n")
            };
            let prompt = rendered.or(req.raw()).map_or_else(joined, str::to_string);
            ollama::request(client, ep, req, &prompt)
        }
        BackendKind::Native => {
            let mut x = Exchange::new(Instant::now());
            x.finish(Some(Failure::new(
                FailureKind::Other,
                "native is not an HTTP backend",
            )));
            x
        }
    }
}
