//! `wellbeing extract [--offline] [--required mood,sleep] TEXT...`: print the check-in a message
//! becomes, as pretty JSON with the data model's field names.
//!
//! Without `--offline` the LLM extractor is used when an endpoint is configured
//! (`WELLBEING_LLM_BASE_URL`, `WELLBEING_LLM_MODEL`, `WELLBEING_LLM_API_KEY`), falling back to the
//! offline extractor on failure exactly as the assistant does; which one answered goes to stderr.
//! The message is redacted first, as it is before anything stores it or sends it to a model.

use anyhow::{Context as _, bail};
use wellbeing_assistant::checkin::{CheckIn, missing_required};
use wellbeing_assistant::extract::{llm, offline};
use wellbeing_assistant::llm::{LlmClient, LlmConfig, LlmRouter, LlmTask};
use wellbeing_assistant::redact::redact;
use wellbeing_crds::persona::RequiredField;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Use the offline extractor even when an LLM endpoint is configured.
    #[arg(long)]
    offline: bool,
    /// Fields a persona requires (mood, energy, stress, sleep, hunger, meals, water, exercise);
    /// those the message leaves open are listed in `missing`.
    #[arg(long, value_delimiter = ',', value_parser = parse_required, value_name = "FIELDS")]
    required: Vec<RequiredField>,
    /// The message, e.g. "slept badly, skipped breakfast".
    #[arg(required = true, num_args = 1.., value_name = "TEXT")]
    text: Vec<String>,
}

/// Required field names are the persona's (`spec.requiredFields`), parsed by the same serde names.
fn parse_required(name: &str) -> Result<RequiredField, String> {
    serde_json::from_value(serde_json::Value::String(name.trim().to_string())).map_err(|_| {
        format!("unknown field {name:?}; one of mood, energy, stress, sleep, hunger, meals, water, exercise")
    })
}

/// Which extractor produced the check-in, for the stderr line.
fn describe(extraction: &llm::Extraction) -> String {
    match (extraction.extractor, &extraction.model, extraction.fallback_reason) {
        (llm::ExtractorKind::Llm, Some(model), _) => format!("llm ({model})"),
        (_, _, Some(reason)) => format!("{} (LLM failed: {reason})", offline::NAME),
        (kind, ..) => kind.as_str().to_string(),
    }
}

/// The check-in with `missing` filled from the required fields.
fn finish(mut checkin: CheckIn, required: &[RequiredField]) -> CheckIn {
    checkin.missing = missing_required(&checkin, required);
    checkin
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = args.text.join(" ");
    if text.trim().is_empty() {
        bail!("nothing to extract: pass the message as an argument");
    }
    let redacted = redact(&text);
    if redacted.redacted() {
        eprintln!("note: something that looks like a credential was replaced with [REDACTED]");
    }
    let router = match args.offline {
        true => LlmRouter::offline(),
        false => LlmRouter::from(
            LlmConfig::from_env()
                .context("failed to read the LLM settings")?
                .map(LlmClient::new)
                .transpose()
                .context("failed to create the LLM client")?,
        ),
    };
    let route = router.route(LlmTask::Extraction, &Default::default());
    let extraction = match route {
        None => llm::Extraction {
            checkin: offline::extract(&redacted.text),
            extractor: llm::ExtractorKind::Offline,
            model: None,
            usage: Default::default(),
            fallback_reason: None,
        },
        Some(route) => {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start tokio")?;
            let text = &redacted.text;
            runtime.block_on(llm::extract_or_fallback(Some(&route.client), Some(route.model()), text, offline::extract))
        }
    };
    eprintln!("extractor: {}", describe(&extraction));
    let checkin = finish(extraction.checkin, &args.required);
    println!("{}", serde_json::to_string_pretty(&checkin).context("failed to print the check-in")?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_use_the_persona_names() {
        assert_eq!(parse_required("sleep"), Ok(RequiredField::Sleep));
        assert_eq!(parse_required(" meals "), Ok(RequiredField::Meals));
        assert!(parse_required("excercise").is_err());
    }

    #[test]
    fn missing_lists_what_the_message_leaves_open() {
        let checkin = finish(offline::extract("slept badly"), &[RequiredField::Sleep, RequiredField::Exercise]);
        assert_eq!(checkin.missing, vec!["exercise"]);
    }
}
