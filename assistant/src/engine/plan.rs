//! The message pipeline's decisions: what one message will write and say, before any I/O
//! happens (the crisis answer, the check-in and its one follow-up, or a plain acknowledgement).
use super::*;

impl Assistant {
    /// The plan of a message that is not a crisis: the pure draft, then the reply in the
    /// persona's voice (LLM or template) and the prompt the message answers.
    pub(super) async fn checkin_plan(
        &self,
        ctx: &PersonContext,
        msg: &IncomingMessage,
        redacted: &Redacted,
        extraction: Extraction,
        merge: Option<MergeTarget>,
    ) -> Result<Plan, EngineError> {
        let (mut replies, checkin, acknowledged, followup, local_date, merge, extraction) =
            match draft(ctx, msg, redacted, extraction, merge) {
                Draft::Done(plan) => return Ok(plan),
                Draft::CheckIn { replies, checkin, acknowledged, followup, local_date, merge, extraction } => {
                    (replies, checkin, acknowledged, followup, local_date, merge, extraction)
                }
            };
        let out = |text: String, kind| OutgoingMessage { text, thread_ref: msg.thread_ref.clone(), kind };
        let reply = self.compose_reply(&ctx.persona, &redacted.text, &acknowledged).await;
        replies.push(out(reply, OutgoingKind::Reply));
        if let Some((question, _)) = &followup {
            replies.push(out(question.clone(), OutgoingKind::FollowUp));
        }
        let prompt_id = if merge.is_none() { self.prompt_for(&ctx.person, msg)? } else { None };
        Ok(Plan {
            crisis: false,
            replies,
            checkin: Some(PlannedCheckIn { checkin, extraction, merge, followup, local_date, prompt_id }),
        })
    }
}

/// What a message that is not a crisis leads to, before the reply is composed.
pub(super) enum Draft {
    /// Nothing to log ("hi", "thanks!"): the whole plan.
    Done(Plan),
    /// A check-in, new or merged into the one whose follow-up this answers.
    CheckIn {
        /// Said before the reply: the disclaimer on first contact, the redaction notice.
        replies: Vec<OutgoingMessage>,
        checkin: CheckIn,
        /// What the reply acknowledges: the whole check-in, or only what a follow-up answer adds.
        acknowledged: CheckIn,
        followup: Option<(String, Vec<String>)>,
        local_date: NaiveDate,
        merge: Option<MergeTarget>,
        extraction: Extraction,
    },
}

/// The pure part of a message's plan: notices, the check-in (merged or fresh, with its missing
/// required fields), the one follow-up question, and the local day it is about.
pub(super) fn draft(
    ctx: &PersonContext,
    msg: &IncomingMessage,
    redacted: &Redacted,
    extraction: Extraction,
    merge: Option<MergeTarget>,
) -> Draft {
    let required = &ctx.persona.spec().required_fields;
    let tone = ctx.persona.tone();
    let mut replies = Vec::new();
    let out = |text: String, kind| OutgoingMessage { text, thread_ref: msg.thread_ref.clone(), kind };
    if ctx.first_contact {
        replies.push(out(safety::DISCLAIMER.to_string(), OutgoingKind::Disclaimer));
    }
    if redacted.redacted() {
        replies.push(out(REDACTION_NOTICE.to_string(), OutgoingKind::Notice));
    }
    let (checkin, followup) = match &merge {
        Some(target) => {
            let mut merged = target.checkin.clone();
            merged.merge(&extraction.checkin);
            merged.missing = missing_required(&merged, required);
            // A check-in is followed up at most once, whatever is still missing.
            (merged, None)
        }
        None => {
            let mut fresh = extraction.checkin.clone();
            fresh.missing = missing_required(&fresh, required);
            let question = if is_empty_checkin(&fresh) {
                None // nothing understood: no check-in to follow up
            } else {
                followup_question(&fresh.missing, tone)
                    .map(|q| (q, fresh.missing.iter().take(2).cloned().collect::<Vec<_>>()))
            };
            (fresh, question)
        }
    };
    if merge.is_none() && is_empty_checkin(&checkin) {
        // Answer without creating a check-in row.
        let text = match tone {
            Tone::Direct => "Got it. Tell me how you're doing whenever you like: mood, energy, sleep, food.",
            _ => "Thanks! Whenever you like, tell me how you're doing: mood, energy, sleep, food, anything.",
        };
        replies.push(out(text.to_string(), OutgoingKind::Reply));
        return Draft::Done(Plan { crisis: false, replies, checkin: None });
    }
    // An answer to a follow-up is acknowledged for what it adds, not the whole check-in again.
    let acknowledged = if merge.is_some() { extraction.checkin.clone() } else { checkin.clone() };
    let local_date = local_date(msg.received_at, ctx.time_zone, extraction.checkin.day_offset);
    Draft::CheckIn { replies, checkin, acknowledged, followup, local_date, merge, extraction }
}

/// An open follow-up a message may answer.
pub(super) struct MergeTarget {
    pub(super) checkin_id: i64,
    pub(super) followup_id: i64,
    pub(super) checkin: CheckIn,
}

/// What one message will write, decided before the transaction.
pub(super) struct Plan {
    pub(super) crisis: bool,
    pub(super) replies: Vec<OutgoingMessage>,
    pub(super) checkin: Option<PlannedCheckIn>,
}

pub(super) struct PlannedCheckIn {
    pub(super) checkin: CheckIn,
    pub(super) extraction: Extraction,
    /// `Some`: merge into this check-in and close its follow-up.
    pub(super) merge: Option<MergeTarget>,
    /// New check-ins only: the follow-up question and the fields it asks about.
    pub(super) followup: Option<(String, Vec<String>)>,
    pub(super) local_date: NaiveDate,
    pub(super) prompt_id: Option<i64>,
}

pub(super) fn crisis_plan(persona: &ActivePersona, msg: &IncomingMessage) -> Plan {
    Plan {
        crisis: true,
        replies: vec![OutgoingMessage {
            text: safety::crisis_reply(&persona.spec().crisis_resources),
            thread_ref: msg.thread_ref.clone(),
            kind: OutgoingKind::Crisis,
        }],
        checkin: None,
    }
}

/// Nothing understood: no state, no event, no intention.
pub(super) fn is_empty_checkin(c: &CheckIn) -> bool {
    let mut blank = c.clone();
    blank.missing.clear();
    blank.day_offset = 0;
    blank == CheckIn::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::PersonaRegistry;

    fn ctx(first_contact: bool) -> PersonContext {
        let persona = PersonaRegistry::default().active();
        PersonContext { person: "local:me".into(), time_zone: chrono_tz::Europe::Berlin, persona, first_contact }
    }

    fn msg(at: &str) -> IncomingMessage {
        IncomingMessage {
            event_id: "e1".into(),
            user_id: "local:me".into(),
            channel: Channel::Local,
            text: String::new(),
            thread_ref: Some("t1".into()),
            received_at: at.parse().unwrap(),
        }
    }

    fn extraction(checkin: CheckIn) -> Extraction {
        Extraction {
            checkin,
            extractor: crate::extract::llm::ExtractorKind::Offline,
            model: None,
            usage: Default::default(),
            fallback_reason: None,
        }
    }

    #[test]
    fn an_empty_extraction_is_recognised() {
        assert!(is_empty_checkin(&CheckIn { missing: vec!["mood".into()], ..Default::default() }));
        assert!(!is_empty_checkin(&CheckIn { mood: Some("ok".into()), ..Default::default() }));
    }

    #[test]
    fn nothing_understood_is_answered_without_a_check_in_and_first_contact_gets_the_disclaimer() {
        let Draft::Done(plan) = draft(
            &ctx(true),
            &msg("2026-03-01T10:00:00Z"),
            &redact::redact("hi"),
            extraction(CheckIn::default()),
            None,
        ) else {
            panic!("a greeting is not a check-in")
        };
        let kinds: Vec<OutgoingKind> = plan.replies.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [OutgoingKind::Disclaimer, OutgoingKind::Reply]);
        assert!(plan.checkin.is_none() && !plan.crisis);
        assert!(plan.replies.iter().all(|r| r.thread_ref.as_deref() == Some("t1")), "replies stay in the thread");
    }

    #[test]
    fn a_check_in_is_dated_in_the_persons_time_zone_and_a_follow_up_answer_is_not_followed_up() {
        let said = CheckIn { sleep_quality: crate::checkin::SleepQuality::Poor, ..Default::default() };
        // 23:30 UTC is already the next day in Berlin.
        let Draft::CheckIn { replies, local_date, acknowledged, .. } = draft(
            &ctx(false),
            &msg("2026-03-01T23:30:00Z"),
            &redact::redact("slept badly"),
            extraction(said.clone()),
            None,
        ) else {
            panic!("a check-in")
        };
        assert!(replies.is_empty(), "no disclaimer after the first contact");
        assert_eq!(local_date.to_string(), "2026-03-02");
        assert_eq!(acknowledged, CheckIn { missing: acknowledged.missing.clone(), ..said.clone() });

        let earlier = CheckIn { mood: Some("tired".into()), ..Default::default() };
        let merge = MergeTarget { checkin_id: 7, followup_id: 9, checkin: earlier };
        let Draft::CheckIn { checkin, followup, acknowledged, .. } = draft(
            &ctx(false),
            &msg("2026-03-01T10:00:00Z"),
            &redact::redact("badly"),
            extraction(said.clone()),
            Some(merge),
        ) else {
            panic!("a merged check-in")
        };
        assert!(followup.is_none(), "a check-in is followed up at most once");
        assert_eq!(checkin.mood.as_deref(), Some("tired"));
        assert_eq!(checkin.sleep_quality, crate::checkin::SleepQuality::Poor);
        assert_eq!(acknowledged.mood, None, "the reply acknowledges what the answer adds");
    }
}
