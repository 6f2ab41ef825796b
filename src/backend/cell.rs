//! An HTTP backend's sweep cell, run in the sweep's own process (a server's failure cannot
//! take runner down): preflight, then every pending prompt in turn, each recorded and flushed
//! as it completes, a failed request recorded with its reason and the cell going on.

use super::cost::{self, Prices};
use super::http::Client;
use super::render::{Rendered, Renderer};
use super::report::EndpointInfo;
use super::request::{self, Context};
use super::spec::{Endpoint, Kind};
use super::{ollama, Backend, ChatRequest};
use crate::hw::load::{self, LoadMonitor};
use crate::record::{CellInfo, SweepRecord};
use crate::scenario::{self, Prompt, Scenario};
use crate::sweep::results::ResultsFile;
use crate::sweep::spec::CellSpec;
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::time::Instant;

/// Template label: the server applied its own chat template to the messages.
pub const TEMPLATE_SERVER: &str = "server";
/// Template label: a raw prompt sent to a chat API as one user message.
pub const TEMPLATE_RAW_AS_USER: &str = "raw (sent as one user message)";

/// A backend behind HTTP.
pub struct Http {
    pub endpoint: Endpoint,
    pub client: Client,
    pub prices: Prices,
    /// The GGUF whose chat template renders prompts for Ollama's raw mode.
    pub template_model: Option<PathBuf>,
}

impl Backend for Http {
    fn run_cell(&self, spec: &CellSpec, bar: &ProgressBar) -> Result<(), String> {
        let ep = &self.endpoint;
        let scenarios = spec
            .scenarios
            .iter()
            .map(|p| scenario::load(p).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut info = CellInfo {
            machine: crate::hw::machine::fingerprint(),
            endpoint: Some(EndpointInfo {
                kind: ep.spec.kind.as_str().to_string(),
                base_url: ep.base_url.clone(),
                model: ep.spec.model.clone(),
                local: ep.local,
                ..Default::default()
            }),
            ..Default::default()
        };
        let pending = pending(spec, &scenarios);
        if pending.is_empty() {
            return Ok(());
        }
        let rendered = self.render(spec, &pending)?;
        if ep.spec.kind == Kind::Ollama {
            bar.set_message(format!("{}: loading the model", ep.spec));
            if let Some(e) = info.endpoint.as_mut() {
                ollama::preflight(&self.client, ep, e)
                    .map_err(|f| format!("preflight: {}", f.message))?;
            }
        }
        bar.set_message(ep.spec.to_string());
        let mut out = ResultsFile::append_to(&spec.results).map_err(|e| e.to_string())?;
        let monitor = LoadMonitor::start(load::SAMPLE_INTERVAL);
        for (i, (sc, prompt)) in pending.iter().enumerate() {
            let r = rendered.get(i).and_then(Option::as_ref);
            let start = Instant::now();
            let mut rec = self.request(spec, &info, sc, prompt, r);
            rec.load = crate::sweep::cell::load_report(&monitor, start, spec.busy_threshold);
            out.append(&SweepRecord::Request(Box::new(rec)))
                .map_err(|e| e.to_string())?;
            bar.inc(1);
        }
        Ok(())
    }
}

impl Http {
    /// One prompt through the endpoint, as a record.
    fn request(
        &self,
        spec: &CellSpec,
        info: &CellInfo,
        sc: &Scenario,
        prompt: &Prompt,
        rendered: Option<&Rendered>,
    ) -> crate::record::RequestRecord {
        let ep = &self.endpoint;
        let req = ChatRequest::from_prompt(prompt, rendered.map(|r| r.text.as_str()));
        let x = super::stream(&self.client, ep, &req);
        let template = match (rendered, prompt.raw_prompt.is_some()) {
            (Some(r), _) => r.template.as_str(),
            (None, true) => TEMPLATE_RAW_AS_USER,
            (None, false) => TEMPLATE_SERVER,
        };
        let ctx = Context {
            cell: &spec.cell,
            info,
            scenario: sc,
            prompt,
            template,
            no_text: spec.no_text,
        };
        let mut rec = request::record(&ctx, &x);
        if rec.prompt_tokens == 0 {
            if let Some(r) = rendered {
                // Ollama leaves out prompt_eval_count when the prompt came from its cache.
                rec.prompt_tokens = r.tokens;
            }
        }
        let (usd, source) = cost::cost(
            ep.local,
            ep.spec.kind.as_str(),
            &ep.spec.model,
            &x.server,
            &self.prices,
        );
        rec.cost_usd = usd;
        rec.cost_source = source;
        rec
    }

    /// Ollama's prompts, rendered with the template model's chat template.
    fn render(
        &self,
        spec: &CellSpec,
        pending: &[(&Scenario, &Prompt)],
    ) -> Result<Vec<Option<Rendered>>, String> {
        if self.endpoint.spec.kind != Kind::Ollama {
            return Ok(vec![None; pending.len()]);
        }
        let path = self
            .template_model
            .as_ref()
            .ok_or("ollama needs a GGUF model (-m) whose chat template renders the prompts")?;
        let r = Renderer::open(path)?;
        pending
            .iter()
            .map(|(_, p)| r.render(p, spec.raw).map(Some))
            .collect()
    }
}

/// The prompts of the cell not yet recorded, in scenario order.
fn pending<'a>(spec: &CellSpec, scenarios: &'a [Scenario]) -> Vec<(&'a Scenario, &'a Prompt)> {
    let limit = spec.limit.map_or(usize::MAX, |n| n as usize);
    scenarios
        .iter()
        .flat_map(|sc| sc.prompts.iter().take(limit).map(move |p| (sc, p)))
        .filter(|(sc, p)| !spec.done.contains(&(sc.name.clone(), p.id.clone())))
        .collect()
}
