//! An operation told again in another language than the one it was
//! written in: for a reader whose token or browser asks for one the
//! workflow offers. Labels come from the workflow's texts, herald's words
//! from its catalog; what services said (errors, reasons they gave) stays
//! as they said it.

use crate::{Event, Operation, Workflow, expect, lang::say, machine};

/// `op` and its `timeline` as told in `lang`.
pub fn retell(mut op: Operation, timeline: &mut [Event], wf: &Workflow, lang: &str) -> Operation {
    if op.lang == lang {
        return op;
    }
    let default = wf.default_language();
    op.lang = lang.to_string();
    op.label = wf.label.get(lang, default).to_string();
    for run in &mut op.steps {
        let Some(step) = wf.steps.iter().find(|s| s.name == run.name) else { continue };
        run.label = step.label.get(lang, default).to_string();
        run.done_label = step.done_label.get(lang, default).to_string();
        if let (Some(undo), Some(c)) = (&mut run.undo, &step.compensate) {
            undo.label = c.label.get(lang, default).to_string();
            undo.done_label = c.done_label.get(lang, default).to_string();
        }
    }
    op.field_labels = wf.field_labels.iter().map(|(f, l)| (f.clone(), l.get(lang, default).to_string())).collect();
    if let Some(e) = &mut op.expectation {
        e.text = expect::usually(std::time::Duration::from_millis(e.within_ms), lang);
        e.if_late = e.if_late.as_ref().map(|_| say(lang, "if_late", &[]));
    }
    if let Some(status) = op.outcome.as_ref().map(|o| o.status) {
        op.outcome = Some(machine::account(&op, status));
    }
    for event in timeline {
        event.message = event.kind.message(&op);
    }
    op
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Command, OperationId, machine, operation::Intake, workflow};

    #[test]
    fn an_ended_operation_is_told_again_in_the_readers_language() {
        let wf = workflow::from_toml(
            r#"
name = "order"
languages = ["en", "de"]
label = { en = "Your order", de = "Ihre Bestellung" }
[[steps]]
name = "charge"
label = { en = "Charging your card", de = "Karte wird belastet" }
done_label = { en = "Card charged", de = "Karte belastet" }
call = { service = "s", path = "/c" }
"#,
        )
        .unwrap();
        let now = chrono::Utc::now();
        let (mut op, tr) =
            machine::accept(&wf, OperationId::new(now, [0; 10]), json!({}), None, None, &Intake::default(), now);
        let mut timeline = tr.events;
        let done = Command::Result {
            step: "charge".into(),
            attempt: 1,
            phase: crate::task::Phase::Forward,
            outcome: machine::Outcome::Done(json!({})),
            sample: 0.5,
        };
        timeline.extend(machine::apply(&mut op, &wf, done, now).unwrap().events);
        assert_eq!(op.outcome.as_ref().unwrap().summary, "Your order: done. Card charged.");

        let told = retell(op, &mut timeline, &wf, "de");
        assert_eq!(told.label, "Ihre Bestellung");
        assert_eq!(told.outcome.unwrap().summary, "Ihre Bestellung: erledigt. Karte belastet.");
        let said: Vec<&str> = timeline.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(said.first(), Some(&"Anfrage erhalten"));
        assert!(said.contains(&"Karte wird belastet") && said.contains(&"Karte belastet"), "{said:?}");
    }

    #[test]
    fn an_erased_field_is_named_in_the_users_words_in_every_language() {
        let file = |label: &str| {
            format!(
                r#"
name = "close"
languages = ["en", "de", "fr"]
label = {{ en = "Closing", de = "Schließung", fr = "Fermeture" }}
retention = {{ redact = ["phone", {{ field = "email", label = {label} }}] }}
[[steps]]
name = "close"
label = {{ en = "Closing", de = "Schließung", fr = "Fermeture" }}
done_label = {{ en = "Closed", de = "Geschlossen", fr = "Fermé" }}
call = {{ service = "s", path = "/c" }}
"#
            )
        };
        let wf =
            workflow::from_toml(&file(r#"{ en = "email address", de = "E-Mail-Adresse", fr = "adresse e-mail" }"#))
                .unwrap();
        assert!(wf.untranslated().is_empty(), "{:?}", wf.untranslated());
        let now = chrono::Utc::now();
        let input = json!({"email": "a@example.com", "phone": "1"});
        let intake = Intake { lang: Some("de".into()), ..Intake::default() };
        let (mut op, tr) = machine::accept(&wf, OperationId::new(now, [0; 10]), input, None, None, &intake, now);
        let mut timeline = tr.events;
        let done = Command::Result {
            step: "close".into(),
            attempt: 1,
            phase: crate::task::Phase::Forward,
            outcome: machine::Outcome::Done(json!({})),
            sample: 0.5,
        };
        timeline.extend(machine::apply(&mut op, &wf, done, now).unwrap().events);
        assert_eq!(timeline.last().unwrap().message, "Aus unseren Unterlagen gelöscht: phone, E-Mail-Adresse");

        let told = retell(op, &mut timeline, &wf, "en");
        assert_eq!(told.field_labels["email"], "email address");
        assert_eq!(timeline.last().unwrap().message, "Erased from our records: your phone, email address");

        let half = workflow::from_toml(&file(r#"{ en = "email address" }"#)).unwrap();
        let missing: Vec<String> = half.untranslated().into_iter().map(|(at, lang)| format!("{at} {lang}")).collect();
        assert_eq!(missing, ["retention.redact.email.label de", "retention.redact.email.label fr"]);
    }
}
