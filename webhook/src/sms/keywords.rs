//! The opt-out keywords carriers and Twilio recognise. Matched on the whole message, trimmed,
//! in any case: "stop" is a keyword, "stop reminding me about water" is a message.

/// What a keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Send nothing more to this number.
    Stop,
    /// Sending may resume.
    Start,
    /// What this number is and how to stop it.
    Help,
}

impl Keyword {
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Stop => "stop",
            Keyword::Start => "start",
            Keyword::Help => "help",
        }
    }
}

/// Twilio's default opt-out, opt-in and help keywords (its "Advanced Opt-Out" defaults).
const STOP: &[&str] = &["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
const START: &[&str] = &["START", "YES", "UNSTOP"];
const HELP: &[&str] = &["HELP", "INFO"];

/// The keyword a message is, if it is one.
pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim();
    let is = |list: &[&str]| list.iter().any(|k| k.eq_ignore_ascii_case(word));
    if is(STOP) {
        Some(Keyword::Stop)
    } else if is(START) {
        Some(Keyword::Start)
    } else if is(HELP) {
        Some(Keyword::Help)
    } else {
        None
    }
}

/// The answer to HELP: who writes, and how to stop it. GSM-7 and one segment.
pub const HELP_TEXT: &str = "Wellbeing assistant: reply to tell me how you are doing. Reply STOP to stop all messages, START to \
resume. Msg & data rates may apply.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_messages_in_any_case_are_keywords() {
        for (text, want) in [
            ("STOP", Some(Keyword::Stop)),
            (" stop\n", Some(Keyword::Stop)),
            ("StopAll", Some(Keyword::Stop)),
            ("unsubscribe", Some(Keyword::Stop)),
            ("Cancel", Some(Keyword::Stop)),
            ("end", Some(Keyword::Stop)),
            ("QUIT", Some(Keyword::Stop)),
            ("start", Some(Keyword::Start)),
            ("Yes", Some(Keyword::Start)),
            ("UNSTOP", Some(Keyword::Start)),
            ("help", Some(Keyword::Help)),
            ("Info", Some(Keyword::Help)),
            ("stop please", None),
            ("STOP.", None),
            ("I ate lunch", None),
            ("", None),
        ] {
            assert_eq!(keyword(text), want, "{text:?}");
        }
        let count = crate::sms::segments::count(HELP_TEXT);
        assert_eq!((count.encoding, count.segments), (crate::sms::segments::Encoding::Gsm7, 1));
    }
}
