//! Sleep quality and hours slept.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{Clause, Rules, number, re};
use crate::checkin::SleepQuality;

const GOOD: Option<SleepQuality> = Some(SleepQuality::Good);
const AVERAGE: Option<SleepQuality> = Some(SleepQuality::Average);
const POOR: Option<SleepQuality> = Some(SleepQuality::Poor);

/// Adverbs allowed between the sleep verb and its judgement ("slept really well").
macro_rules! adv {
    () => {
        r"(?: really| so| very| pretty| quite| super| reasonably| surprisingly| kind of| too| that| actually| fairly)?"
    };
}

const SLEEP_QUALITY: &[(&str, Option<SleepQuality>, Option<SleepQuality>)] = &[
    (
        concat!(
            r"(?:slept|sleep|sleeping)",
            adv!(),
            r" (?:well|great|good|amazing|amazingly|brilliantly|soundly|deeply|fine|solidly|like a baby|wonderfully|perfectly|decent|decently)"
        ),
        GOOD,
        POOR,
    ),
    (
        concat!(
            r"(?:slept|sleep|sleeping)",
            adv!(),
            r" (?:badly|bad|poorly|terribly|terrible|awful|awfully|horribly|horrible|like crap|like shit|lightly|restlessly|rough|rubbish|crap|shit|lousy)"
        ),
        POOR,
        GOOD,
    ),
    (
        concat!(
            r"(?:slept|sleep)",
            adv!(),
            r" (?:ok|okay|alright|all right|so-so|meh|average|reasonably|fine-ish|not too bad|not bad)"
        ),
        AVERAGE,
        None,
    ),
    (
        r"(?:great|good|amazing|solid|full|restful|proper|lovely|wonderful|deep|long|best|excellent|nice|decent|fantastic|incredible|glorious) (?:night's |nights |night of )?(?:sleep|kip|rest)|(?:full|solid) night|slept through(?: the night)?|slept in|well rested|rested|woke up (?:feeling )?(?:refreshed|rested|great|good|well)|slept great",
        GOOD,
        POOR,
    ),
    (
        r"(?:bad|terrible|awful|horrible|poor|crap|crappy|shit|shitty|rough|restless|broken|light|patchy|disturbed|interrupted|little|short|lousy|rubbish|fitful|sleepless|bad|late) (?:night's |nights |night of )?(?:sleep|kip|night)",
        POOR,
        AVERAGE,
    ),
    (
        r"(?:ok|okay|average|alright|so-so|mediocre|meh|fine|reasonable|not bad) (?:night's |nights |night of )?(?:sleep|night)",
        AVERAGE,
        None,
    ),
    (
        r"sleep (?:was|is|has been|'s)(?: really| pretty| quite| so| super| kind of)? (?:great|good|amazing|fine|solid|restful|excellent|lovely|deep)",
        GOOD,
        POOR,
    ),
    (
        r"sleep (?:was|is|has been|'s)(?: really| pretty| quite| so| super| kind of)? (?:bad|terrible|awful|poor|crap|rubbish|rough|broken|horrible|patchy|shit|lousy|light)",
        POOR,
        AVERAGE,
    ),
    (
        r"sleep (?:was|is|has been|'s)(?: really| pretty| quite| so| super| kind of)? (?:ok|okay|alright|so-so|meh|average|decent|mediocre)",
        AVERAGE,
        None,
    ),
    (
        r"sleep (?:wasn't|isn't|was not|is not|hasn't been)(?: really| that| very| too| so)? (?:great|good|amazing|restful|enough)",
        POOR,
        None,
    ),
    (
        r"sleep (?:wasn't|isn't|was not|is not|hasn't been)(?: really| that| very| too| so)? (?:bad|terrible|awful|horrible)",
        AVERAGE,
        None,
    ),
    (
        r"(?:barely|hardly|didn't|did not|couldn't|could not|can't|haven't|never|not|don't|wasn't able to|unable to)(?: really| much| even| get to| fall| manage to| get any| get much| get enough| get back to)? (?:sleep|slept|asleep)",
        POOR,
        None,
    ),
    (r"(?:slept|sleep)(?: for)? (?:much|a lot|enough|long|loads|well enough|plenty|heaps|properly)", GOOD, POOR),
    (r"(?:(?:got|get|had|getting|having) )?(?:enough|plenty of|loads of|lots of|a lot of) sleep", GOOD, POOR),
    (
        r"(?:no|zero|little|not much|not enough|barely any|hardly any|lack of|minimal|not a lot of|very little) sleep|sleep[- ]deprived|insomnia|tossed and turned|tossing and turning|up all night|awake all night|awake half the night|kept waking(?: up)?|woke up (?:a lot|loads|constantly|several times|multiple times|many times|every hour|all night|in the middle of the night|at [1-4](?: ?am)?)|woke (?:several|multiple|many) times|(?:kids?|baby|toddler|dog|cat|neighbou?rs?|noise|partner|snoring) (?:kept|woke) (?:me|us)(?: up)?|didn't sleep at all|short night|sleepless",
        POOR,
        None,
    ),
];

static QUALITY_RULES: LazyLock<Rules<SleepQuality>> = LazyLock::new(|| Rules::new(SLEEP_QUALITY));

/// A duration in hours ("7 hours", "5-6 hours", "5 or 6 hours"); ranges count as their middle.
static HOURS_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d+(?:\.\d+)?)(?: ?(?:-|to|or) ?(\d+(?:\.\d+)?))? hours\b"));
/// A clause that is nothing but a duration ("9 hours", "maybe 6 hours tops").
static DURATION_ONLY_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:only |just |about |around |like |maybe |roughly |barely |a solid |a good )*(\d+(?:\.\d+)?)(?: ?(?:-|to|or) ?(\d+(?:\.\d+)?))? hours(?: tops| max| at most| maybe| or so| ish)?$",
    )
});
/// A bare number right after the sleep verb ("slept 5", "got maybe 6").
static BARE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:slept|sleep of|sleep was|got|managed) (?:for |only |just |barely |about |around |like |maybe |roughly |~|a solid |a good |my )*(\d+(?:\.\d+)?)(?: ?(?:-|to|or) ?(\d+(?:\.\d+)?))?\b",
    )
});
/// The clause talks about sleep.
static SLEEP_CUE_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:sleep|slept|sleeping|asleep|kip|shut-eye|bed|last night|zzz|sleepy|night's|a night)\b"));
/// The clause may talk about sleep without saying so ("only got 5 hours").
static WEAK_SLEEP_CUE_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:got|managed|only|just|barely|maybe)\b"));
/// Hours of something else: work, travel, screens, naps.
static OTHER_HOURS_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:nap|napped|napping|work|worked|working|meeting|meetings|drive|drove|driving|flight|flew|study|studied|studying|gym|run|ran|walk|walked|hike|hiked|screen|train|commute|shift|overtime|ago|later|until|till|delay|delayed|waiting|waited|class|lecture|call|calls|hours of work|minutes)\b",
    )
});

/// Bed and wake times: "in bed by 11, up at 6", "slept from 1 to 7".
static BED_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:bed|asleep|slept|sleep|crashed|lights out|passed out|went down)(?: from| at| by| around| about| after| before| until| till| ~)* ?(\d{1,2}|midnight)(?::(\d{2}))? ?(am|pm)?\b",
    )
});
static WAKE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:up|woke(?: up)?|awake|alarm|got up|to|till|until)(?: at| by| around| about| ~)* ?(\d{1,2})(?::(\d{2}))? ?(am|pm)?\b",
    )
});

fn hour_of_day(h: &str, m: Option<&str>, meridiem: Option<&str>, bedtime: bool) -> Option<f64> {
    let h: f64 = if h == "midnight" { 0.0 } else { h.parse().ok()? };
    if h > 24.0 {
        return None;
    }
    let m: f64 = m.and_then(|m| m.parse().ok()).unwrap_or(0.0);
    let mut t = h + m / 60.0;
    match meridiem {
        Some("pm") if h < 12.0 => t += 12.0,
        Some("am") if h == 12.0 => t -= 12.0,
        Some(_) => {}
        // Without am/pm, a bedtime of 7 to 11 is in the evening; a wake-up time is in the morning.
        None if bedtime && (7.0..12.0).contains(&h) => t += 12.0,
        None => {}
    }
    Some(t)
}

fn from_bed_and_wake(text: &str) -> Option<f64> {
    let bed = BED_RE.captures(text)?;
    let rest = &text[bed.get(0)?.end()..];
    let wake = WAKE_RE.captures(rest)?;
    let b = hour_of_day(bed.get(1)?.as_str(), bed.get(2).map(|m| m.as_str()), bed.get(3).map(|m| m.as_str()), true)?;
    let w =
        hour_of_day(wake.get(1)?.as_str(), wake.get(2).map(|m| m.as_str()), wake.get(3).map(|m| m.as_str()), false)?;
    let hours = (w - b).rem_euclid(24.0);
    (1.0..=14.0).contains(&hours).then_some(hours)
}

fn range(low: &str, high: Option<&str>) -> Option<f64> {
    let low = number(low)?;
    match high.and_then(number) {
        Some(high) if high > low => Some((low + high) / 2.0),
        _ => Some(low),
    }
}

/// Hours slept: an explicit duration in a clause about sleep, else a bedtime and a wake-up time.
pub(crate) fn hours(clauses: &[Clause], text: &str) -> Option<f64> {
    let message_about_sleep = clauses.iter().any(|c| SLEEP_CUE_RE.is_match(&c.text));
    for clause in clauses {
        let t = clause.text.as_str();
        // "Slept like a log! 9 hours": a bare duration next to talk of sleep.
        if message_about_sleep
            && let Some(c) = DURATION_ONLY_RE.captures(t)
            && let Some(h) = range(&c[1], c.get(2).map(|m| m.as_str()))
            && (1.0..=14.0).contains(&h)
        {
            return Some(h);
        }
        let names_sleep = t.contains("slept") || t.contains("sleep");
        let other = OTHER_HOURS_RE.is_match(t);
        // "worked 10 hours last night" is not sleep; "slept 5 hours after working late" is.
        let about_sleep =
            if SLEEP_CUE_RE.is_match(t) { names_sleep || !other } else { WEAK_SLEEP_CUE_RE.is_match(t) && !other };
        if !about_sleep {
            continue;
        }
        if let Some(c) = HOURS_RE.captures(t)
            && let Some(h) = range(&c[1], c.get(2).map(|m| m.as_str()))
            && (0.0..=16.0).contains(&h)
        {
            return Some(h);
        }
        if let Some(c) = BARE_RE.captures(t)
            && SLEEP_CUE_RE.is_match(t)
            && let Some(h) = range(&c[1], c.get(2).map(|m| m.as_str()))
            && (1.0..=14.0).contains(&h)
        {
            let after = t[c.get(0).map_or(0, |m| m.end())..].trim_start();
            // "slept 5" counts; "slept at 11:30", "got 5k steps" or "got 2 coffees" do not.
            let next = after.split_whitespace().next().unwrap_or("");
            let clock = after.starts_with(':')
                || matches!(next, "am" | "pm")
                || next.starts_with("am")
                || next.starts_with("pm");
            let other_unit = next.starts_with(|ch: char| ch.is_alphabetic())
                && !matches!(
                    next,
                    "hours" | "last" | "and" | "tonight" | "or" | "in" | "maybe" | "max" | "tops" | "at"
                );
            if !clock && !other_unit {
                return Some(h);
            }
        }
    }
    if text.contains("didn't sleep at all")
        || text.contains("couldn't sleep at all")
        || text.contains("no sleep at all")
        || text.contains("zero sleep")
    {
        return Some(0.0);
    }
    from_bed_and_wake(text)
}

/// Adults need 7 to 9 hours (AASM / Sleep Research Society consensus): under 6 is short sleep,
/// 6 to 7 borderline. Used only when the user states hours but not how the night was.
fn implied_by_hours(hours: f64) -> SleepQuality {
    match hours {
        h if h < 6.0 => SleepQuality::Poor,
        h if h < 7.0 => SleepQuality::Average,
        h if h <= 11.0 => SleepQuality::Good,
        _ => SleepQuality::Unknown,
    }
}

/// How the night was: the last explicit judgement wins; stated hours decide only when there is none.
pub(crate) fn quality(clauses: &[Clause], hours: Option<f64>) -> SleepQuality {
    match QUALITY_RULES.scan(clauses).last() {
        Some(hit) => hit.value,
        None => hours.map_or(SleepQuality::Unknown, implied_by_hours),
    }
}
