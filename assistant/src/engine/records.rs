//! What one handled message leaves behind: the transaction that writes it, the replay of an
//! event already handled, the open follow-up a message answers, and check-ins read back.
use super::*;

impl Assistant {
    /// Write everything one message decided, in one transaction. A concurrent handler of the
    /// same event that got there first wins; this one then returns its outcome.
    pub(super) fn commit(
        &self,
        msg: &IncomingMessage,
        ctx: &PersonContext,
        redacted: &Redacted,
        plan: Plan,
    ) -> Result<Outcome, EngineError> {
        let persona = &ctx.persona;
        let now = crate::store::now_rfc3339();
        let received = rfc3339(msg.received_at);
        let persona_name = persona.name().to_string();
        let persona_version = persona.version();
        let channel = channel_str(msg.channel);
        let mut conn = self.inner.store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO people (person_id, created_at) VALUES (?1, ?2) ON CONFLICT (person_id) DO NOTHING",
            params![msg.user_id, received],
        )?;
        record_persona_version(&tx, persona, &now)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO interactions (user_id, channel, direction, kind, text, created_at, thread_ref,
                 persona_name, persona_version, event_id, flagged, redacted)
             VALUES (?1, ?2, 'in', 'message', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                msg.user_id,
                channel,
                redacted.text,
                received,
                msg.thread_ref,
                persona_name,
                persona_version,
                msg.event_id,
                plan.crisis,
                redacted.redacted()
            ],
        )?;
        if inserted == 0 {
            drop(tx);
            drop(conn);
            return self.replay(&msg.event_id)?.ok_or(EngineError::Invalid("a stored outcome"));
        }
        let inbound_id = tx.last_insert_rowid();
        let mut outcome = Outcome {
            replies: plan.replies.clone(),
            checkin_id: None,
            checkin: None,
            crisis: plan.crisis,
            redacted: redacted.redacted(),
            extractor: None,
            followup_asked: false,
            merged: false,
            replayed: false,
        };
        if let Some(planned) = plan.checkin {
            let data = serde_json::to_string(&planned.checkin)?;
            let checkin_id = match &planned.merge {
                Some(target) => {
                    tx.execute("UPDATE checkins SET data = ?1 WHERE id = ?2", params![data, target.checkin_id])?;
                    tx.execute(
                        "UPDATE followups SET answered_at = ?1 WHERE id = ?2 AND answered_at IS NULL",
                        params![received, target.followup_id],
                    )?;
                    outcome.merged = true;
                    target.checkin_id
                }
                None => {
                    tx.execute(
                        "INSERT INTO checkins (user_id, created_at, local_date, data, extractor, model, persona_name,
                             persona_version, prompt_id, thread_ref, crisis)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)",
                        params![
                            msg.user_id,
                            received,
                            planned.local_date.to_string(),
                            data,
                            planned.extraction.extractor.as_str(),
                            planned.extraction.model,
                            persona_name,
                            persona_version,
                            planned.prompt_id,
                            msg.thread_ref
                        ],
                    )?;
                    let id = tx.last_insert_rowid();
                    if let Some(prompt_id) = planned.prompt_id {
                        tx.execute(
                            "UPDATE checkin_prompts SET answered_at = ?1 WHERE id = ?2 AND answered_at IS NULL",
                            params![received, prompt_id],
                        )?;
                    }
                    if let Some((question, fields)) = &planned.followup {
                        // UNIQUE (checkin_id): the schema itself guarantees one follow-up. It is
                        // asked "at" the message's time: the answer window is measured in message
                        // time, so a backlog drained late still merges what belongs together.
                        tx.execute(
                            "INSERT INTO followups (checkin_id, user_id, fields, question, thread_ref, asked_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                id,
                                msg.user_id,
                                serde_json::to_string(fields)?,
                                question,
                                msg.thread_ref,
                                received
                            ],
                        )?;
                        outcome.followup_asked = true;
                    }
                    id
                }
            };
            tx.execute("UPDATE interactions SET checkin_id = ?1 WHERE id = ?2", params![checkin_id, inbound_id])?;
            outcome.checkin_id = Some(checkin_id);
            outcome.extractor = Some(planned.extraction.extractor.as_str().to_string());
            outcome.checkin = Some(planned.checkin);
        }
        for reply in &plan.replies {
            tx.execute(
                "INSERT INTO interactions (user_id, channel, direction, kind, text, created_at, thread_ref,
                     persona_name, persona_version, checkin_id, event_id, flagged)
                 VALUES (?1, ?2, 'out', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    msg.user_id,
                    channel,
                    reply.kind.as_str(),
                    reply.text,
                    now,
                    reply.thread_ref,
                    persona_name,
                    persona_version,
                    outcome.checkin_id,
                    msg.event_id,
                    reply.kind == OutgoingKind::Crisis
                ],
            )?;
        }
        let disclaimed = plan.replies.iter().any(|r| matches!(r.kind, OutgoingKind::Disclaimer | OutgoingKind::Crisis));
        if disclaimed {
            // The crisis reply says it is an AI assistant, too.
            tx.execute("UPDATE people SET disclaimer_shown = 1 WHERE person_id = ?1", params![msg.user_id])?;
        }
        tx.commit()?;
        tracing::info!(
            checkin_id = outcome.checkin_id,
            crisis = outcome.crisis,
            merged = outcome.merged,
            followup = outcome.followup_asked,
            extractor = outcome.extractor.as_deref(),
            "handled message"
        );
        Ok(outcome)
    }

    /// The stored outcome of an event already handled.
    pub(super) fn replay(&self, event_id: &str) -> Result<Option<Outcome>, EngineError> {
        stored_outcome(&self.inner.store, event_id)
    }

    pub(super) fn disclaimer_shown(&self, user_id: &str) -> Result<bool, EngineError> {
        let shown: Option<bool> = self
            .inner
            .store
            .conn()
            .query_row("SELECT disclaimer_shown FROM people WHERE person_id = ?1", params![user_id], |r| r.get(0))
            .optional()?;
        Ok(shown.unwrap_or(false))
    }

    /// The open follow-up this message answers: the one whose thread it is in, else the latest
    /// unanswered one of this user asked within `followup_window`.
    pub(super) fn merge_target(&self, person: &str, msg: &IncomingMessage) -> Result<Option<MergeTarget>, EngineError> {
        let conn = self.inner.store.conn();
        let since = rfc3339(msg.received_at - self.inner.config.followup_window);
        let row: Option<(i64, i64, String)> = conn
            .query_row(
                "SELECT f.checkin_id, f.id, c.data FROM followups f JOIN checkins c ON c.id = f.checkin_id
                 WHERE f.user_id = ?1 AND f.answered_at IS NULL
                   AND ((?2 IS NOT NULL AND f.thread_ref = ?2) OR f.asked_at >= ?3)
                 ORDER BY (?2 IS NOT NULL AND f.thread_ref = ?2) DESC, f.asked_at DESC, f.id DESC LIMIT 1",
                params![person, msg.thread_ref, since],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(checkin_id, followup_id, data)| {
            Ok(MergeTarget { checkin_id, followup_id, checkin: serde_json::from_str(&data)? })
        })
        .transpose()
    }

    /// Check-ins created at or after `since`, oldest first; `None`: every user's.
    pub fn checkins_since(
        &self,
        user_id: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<StoredCheckIn>, EngineError> {
        let conn = self.inner.store.conn();
        let mut stmt = conn.prepare(
            "SELECT id, user_id, created_at, local_date, data, extractor, model, persona_name, persona_version,
                    prompt_id, thread_ref, crisis
             FROM checkins WHERE (?1 IS NULL OR user_id = ?1) AND created_at >= ?2 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![user_id, rfc3339(since)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, bool>(11)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                user_id,
                created_at,
                local_date,
                data,
                extractor,
                model,
                persona_name,
                persona_version,
                prompt_id,
                thread_ref,
                crisis,
            ) = row?;
            out.push(StoredCheckIn {
                id,
                user_id,
                created_at: parse_time(&created_at),
                local_date: local_date.parse().unwrap_or_default(),
                checkin: serde_json::from_str(&data)?,
                extractor,
                model,
                persona_name,
                persona_version,
                prompt_id,
                thread_ref,
                crisis,
            });
        }
        Ok(out)
    }
}

pub(super) fn channel_str(channel: Channel) -> &'static str {
    match channel {
        Channel::Slack => "slack",
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Local => "local",
    }
}

pub(super) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

pub(super) fn record_persona_version(conn: &Connection, persona: &ActivePersona, now: &str) -> Result<(), EngineError> {
    conn.execute(
        "INSERT OR IGNORE INTO persona_versions (version, name, spec, first_seen) VALUES (?1, ?2, ?3, ?4)",
        params![persona.version(), persona.name(), serde_json::to_string(persona.spec())?, now],
    )?;
    Ok(())
}

/// What handling `event_id` led to, if it was handled; writes nothing. None also for a message
/// that never reached the engine (refused: someone this installation does not serve).
pub fn stored_outcome(store: &Store, event_id: &str) -> Result<Option<Outcome>, EngineError> {
    let conn = store.conn();
    let inbound: Option<(Option<i64>, bool, bool)> = conn
        .query_row(
            "SELECT checkin_id, flagged, redacted FROM interactions WHERE event_id = ?1 AND direction = 'in'",
            params![event_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((checkin_id, flagged, redacted)) = inbound else { return Ok(None) };
    let mut stmt = conn.prepare(
        "SELECT kind, text, thread_ref FROM interactions WHERE event_id = ?1 AND direction = 'out' ORDER BY id",
    )?;
    let replies = stmt
        .query_map(params![event_id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
        .filter_map(|row| match row {
            Ok((kind, text, thread_ref)) => {
                OutgoingKind::parse(&kind).map(|kind| Ok(OutgoingMessage { text, thread_ref, kind }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stored = match checkin_id {
        Some(id) => conn
            .query_row("SELECT data, extractor FROM checkins WHERE id = ?1", params![id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?,
        None => None,
    };
    let (checkin, extractor) = match stored {
        Some((data, extractor)) => (Some(serde_json::from_str(&data)?), Some(extractor)),
        None => (None, None),
    };
    Ok(Some(Outcome {
        followup_asked: replies.iter().any(|r| r.kind == OutgoingKind::FollowUp),
        replies,
        checkin_id,
        checkin,
        crisis: flagged,
        redacted,
        extractor,
        merged: false,
        replayed: true,
    }))
}
