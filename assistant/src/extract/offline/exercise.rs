//! Exercise (done, planned, none) and the activity.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{Clause, abandoned, future, habit, negated, re, wish};
use crate::checkin::Exercise;

/// Activities and their canonical names. `None`: exercise without a named activity.
const ACTIVITIES: &[(&str, Option<&str>)] = &[
    (
        r"ran|run|runs|running|jog|jogs|jogged|jogging|parkrun|marathon|half marathon|\d+(?:\.\d+)? ?(?:k|km|miles?) run|\d+(?:\.\d+)? ?(?:k|km)|sprints?|shuttle sprints",
        Some("run"),
    ),
    (r"walk|walks|walked|walking|stroll|strolled|\d+ ?steps", Some("walk")),
    (r"hike|hiked|hiking|hikes", Some("hike")),
    (
        r"gym|weights|lifted|lifting|deadlifts?|bench press|leg day|arm day|strength training|pt session|personal trainer",
        Some("gym"),
    ),
    (r"yoga", Some("yoga")),
    (r"pilates", Some("pilates")),
    (r"swim|swam|swimming|laps in the pool|swims", Some("swim")),
    (r"cycled|cycling|bike ride|biked|biking|rode my bike|bike|spin class|spinning|peloton", Some("cycle")),
    (r"hiit|crossfit|bootcamp|circuits|circuit training", Some("hiit")),
    (r"climbing|climbed|bouldering", Some("climbing")),
    (
        r"tennis|football|soccer|basketball|baseball|softball|badminton|squash|volleyball|netball|rugby|hockey|golf|cricket|padel|skated|skating|surfed|surfing",
        Some("sport"),
    ),
    (r"boxing|kickboxing|martial arts|karate|judo|bjj|jiu-jitsu", Some("boxing")),
    (r"danced|dancing|dance class|zumba", Some("dance")),
    (r"stretched|stretching|mobility", Some("stretch")),
    (r"rowing|rowed|rowing machine|elliptical|treadmill|cross trainer", Some("rowing")),
    (r"physio exercises|physio", Some("physio")),
    (
        r"workout|work out|worked out|working out|workouts|training session|trained|push-?ups|press-?ups|sit-?ups|squats|burpees|planks?",
        Some("workout"),
    ),
    (r"exercise|exercised|exercising|sport|active|moved my body|movement", None),
];

static ACTIVITY_RES: LazyLock<Vec<(Regex, Option<&'static str>)>> =
    LazyLock::new(|| ACTIVITIES.iter().map(|(p, name)| (re(&format!(r"\b(?:{p})\b")), *name)).collect());

/// Words before an activity that say it did not happen.
static SKIPPED_BEFORE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:skip|skipped|skipping|missed|miss|bailed on|not in the mood for|can't face|couldn't face|ditched|cancelled|canceled|no|too (?:tired|busy|lazy|exhausted|sore|sick|knackered|wiped) (?:to|for)|instead of|rather than|day off from|break from|off from|never made it to|didn't make it to|couldn't make it to|gave up on|forgot)\b(?:\s+\w+){0,4}\s*$|\b(?:didn't|did not|couldn't|could not|haven't|have not|never|not|wasn't able to) (?:go|going|get|getting|make it|do|doing|manage|managed|have time|been|gone)\b",
    )
});
static SKIPPED_AFTER_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(?:was |got )?(?:cancelled|canceled|skipped|didn't happen|never happened|not happening|isn't happening|is off|was off|rained off|called off)\b",
    )
});
static DIDNT_SKIP_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:didn't|did not|never|not) (?:skip|miss|bail on|ditch)(?: (?:the|my|a|our))?(?: \w+)?\s*$")
});
/// A day with no exercise in it.
static REST_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:(?:today|now)(?: is| will be)?(?: a)? rest|rest today|resting today|taking (?:it|today|the day) easy|rest day|rest days|day off training|lazy day|couch all day|sofa all day|didn't move|haven't moved|not moved|no movement|sat all day|sitting all day|no exercise|no workout|no gym|no run|no training)\b",
    )
});
/// Words that show the activity happened: past forms, "done", times already gone.
static DONE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:ran|jogged|walked|hiked|swam|cycled|biked|lifted|worked out|trained|climbed|danced|stretched|rowed|exercised|went|did|done|had|finished|completed|got in|got out|squeezed in|fit in|fitted in|managed|made it|this morning|earlier|already|just got back|back from|after my|did a great|smashed|crushed|nailed|hit|took|enjoyed|great|good|nice|lovely|brutal|hard|tough|easy|amazing|solid|went for|quick|short|long|morning|lunchtime|at lunch|before work|\d+ ?(?:minutes|min|hours|k|km|miles|reps|sets|laps))\b|✅",
    )
});

fn mention_status(text: &str, plan: bool, start: usize, end: usize, activity: &str) -> Option<Exercise> {
    let before = &text[..start];
    let after = &text[end..];
    if DIDNT_SKIP_RE.is_match(before) {
        // "didn't skip the gym": two negatives, it happened.
        return Some(Exercise::Done);
    }
    if SKIPPED_BEFORE_RE.is_match(before) || SKIPPED_AFTER_RE.is_match(after) || negated(before) {
        return Some(Exercise::None);
    }
    if abandoned(before) {
        return Some(Exercise::None);
    }
    // The activity's own past form ("ran", "swam") settles it; so does a past verb or a time
    // already gone anywhere in the clause, unless the clause is clearly about later.
    let past_form = matches!(
        activity,
        "ran"
            | "jogged"
            | "walked"
            | "hiked"
            | "swam"
            | "cycled"
            | "biked"
            | "lifted"
            | "worked out"
            | "trained"
            | "climbed"
            | "danced"
            | "stretched"
            | "rowed"
            | "exercised"
            | "strolled"
    );
    let is_future = plan || future(text);
    let done = DONE_RE.is_match(text);
    if past_form {
        return Some(Exercise::Done);
    }
    if is_future {
        // "going for a quick run later": "quick" is not a past tense.
        let strong_past = re_past_verb(before);
        return Some(if strong_past { Exercise::Done } else { Exercise::Planned });
    }
    if wish(text) || habit(text) {
        return None;
    }
    if done {
        return Some(Exercise::Done);
    }
    // A bare mention ("Gym!", "yoga this am", "5k") reports it, unless it is a question.
    Some(Exercise::Done)
}

/// "I love running but haven't been in weeks": the activity is named in one clause, the lapse in
/// the next.
static LAPSE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:haven't|have not|hasn't|not) (?:been|gone|done it|done any|managed)(?: (?:in|for))? (?:weeks|ages|days|months|a while|a week|a month|forever|yet)\b|^(?:i'm |i am )?(?:skipping|skipped|skip|ditching|ditched|cancelled|canceled|giving) it\b|^not (?:going|happening|today)\b",
    )
});

static YESTERDAY_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:yesterday|yesterday's|last night)\b"));

static PAST_VERB_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:went|did|done|had|finished|completed|got in|squeezed in|managed|made it|already|just got back|back from)\b",
    )
});

fn re_past_verb(text: &str) -> bool {
    PAST_VERB_RE.is_match(text)
}

/// Exercise status and activity. Done beats planned beats none: "skipped the gym but walked
/// home" is a day with exercise, and so is "ran 5k, yoga later". When the message is about
/// today, what it says about yesterday ("yesterday's run was great, today rest") is left out.
pub(crate) fn exercise(clauses: &[Clause], today: bool) -> (Exercise, Option<String>) {
    let mut best: Option<(Exercise, Option<&'static str>)> = None;
    let rank = |e: Exercise| match e {
        Exercise::Done => 3,
        Exercise::Planned => 2,
        Exercise::None => 1,
        Exercise::Unknown => 0,
    };
    let mut named: Option<(usize, Option<&'static str>)> = None; // (sentence, activity) of the last mention
    for clause in clauses {
        let t = clause.text.as_str();
        if today && YESTERDAY_RE.is_match(t) {
            continue;
        }
        if let Some((sentence, name)) = named
            && sentence == clause.sentence
            && LAPSE_RE.is_match(t)
            && best.is_none_or(|(e, _)| rank(e) < rank(Exercise::None))
        {
            best = Some((Exercise::None, name));
        }
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (re, name) in ACTIVITY_RES.iter() {
            for m in re.find_iter(t) {
                if spans.iter().any(|&(s, e)| m.start() < e && s < m.end()) {
                    continue;
                }
                spans.push((m.start(), m.end()));
                named = Some((clause.sentence, *name));
                let Some(status) = mention_status(t, clause.plan, m.start(), m.end(), m.as_str()) else { continue };
                let better = match best {
                    None => true,
                    Some((e, n)) => {
                        rank(status) > rank(e) || (rank(status) == rank(e) && n.is_none() && name.is_some())
                    }
                };
                if better {
                    best = Some((status, *name));
                }
            }
        }
        if REST_RE.is_match(t) && best.is_none() {
            best = Some((Exercise::None, None));
        }
    }
    match best {
        Some((e, name)) => (e, name.map(str::to_string)),
        None => (Exercise::Unknown, None),
    }
}
