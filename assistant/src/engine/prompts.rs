//! Check-in prompts: picking and recording the persona's question for a person and slot, where
//! it was posted, and which prompt a message answers.
use super::*;

impl Assistant {
    /// The check-in prompt this message answers: the one whose thread it is in, else the latest
    /// unanswered one sent within `prompt_window` before it.
    pub(super) fn prompt_for(&self, person: &str, msg: &IncomingMessage) -> Result<Option<i64>, EngineError> {
        let conn = self.inner.store.conn();
        let since = rfc3339(msg.received_at - self.inner.config.prompt_window);
        let until = rfc3339(msg.received_at);
        Ok(conn
            .query_row(
                "SELECT id FROM checkin_prompts
                 WHERE user_id = ?1 AND answered_at IS NULL
                   AND ((?2 IS NOT NULL AND thread_ref = ?2) OR (sent_at >= ?3 AND sent_at <= ?4))
                 ORDER BY (?2 IS NOT NULL AND thread_ref = ?2) DESC, sent_at DESC, id DESC LIMIT 1",
                params![person, msg.thread_ref, since, until],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Pick the active persona's check-in prompt for `user_id` and record it. With a `slot`
    /// (the scheduled time), a second call for the same slot returns [`SentPrompt::AlreadySent`].
    #[instrument(skip(self))]
    pub fn record_checkin_prompt(
        &self,
        user_id: &str,
        channel: Channel,
        slot: Option<DateTime<Utc>>,
    ) -> Result<SentPrompt, EngineError> {
        if user_id.trim().is_empty() {
            return Err(EngineError::Invalid("a user id"));
        }
        let persona = self.inner.personas.active();
        let text = choose_prompt(persona.spec(), &mut rand::rng());
        let now = crate::store::now_rfc3339();
        let slot_text = slot.map(rfc3339);
        let mut conn = self.inner.store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(slot_text) = &slot_text
            && let Some(existing) = prompt_by_slot(&tx, user_id, slot_text)?
        {
            return Ok(SentPrompt::AlreadySent(existing));
        }
        tx.execute(
            "INSERT INTO people (person_id, created_at) VALUES (?1, ?2) ON CONFLICT (person_id) DO NOTHING",
            params![user_id, now],
        )?;
        record_persona_version(&tx, &persona, &now)?;
        tx.execute(
            "INSERT INTO checkin_prompts (user_id, persona_name, persona_version, prompt, sent_at, slot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user_id, persona.name(), persona.version(), text, now, slot_text],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO interactions (user_id, channel, direction, kind, text, created_at, persona_name, persona_version)
             VALUES (?1, ?2, 'out', 'checkin_prompt', ?3, ?4, ?5, ?6)",
            params![user_id, channel_str(channel), text, now, persona.name(), persona.version()],
        )?;
        tx.commit()?;
        Ok(SentPrompt::New(CheckinPrompt {
            id,
            user_id: user_id.to_string(),
            text,
            persona_name: persona.name().to_string(),
            persona_version: persona.version(),
            slot,
            channel_ref: None,
            thread_ref: None,
        }))
    }

    /// Record where a prompt was posted, so replies in its thread are linked to it.
    #[instrument(skip(self))]
    pub fn mark_prompt_delivered(
        &self,
        prompt_id: i64,
        channel_ref: Option<String>,
        thread_ref: Option<String>,
    ) -> Result<(), EngineError> {
        let changed = self.inner.store.conn().execute(
            "UPDATE checkin_prompts SET channel_ref = ?1, thread_ref = ?2 WHERE id = ?3",
            params![channel_ref, thread_ref, prompt_id],
        )?;
        if changed == 0 {
            return Err(EngineError::PromptNotFound(prompt_id));
        }
        Ok(())
    }
}

pub(super) fn prompt_by_slot(
    conn: &Connection,
    user_id: &str,
    slot: &str,
) -> Result<Option<CheckinPrompt>, EngineError> {
    Ok(conn
        .query_row(
            "SELECT id, prompt, persona_name, persona_version, slot, channel_ref, thread_ref
             FROM checkin_prompts WHERE user_id = ?1 AND slot = ?2",
            params![user_id, slot],
            |r| {
                Ok(CheckinPrompt {
                    id: r.get(0)?,
                    user_id: user_id.to_string(),
                    text: r.get(1)?,
                    persona_name: r.get(2)?,
                    persona_version: r.get(3)?,
                    slot: r.get::<_, Option<String>>(4)?.map(|s| parse_time(&s)),
                    channel_ref: r.get(5)?,
                    thread_ref: r.get(6)?,
                })
            },
        )
        .optional()?)
}
