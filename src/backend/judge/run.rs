//! The judging pass of a sweep: every recorded answer not yet judged by a judge of the panel
//! is sent to it, and its verdict appended to the results file as it comes (so a re-run
//! resumes judging too).

use super::{blank, family, judge, rubric, Case, Judgement};
use crate::backend::http::Client;
use crate::backend::spec::Endpoint;
use crate::record::{RequestRecord, SweepRecord};
use crate::scenario::Scenario;
use crate::sweep::results::{self, ResultsFile};
use indicatif::ProgressBar;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

type JudgedKey = (crate::record::CellKey, String, String, String);

/// Judges every answer in the results file that a judge has not judged yet; returns how many
/// judgements were made.
pub fn run(
    path: &Path,
    scenarios: &[Scenario],
    judges: &[Endpoint],
    time_limit: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<usize> {
    let records = results::read(path)?;
    let done: HashSet<JudgedKey> = records
        .iter()
        .filter_map(|r| match r {
            SweepRecord::Judgement(j) => Some((
                j.cell.clone(),
                j.scenario.clone(),
                j.prompt_id.clone(),
                j.judge.clone(),
            )),
            _ => None,
        })
        .collect();
    let mut rubrics = BTreeMap::new();
    for sc in scenarios {
        rubrics.insert(
            sc.name.clone(),
            rubric::load(&sc.path).map_err(anyhow::Error::msg)?,
        );
    }
    let todo: Vec<(&RequestRecord, &Endpoint)> = records
        .iter()
        .filter_map(|r| match r {
            SweepRecord::Request(q) => Some(q.as_ref()),
            _ => None,
        })
        .flat_map(|q| judges.iter().map(move |j| (q, j)))
        .filter(|(q, j)| {
            let key = (
                q.cell.clone(),
                q.scenario.clone(),
                q.prompt_id.clone(),
                j.spec.to_string(),
            );
            !done.contains(&key)
        })
        .collect();
    bar.set_length(todo.len() as u64);
    bar.set_position(0);
    let client = Client::new();
    let mut out = ResultsFile::append_to(path)?;
    let mut n = 0;
    for (q, ep) in todo {
        let Some(sc) = scenarios.iter().find(|s| s.name == q.scenario) else {
            continue;
        };
        let (Some(prompt), Some(rubric)) = (sc.prompt(&q.prompt_id), rubrics.get(&sc.name)) else {
            continue;
        };
        bar.set_message(format!("judging with {}", ep.spec));
        let j = one(&client, ep, rubric, q, prompt, time_limit);
        out.append(&SweepRecord::Judgement(Box::new(j)))?;
        n += 1;
        bar.inc(1);
    }
    Ok(n)
}

/// One judgement; a request that failed or kept no text is recorded as not judged.
fn one(
    client: &Client,
    ep: &Endpoint,
    rubric: &rubric::Rubric,
    q: &RequestRecord,
    prompt: &crate::scenario::Prompt,
    time_limit: Duration,
) -> Judgement {
    let judged_family =
        family(&q.cell.model).or_else(|| q.info.model.name.as_deref().and_then(family));
    let case = Case {
        cell: &q.cell,
        scenario: &q.scenario,
        prompt,
        answer: q.text.as_deref().unwrap_or(""),
        judged_family,
    };
    let why_not = if q.failed {
        Some("the request failed: nothing to judge")
    } else if q.text.is_none() {
        Some("no answer text recorded (--no-text)")
    } else {
        None
    };
    match why_not {
        None => judge(client, ep, rubric, &case, time_limit),
        Some(why) => {
            let mut j = blank(ep, rubric, &case);
            j.error = Some(why.into());
            j
        }
    }
}
