//! Raw schema → [`Workflow`], with every rule checked once.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Action, Await, Call, Compensate, Concurrency, ConcurrencyKey, DEFAULT_STEP_TIMEOUT, Method, OnConflict, Publish,
    Step, Workflow, WorkflowError,
    raw::{RawAwait, RawCall, RawCompensate, RawPublish, RawRedact, RawStep, RawWorkflow},
};
use crate::{
    Span,
    lang::{RawText, Text, say},
    retry::RetryPolicy,
};

pub fn from_toml(text: &str) -> Result<Workflow, WorkflowError> {
    let raw: RawWorkflow = toml::from_str(text).map_err(|e| WorkflowError {
        step: None,
        field: None,
        message: e.to_string().trim().to_string(),
    })?;
    let source = serde_json::to_value(&raw).unwrap_or_default();
    parse(raw, source)
}

pub fn from_json(text: &[u8]) -> Result<Workflow, WorkflowError> {
    let raw: RawWorkflow =
        serde_json::from_slice(text).map_err(|e| WorkflowError { step: None, field: None, message: e.to_string() })?;
    let source = serde_json::to_value(&raw).unwrap_or_default();
    parse(raw, source)
}

fn err(step: Option<&str>, field: &str, message: impl Into<String>) -> WorkflowError {
    WorkflowError { step: step.map(str::to_string), field: Some(field.to_string()), message: message.into() }
}

fn check_name(step: Option<&str>, field: &str, name: &str) -> Result<(), WorkflowError> {
    if super::valid_name(name) {
        Ok(())
    } else {
        Err(err(
            step,
            field,
            format!("`{name}` must be 1-64 letters, digits, `-` or `_`, starting with a letter or digit"),
        ))
    }
}

fn check_pointer(step: Option<&str>, field: &str, p: &str) -> Result<(), WorkflowError> {
    if p.starts_with('/') {
        Ok(())
    } else {
        Err(err(step, field, format!("`{p}` is not a JSON pointer (it must start with `/`)")))
    }
}

fn parse_call(step: &str, field: &str, raw: &RawCall) -> Result<Call, WorkflowError> {
    check_name(Some(step), &format!("{field}.service"), &raw.service)?;
    if !raw.path.starts_with('/') || raw.path.contains("://") || raw.path.contains(char::is_whitespace) {
        return Err(err(
            Some(step),
            &format!("{field}.path"),
            format!("`{}` must be a path starting with `/`", raw.path),
        ));
    }
    let method = match raw.method.as_deref().unwrap_or("POST").to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        other => {
            return Err(err(
                Some(step),
                &format!("{field}.method"),
                format!("`{other}` is not one of GET, POST, PUT, PATCH, DELETE"),
            ));
        }
    };
    Ok(Call { service: raw.service.clone(), method, path: raw.path.clone() })
}

fn parse_publish(step: &str, field: &str, raw: &RawPublish) -> Result<Publish, WorkflowError> {
    if !super::valid_topic(&raw.topic) {
        return Err(err(
            Some(step),
            &format!("{field}.topic"),
            format!("`{}` must be 1-128 letters, digits, `.`, `-` or `_`", raw.topic),
        ));
    }
    if raw.kind.trim().is_empty() || raw.kind.len() > 1024 {
        return Err(err(Some(step), &format!("{field}.type"), "the event type must be 1-1024 characters"));
    }
    if let Some(bad) = raw.fields.iter().flatten().find(|f| f.is_empty() || f.contains('/')) {
        return Err(err(
            Some(step),
            &format!("{field}.fields"),
            format!("`{bad}` must be a top-level field of the input"),
        ));
    }
    Ok(Publish { topic: raw.topic.clone(), kind: raw.kind.clone(), fields: raw.fields.clone() })
}

fn parse_await(step: &str, raw: &RawAwait) -> Result<Await, WorkflowError> {
    let Publish { topic, kind, .. } =
        parse_publish(step, "await", &RawPublish { topic: raw.topic.clone(), kind: raw.kind.clone(), fields: None })?;
    if let Some(p) = &raw.matches {
        check_pointer(Some(step), "await.match", p)?;
    }
    if raw.timeout.is_some_and(|t| t.0.is_zero()) {
        return Err(err(Some(step), "await.timeout", "must be more than zero"));
    }
    Ok(Await {
        topic,
        kind,
        matches: raw.matches.clone(),
        timeout: raw.timeout,
        on_timeout: raw.on_timeout.unwrap_or_default(),
    })
}

/// Exactly one of `call`, `publish` and `await`.
fn action(name: &str, raw: &RawStep) -> Result<Action, WorkflowError> {
    let s = Some(name);
    match (&raw.call, &raw.publish, &raw.wait) {
        (Some(c), None, None) => parse_call(name, "call", c).map(Action::Call),
        (None, Some(p), None) => parse_publish(name, "publish", p).map(Action::Publish),
        (None, None, Some(a)) => parse_await(name, a).map(Action::Await),
        (None, None, None) => Err(err(
            s,
            "call",
            "a step needs `call = { service, path }`, `publish = { topic, type }` or `await = { topic, type }`",
        )),
        _ => Err(err(s, "call", "a step does one thing: give only one of `call`, `publish` and `await`")),
    }
}

fn compensation(name: &str, label: &Text, c: &RawCompensate, langs: &Langs) -> Result<Compensate, WorkflowError> {
    let action = match (&c.service, &c.path, &c.topic, &c.kind) {
        (Some(service), Some(path), None, None) if c.fields.is_none() => {
            let rc = RawCall { service: service.clone(), method: c.method.clone(), path: path.clone() };
            Action::Call(parse_call(name, "compensate", &rc)?)
        }
        (None, None, Some(topic), Some(kind)) if c.method.is_none() => Action::Publish(parse_publish(
            name,
            "compensate",
            &RawPublish { topic: topic.clone(), kind: kind.clone(), fields: c.fields.clone() },
        )?),
        _ => {
            return Err(err(
                Some(name),
                "compensate",
                "a compensation calls a service (`service`, `path`) or publishes an event (`topic`, `type`)",
            ));
        }
    };
    let derived = |id: &str| label.map(|lang, l| say(lang, id, &[("label", &l)]));
    Ok(Compensate {
        action,
        label: langs
            .text(Some(name), "compensate.label", c.label.clone(), LABEL_MAX)?
            .unwrap_or_else(|| derived("undoing_default")),
        done_label: langs
            .text(Some(name), "compensate.done_label", c.done_label.clone(), LABEL_MAX)?
            .unwrap_or_else(|| derived("undone_default")),
    })
}

fn step(raw: &RawStep, index: usize, langs: &Langs) -> Result<Step, WorkflowError> {
    let name = raw.name.clone().ok_or_else(|| err(None, &format!("steps[{index}].name"), "every step needs a name"))?;
    check_name(Some(&name), "name", &name)?;
    let s = Some(name.as_str());
    let action = action(&name, raw)?;
    let retry = RetryPolicy::from_raw(raw.retry.clone().unwrap_or_default())
        .map_err(|(f, m)| err(s, &format!("retry.{f}"), m))?;
    let timeout = raw.timeout.unwrap_or(crate::Span(DEFAULT_STEP_TIMEOUT));
    if timeout.0.is_zero() {
        return Err(err(s, "timeout", "must be more than zero"));
    }
    let label = langs
        .text(s, "label", raw.label.clone(), LABEL_MAX)?
        .unwrap_or_else(|| Text::one(langs.default(), humanize(&name)));
    let done_label = langs
        .text(s, "done_label", raw.done_label.clone(), LABEL_MAX)?
        .unwrap_or_else(|| label.map(|lang, l| say(lang, "done_default", &[("label", &l)])));
    let compensate = raw.compensate.as_ref().map(|c| compensation(&name, &label, c, langs)).transpose()?;
    Ok(Step {
        name,
        label,
        done_label,
        action,
        retry,
        on_failure: raw.on_failure.unwrap_or_default(),
        timeout,
        expected_within: raw.expected_within,
        deadline: raw.deadline,
        compensate,
        stage: 0,
    })
}

/// "delete-audit-logs" → "Delete audit logs": a readable default label.
fn humanize(name: &str) -> String {
    let spaced = name.replace(['-', '_'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// The longest label, done label or description, in characters.
const LABEL_MAX: usize = 200;
const DESCRIPTION_MAX: usize = 2000;

/// The languages a workflow declares, and how its texts are read.
struct Langs {
    declared: Option<Vec<String>>,
}

impl Langs {
    fn new(declared: Option<Vec<String>>) -> Result<Self, WorkflowError> {
        if let Some(list) = &declared {
            if list.is_empty() {
                return Err(err(None, "languages", "list at least one language, the first the one to fall back to"));
            }
            if let Some(bad) = list.iter().find(|l| !crate::lang::valid_tag(l)) {
                return Err(err(None, "languages", format!("`{bad}` is not a language tag like \"en\" or \"pt-BR\"")));
            }
            if list.iter().collect::<BTreeSet<_>>().len() != list.len() {
                return Err(err(None, "languages", "a language is listed twice"));
            }
        }
        Ok(Langs { declared })
    }

    fn default(&self) -> &str {
        self.declared.as_ref().and_then(|l| l.first()).map(String::as_str).unwrap_or(crate::lang::DEFAULT)
    }

    /// A text as written, checked: 1-200 characters in each language, and
    /// only in declared languages (when the file declares them).
    fn text(
        &self,
        step: Option<&str>,
        field: &str,
        raw: Option<RawText>,
        max: usize,
    ) -> Result<Option<Text>, WorkflowError> {
        let Some(raw) = raw else { return Ok(None) };
        let text = Text::from_raw(raw, self.default());
        if text.languages().next().is_none() {
            return Err(err(step, field, "give the text in at least one language"));
        }
        for lang in text.languages() {
            if !crate::lang::valid_tag(lang) {
                return Err(err(step, field, format!("`{lang}` is not a language tag like \"en\" or \"pt-BR\"")));
            }
            if let Some(list) = &self.declared
                && !list.iter().any(|l| l == lang)
            {
                return Err(err(step, field, format!("`{lang}` is not one of the workflow's `languages`")));
            }
        }
        if text.texts().any(|v| v.trim().is_empty() || v.len() > max) {
            return Err(err(step, field, format!("must be 1-{max} characters")));
        }
        Ok(Some(text))
    }

    /// The languages an operation may be given: those declared, or else
    /// the default and any a text was written in.
    fn offered(&self, texts: &[(String, &Text)]) -> Vec<String> {
        if let Some(list) = &self.declared {
            return list.clone();
        }
        let mut all = vec![crate::lang::DEFAULT.to_string()];
        for lang in texts.iter().flat_map(|(_, t)| t.languages()) {
            if !all.iter().any(|l| l == lang) {
                all.push(lang.to_string());
            }
        }
        all
    }
}

pub fn parse(raw: RawWorkflow, source: serde_json::Value) -> Result<Workflow, WorkflowError> {
    check_name(None, "name", &raw.name)?;
    let langs = Langs::new(raw.languages.clone())?;
    if let Some(p) = &raw.language_from {
        check_pointer(None, "language_from", p)?;
    }
    let version = raw.version.unwrap_or(1);
    if version == 0 {
        return Err(err(None, "version", "must be 1 or more"));
    }
    if let Some(p) = &raw.subject {
        check_pointer(None, "subject", p)?;
    }
    if raw.steps.is_empty() {
        return Err(err(None, "steps", "a workflow needs at least one step"));
    }
    if let (Some(crate::expect::Within::Fixed(e)), Some(d)) = (raw.expected_within, raw.deadline)
        && e > d
    {
        return Err(err(None, "expected_within", format!("{e} is after the deadline ({d})")));
    }
    let concurrency = match &raw.concurrency {
        None => None,
        Some(c) => {
            let key = if c.key == "subject" {
                if raw.subject.is_none() {
                    return Err(err(None, "concurrency.key", "`subject` needs the workflow's `subject` pointer"));
                }
                ConcurrencyKey::Subject
            } else {
                check_pointer(None, "concurrency.key", &c.key)?;
                ConcurrencyKey::Input(c.key.clone())
            };
            let asks = c.on_conflict == OnConflict::Ask;
            for (field, given) in [("decide_within", c.decide_within.is_some()), ("default", c.default.is_some())] {
                if given && !asks {
                    return Err(err(None, &format!("concurrency.{field}"), "only with on_conflict = \"ask\""));
                }
            }
            let decide_within = c.decide_within.unwrap_or(Span(super::DEFAULT_DECIDE_WITHIN));
            if decide_within.0.is_zero() {
                return Err(err(None, "concurrency.decide_within", "must be more than zero"));
            }
            let default = c.default.unwrap_or(crate::concurrency::Choice::Keep);
            Some(Concurrency { key, on_conflict: c.on_conflict, decide_within, default })
        }
    };

    let notify = crate::notify::NotifyPolicy::from_raw(raw.notify.as_ref());
    if notify.channels.contains(&crate::notify::Channel::Email) {
        match &notify.email_to {
            Some(p) => check_pointer(None, "notify.email_to", p)?,
            None => {
                return Err(err(
                    None,
                    "notify.email_to",
                    "the email channel needs `email_to`, a pointer to the address in the input",
                ));
            }
        }
    }
    let mut redact = Vec::new();
    let mut field_labels = BTreeMap::new();
    for r in raw.retention.iter().flat_map(|r| &r.redact) {
        let field = r.field();
        if field.is_empty() || field.contains('/') {
            return Err(err(None, "retention.redact", format!("`{field}` must be a top-level field of the input")));
        }
        if let RawRedact::Labelled(l) = r
            && let Some(label) =
                langs.text(None, &format!("retention.redact.{field}.label"), Some(l.label.clone()), LABEL_MAX)?
        {
            field_labels.insert(field.to_string(), label);
        }
        redact.push(field.to_string());
    }
    if let Some(bad) = raw.visible_input.iter().find(|k| k.is_empty() || k.contains('/')) {
        return Err(err(None, "visible_input", format!("`{bad}` must be a top-level field of the input")));
    }
    let mut steps = Vec::new();
    let mut by_name = BTreeMap::new();
    for (i, entry) in raw.steps.iter().enumerate() {
        if entry.parallel.is_some() {
            let only_parallel = entry.name.is_none()
                && entry.call.is_none()
                && entry.publish.is_none()
                && entry.wait.is_none()
                && entry.label.is_none();
            if !only_parallel {
                return Err(err(
                    entry.name.as_deref(),
                    &format!("steps[{i}].parallel"),
                    "a `parallel` entry only names other steps",
                ));
            }
            continue;
        }
        let s = step(entry, i, &langs)?;
        if by_name.insert(s.name.clone(), steps.len()).is_some() {
            return Err(err(Some(&s.name), "name", "two steps have this name"));
        }
        steps.push(s);
    }

    // Stages in file order; a group's members run at the group's position.
    let mut grouped = BTreeSet::new();
    for entry in &raw.steps {
        for m in entry.parallel.iter().flatten() {
            let Some(&ix) = by_name.get(m) else {
                return Err(err(None, "parallel", format!("names `{m}`, which is not a step of this workflow")));
            };
            if !grouped.insert(ix) {
                return Err(err(Some(m), "parallel", "this step is in more than one parallel group"));
            }
        }
    }
    let mut stages: Vec<Vec<usize>> = Vec::new();
    for entry in &raw.steps {
        match (&entry.parallel, &entry.name) {
            (Some(members), _) => {
                if members.is_empty() {
                    return Err(err(None, "parallel", "a parallel group needs at least one step"));
                }
                stages.push(members.iter().map(|m| by_name[m]).collect());
            }
            (None, Some(n)) => {
                let ix = by_name[n];
                if !grouped.contains(&ix) {
                    stages.push(vec![ix]);
                }
            }
            (None, None) => unreachable!("a step without a name was refused above"),
        }
    }
    for (stage, members) in stages.iter().enumerate() {
        for &ix in members {
            steps[ix].stage = stage;
        }
    }
    // Steps listed in stage order make views read in the order things run.
    let order: Vec<usize> = stages.iter().flatten().copied().collect();
    let reordered: Vec<Step> = order.iter().map(|&ix| steps[ix].clone()).collect();
    let remap: BTreeMap<usize, usize> = order.iter().enumerate().map(|(new, &old)| (old, new)).collect();
    let stages = stages.into_iter().map(|st| st.into_iter().map(|ix| remap[&ix]).collect()).collect();

    let label = langs
        .text(None, "label", raw.label.clone(), LABEL_MAX)?
        .unwrap_or_else(|| Text::one(langs.default(), humanize(&raw.name)));
    let description = langs.text(None, "description", raw.description.clone(), DESCRIPTION_MAX)?;
    let mut wf = Workflow {
        languages: vec![],
        languages_declared: langs.declared.is_some(),
        language_from: raw.language_from,
        label,
        description,
        name: raw.name,
        version,
        expected_within: raw.expected_within,
        deadline: raw.deadline,
        subject: raw.subject,
        concurrency,
        notify,
        redact,
        field_labels,
        keep_input_for: raw.retention.as_ref().and_then(|r| r.keep_input_for),
        visible_input: raw.visible_input,
        steps: reordered,
        stages,
        source,
    };
    wf.languages = langs.offered(&wf.texts());
    Ok(wf)
}
