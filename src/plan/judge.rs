//! The judging pass of a sweep, as a plan: every recorded answer not yet judged by a judge of
//! the panel is sent to it (one cell per judge), asked for JSON scores against the scenario's
//! rubric, asked once more when the answer does not parse, and the verdict appended to the
//! results file as it comes (so a re-run resumes judging too).

use super::sweep::SweepPlan;
use crate::backend::exchange::Failure;
use crate::backend::remote::Remote;
use crate::backend::spec::Endpoint;
use crate::backend::{Backend, ChatRequest, Reply, Request, Setup};
use crate::exec::{self, Cell, Observed, Plan};
use crate::grade::judge::{self, Case, ANSWER_KEPT, JUDGE_MAX_TOKENS};
use crate::record::{CellKey, Judgement, Record, RequestRecord, ResultsFile};
use crate::scenario::{Prompt, Rubric, Scenario};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// One answer to judge, with the judge's question about it.
struct Task {
    judgement: Judgement,
    /// The question, as a prompt with the judge's limits.
    question: Prompt,
    rubric: Rubric,
    /// Nothing to ask (the request failed, or kept no text): recorded as not judged.
    skip: bool,
}

/// The judging pass as a plan: one cell per judge.
pub struct JudgePlan {
    cells: Vec<Cell>,
    /// Per cell: its tasks, the next one, and one to ask again.
    tasks: Vec<(Vec<Task>, usize, Option<usize>)>,
    schemas: BTreeMap<String, serde_json::Value>,
}

impl JudgePlan {
    /// The answers in `records` that the judges have not judged yet.
    pub fn new(
        records: &[Record],
        scenarios: &[Scenario],
        judges: &[Endpoint],
        time_limit: Duration,
    ) -> anyhow::Result<JudgePlan> {
        // What each judge judged: (cell, scenario, prompt, judge).
        let done: HashSet<_> = (records.iter())
            .filter_map(|r| match r {
                Record::Judgement(j) => {
                    Some((&j.cell, &j.scenario, &j.prompt_id, j.judge.to_string()))
                }
                _ => None,
            })
            .collect();
        let mut rubrics = BTreeMap::new();
        for sc in scenarios {
            let r = crate::scenario::rubric::load(&sc.path).map_err(crate::util::Invalid)?;
            rubrics.insert(sc.name.clone(), r);
        }
        // The judges score each prompt's answer alone, not the copies a load level sends.
        let requests: Vec<&RequestRecord> = crate::record::requests(records)
            .filter(|q| q.traffic.is_none())
            .collect();
        let mut plan = JudgePlan {
            cells: Vec::new(),
            tasks: Vec::new(),
            schemas: rubrics
                .iter()
                .map(|(k, r)| (k.clone(), r.schema()))
                .collect(),
        };
        for (i, ep) in judges.iter().enumerate() {
            let mut tasks = Vec::new();
            for q in &requests {
                if done.contains(&(&q.cell, &q.scenario, &q.prompt_id, ep.spec.to_string())) {
                    continue;
                }
                let Some(sc) = scenarios.iter().find(|s| s.name == q.scenario) else {
                    continue;
                };
                let (Some(prompt), Some(rubric)) = (sc.prompt(&q.prompt_id), rubrics.get(&sc.name))
                else {
                    continue;
                };
                tasks.push(task(ep, rubric, q, prompt, time_limit));
            }
            let setup = Setup {
                key: CellKey::http(&ep.spec),
                ..Default::default()
            };
            let label = format!("judge {}", ep.spec);
            plan.cells.push(Cell::new(label, i, setup, tasks.len()));
            plan.tasks.push((tasks, 0, None));
        }
        Ok(plan)
    }
}

/// The task of judging one recorded request.
fn task(
    ep: &Endpoint,
    rubric: &Rubric,
    q: &RequestRecord,
    prompt: &Prompt,
    time_limit: Duration,
) -> Task {
    let judged_family = judge::family(&q.cell.model)
        .or_else(|| q.info.model.name.as_deref().and_then(judge::family));
    let case = Case {
        cell: &q.cell,
        scenario: &q.scenario,
        prompt,
        answer: q.text.as_deref().unwrap_or(""),
        judged_family,
    };
    let mut j = judge::blank(&ep.spec, ep.family.clone(), rubric, &case);
    let why_not = match (q.failed, q.text.is_none()) {
        (true, _) => Some("the request failed: nothing to judge"),
        (false, true) => Some("no answer text recorded (--no-text)"),
        _ => None,
    };
    j.error = why_not.map(str::to_string);
    let question = Prompt {
        id: format!("judge-{}", q.prompt_id),
        messages: judge::messages(rubric, &case),
        max_tokens: JUDGE_MAX_TOKENS,
        time_limit,
        ..Default::default()
    };
    Task {
        judgement: j,
        question,
        rubric: rubric.clone(),
        skip: why_not.is_some(),
    }
}

impl Plan for JudgePlan {
    fn cells(&self) -> &[Cell] {
        &self.cells
    }

    fn next(&mut self, c: usize) -> Option<usize> {
        let (tasks, next, again) = &mut self.tasks[c];
        again.take().or_else(|| exec::take_next(next, tasks.len()))
    }

    fn request(&self, c: usize, id: usize) -> Request<'_> {
        let t = &self.tasks[c].0[id];
        Request::Chat(ChatRequest {
            prompt: &t.question,
            json_schema: self.schemas.get(&t.judgement.scenario),
        })
    }

    fn reply(&mut self, c: usize, id: usize, reply: Reply, _seen: &Observed<'_>) -> Vec<Record> {
        let (tasks, _, again) = &mut self.tasks[c];
        let t = &mut tasks[id];
        let j = &mut t.judgement;
        if !t.skip {
            j.attempts += 1;
            let (text, failure, took) = match &reply {
                Reply::Chat(r) => (r.trace.text.clone(), r.failure.clone(), r.trace.end),
                Reply::Failed(f) => (String::new(), Some(f.clone()), Duration::ZERO),
                _ => (String::new(), None, Duration::ZERO),
            };
            j.latency_ms += crate::measure::ms(took);
            j.answer = Some(text.chars().take(ANSWER_KEPT).collect());
            match verdict(&text, failure.as_ref(), &t.rubric) {
                Ok((scores, rationale)) => {
                    j.weighted = t.rubric.weighted_mean(&scores);
                    j.scores = scores;
                    j.rationale = rationale;
                    j.error = None;
                }
                Err(e) => {
                    (j.weighted, j.rationale) = (None, None);
                    j.scores.clear();
                    j.error = Some(e);
                    if j.attempts < 2 {
                        // Asked once more; the record comes with the second answer.
                        *again = Some(id);
                        return Vec::new();
                    }
                }
            }
        }
        j.provenance = crate::record::Provenance::now();
        vec![Record::Judgement(Box::new(j.clone()))]
    }
}

/// The scores and rationale of a judge's answer, or why there are none: a judge request that
/// failed gives no scores, whatever text came before the failure (an error event may retract
/// it, a cut-off answer is not the judge's whole verdict), and its failure is the reason.
fn verdict(
    text: &str,
    failure: Option<&Failure>,
    rubric: &Rubric,
) -> Result<(BTreeMap<String, f64>, Option<String>), String> {
    match failure {
        Some(f) => Err(format!("{}: {}", f.kind.as_str(), f.message)),
        None => judge::parse(text, rubric),
    }
}

/// Judges every answer of the sweep's results file that a judge has not judged yet.
pub fn run(
    sweep: &SweepPlan,
    obs: &dyn exec::Observer,
    monitor: &crate::hw::load::LoadMonitor,
) -> Result<(), exec::ExecError> {
    let sink_err = |e: &dyn std::fmt::Display| exec::ExecError::Sink(e.to_string());
    let results = &sweep.shared.results;
    let records = crate::record::io::read(results).map_err(|e| sink_err(&e))?;
    let b = &sweep.baselines;
    let mut plan = JudgePlan::new(&records, &sweep.scenarios, &b.judges, b.judge_time_limit)
        .map_err(|e| sink_err(&e))?;
    let client = crate::backend::http::Client::new();
    let mut remotes: Vec<Remote> = (b.judges.iter())
        .map(|ep| Remote::new(ep.clone(), client.clone()))
        .collect();
    let mut backends: Vec<&mut dyn Backend> =
        remotes.iter_mut().map(|r| r as &mut dyn Backend).collect();
    let mut sink = ResultsFile::append_to(results).map_err(|e| sink_err(&e))?;
    let opts = exec::Options {
        monitor,
        busy_threshold: f64::INFINITY,
        stop_on_refusal: false,
    };
    exec::run(&mut plan, &mut backends, &mut sink, obs, &opts)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::FailureKind;

    #[test]
    fn a_judge_request_that_failed_gives_no_scores_and_says_why() {
        let rubric = Rubric::default();
        let scores = r#"{"instruction_following": 10, "correctness": 10, "clarity": 10, "rationale": "perfect"}"#;
        let (s, r) = verdict(scores, None, &rubric).unwrap();
        assert_eq!(s["correctness"], 10.0);
        assert_eq!(r.as_deref(), Some("perfect"));
        let error = Failure::new(FailureKind::StreamError, "content filtered, discard output");
        let cut = Failure::new(FailureKind::TimeLimit, "no answer within 120 s");
        for (text, f) in [
            (scores, &error),
            (scores, &cut),
            ("", &error),
            ("{\"correctness\": 1", &cut),
        ] {
            let e = verdict(text, Some(f), &rubric).unwrap_err();
            assert_eq!(e, format!("{}: {}", f.kind.as_str(), f.message), "{text}");
        }
        assert_eq!(
            verdict("no scores", None, &rubric).unwrap_err(),
            "the judge's answer holds no JSON object"
        );
    }
}
