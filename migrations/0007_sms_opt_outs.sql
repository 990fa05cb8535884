-- Phone numbers that texted STOP (or one of its synonyms): nothing is sent to them, not a reply,
-- a check-in prompt or a nudge, until they text START. Keyed by the number rather than a person:
-- an opt-out holds for a number nobody is served at, and "forget me" leaves it in place (it is
-- what keeps the assistant from texting that number again).
CREATE TABLE sms_opt_outs (
    address      TEXT PRIMARY KEY,          -- E.164, "+4915112345678"
    opted_out_at TEXT NOT NULL,
    source       TEXT NOT NULL              -- keyword | twilio_21610 (Twilio refused: opted out there)
);

-- The MessageSid of every STOP and START acted on. Twilio's signature has no timestamp, so a
-- captured request could be sent again; a START replayed after a later STOP must not lift it.
CREATE TABLE sms_keywords_seen (
    message_sid TEXT PRIMARY KEY,
    seen_at     TEXT NOT NULL
);
