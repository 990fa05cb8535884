//! The offline extractor: rule tables that turn a message into a `CheckIn` with no model and no
//! network.
//!
//! It is the fallback when no LLM endpoint is configured or the endpoint fails, so it has to be
//! right about the things that matter most (crisis language, negation, planned versus done) on
//! messages people really write: slang, emoji, typos, numbers in words. Each field has its own
//! module and rule table; this file only runs them in order. Deterministic and pure: the same
//! text always gives the same check-in, and nothing is logged.

pub mod eval;
mod exercise;
mod feelings;
mod food;
mod intentions;
pub mod model;
mod pillars;
mod sleep;
mod text;

use std::sync::LazyLock;

use regex::Regex;

use crate::checkin::{CheckIn, Exercise, Hunger, Level, MealStatus, Valence};

/// Recorded with every check-in this extractor produces.
pub const NAME: &str = "offline";

static YESTERDAY_RE: LazyLock<Regex> = LazyLock::new(|| text::re(r"\byesterday\b"));
/// "since yesterday", "than yesterday", "yesterday's stress": today is still the subject.
static YESTERDAY_NOT_DAY_RE: LazyLock<Regex> =
    LazyLock::new(|| text::re(r"\b(?:since|than|like|from|until|till) yesterday\b|\byesterday's\b"));
static TODAY_RE: LazyLock<Regex> = LazyLock::new(|| {
    text::re(
        r"\b(?:today|this morning|this afternoon|this evening|right now|now|tonight|so far|at the moment|currently|atm)\b",
    )
});
/// "last night" is the sleep before today; it moves the message to yesterday only when it is
/// about something other than sleep ("went out last night", "last night's run").
static LAST_NIGHT_EVENT_RE: LazyLock<Regex> = LazyLock::new(|| {
    text::re(
        r"\blast night\b.*\b(?:went|had|ate|party|gym|ran|dinner|drinks|out|met|walked|workout|worked out|played)\b|\b(?:went|had|ate|party|gym|ran|dinner|drinks|out|met|walked|workout|worked out|played)\b.*\blast night\b",
    )
});
static SLEEP_WORD_RE: LazyLock<Regex> =
    LazyLock::new(|| text::re(r"\b(?:sleep|slept|asleep|bed|woke|insomnia|awake|night's)\b"));

/// 0 for today, -1 when the message reports yesterday ("yesterday I went for a run").
fn day_offset(normalized: &str) -> i32 {
    let cleaned = YESTERDAY_NOT_DAY_RE.replace_all(normalized, " ");
    let yesterday = YESTERDAY_RE.is_match(&cleaned)
        || (LAST_NIGHT_EVENT_RE.is_match(&cleaned) && !SLEEP_WORD_RE.is_match(&cleaned));
    if yesterday && !TODAY_RE.is_match(&cleaned) { -1 } else { 0 }
}

/// Turns one message into a check-in: the rule tables, then the learned model for the six state
/// fields (valence, energy, stress, sleep_quality, hunger, exercise), which takes the rules'
/// answers as evidence. `missing` is left empty: which fields are required is the persona's
/// business, not the message's.
pub fn extract(message: &str) -> CheckIn {
    let rules = rules(message);
    let mut checkin = model::apply(message, &rules);
    if checkin != rules && !checkin.crisis {
        checkin.pillars = pillars::pillars(&text::normalize(message), &checkin);
    }
    checkin
}

/// The rule tables alone: what the model is trained on top of.
pub fn rules(message: &str) -> CheckIn {
    let normalized = text::normalize(message);
    let clauses = text::clauses(&normalized);
    // One crisis check for the whole assistant: the same phrase families the engine runs first.
    let crisis = crate::safety::assess(message).crisis;

    let (mood, valence) = feelings::mood_and_valence(&clauses);
    let sleep_hours = sleep::hours(&clauses, &normalized);
    let day_offset = day_offset(&normalized);
    let (exercise, activity) = exercise::exercise(&clauses, day_offset == 0);
    let mut checkin = CheckIn {
        mood,
        valence,
        energy: feelings::energy(&clauses),
        stress: feelings::stress(&clauses),
        sleep_quality: sleep::quality(&clauses, sleep_hours),
        sleep_hours,
        hunger: food::hunger(&clauses),
        meals: food::meals(&clauses, day_offset == 0),
        water: food::water(&clauses),
        exercise,
        activity,
        intentions: intentions::intentions(&clauses),
        pillars: Vec::new(),
        crisis,
        day_offset,
        missing: Vec::new(),
    };
    if checkin.hunger == Hunger::Unknown
        && !checkin.meals.is_empty()
        && checkin.meals.iter().all(|m| m.status == MealStatus::Skipped)
    {
        // A skipped meal with nothing eaten since implies hunger (docs/labelling.md); "wasn't
        // hungry so I skipped dinner" was already answered by the hunger rules.
        checkin.hunger = Hunger::Hungry;
    }
    if checkin.valence == Valence::Unknown {
        // Stress words are also negative valence and calm words positive (docs/labelling.md):
        // "can't stop overthinking" says how the writer feels even with no mood word.
        checkin.valence = match checkin.stress {
            Level::High | Level::Medium => Valence::Negative,
            Level::Low => Valence::Positive,
            Level::Unknown => Valence::Unknown,
        };
    }
    if !crisis {
        checkin.pillars = pillars::pillars(&normalized, &checkin);
    }
    if checkin.exercise == Exercise::Planned && checkin.intentions.is_empty() {
        // "yoga later" is a plan even without "going to".
        if let Some(name) = &checkin.activity {
            checkin.intentions.push(name.clone());
        }
    }
    checkin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkin::{Exercise, Hunger, Level, Meal, MealKind, MealStatus, Pillar, SleepQuality, Valence};

    fn meal(meal: MealKind, status: MealStatus) -> Meal {
        Meal { meal, status }
    }

    #[test]
    fn the_issue_example() {
        let c = extract("Kinda drained. Haven't eaten yet and didn't sleep much.");
        assert_eq!(c.mood.as_deref(), Some("drained"));
        // Tiredness is energy, not valence (docs/labelling.md).
        assert_eq!(c.valence, Valence::Unknown);
        assert_eq!(c.energy, Level::Low);
        assert_eq!(c.hunger, Hunger::Hungry);
        assert_eq!(c.sleep_quality, SleepQuality::Poor);
        assert_eq!(c.meals, vec![meal(MealKind::Meal, MealStatus::Skipped)]);
        assert_eq!(c.pillars, vec![Pillar::Nutrition, Pillar::Sleep]);
        assert!(!c.crisis);
        assert!(c.missing.is_empty(), "missing is the engine's business");
    }

    #[test]
    fn negation_flips_or_cancels() {
        assert_eq!(extract("didn't sleep badly").sleep_quality, SleepQuality::Good);
        assert_eq!(extract("didn't sleep well").sleep_quality, SleepQuality::Poor);
        assert_eq!(extract("not hungry").hunger, Hunger::NotHungry);
        assert_eq!(extract("skipped the gym").exercise, Exercise::None);
        assert_eq!(extract("never ate lunch").meals, vec![meal(MealKind::Lunch, MealStatus::Skipped)]);
        assert_eq!(extract("not stressed at all").stress, Level::Low);
        assert_eq!(extract("not tired").energy, Level::Medium);
        assert_eq!(extract("not tired at all").energy, Level::High);
        // Negation does not cross a clause or a question word.
        assert_eq!(extract("didn't run, but I'm tired").energy, Level::Low);
        assert_eq!(extract("no idea why I'm so tired").energy, Level::Low);
    }

    #[test]
    fn lists_share_their_negation() {
        let c = extract("skipped breakfast and lunch");
        assert_eq!(
            c.meals,
            vec![meal(MealKind::Breakfast, MealStatus::Skipped), meal(MealKind::Lunch, MealStatus::Skipped)]
        );
        let c = extract("no breakfast, no lunch, just coffee");
        assert!(c.meals.iter().all(|m| m.status == MealStatus::Skipped) && c.meals.len() == 2);
    }

    #[test]
    fn tense_separates_plans_from_reports() {
        let planned = extract("going to run later");
        assert_eq!((planned.exercise, planned.activity.as_deref()), (Exercise::Planned, Some("run")));
        let done = extract("ran 5k");
        assert_eq!((done.exercise, done.activity.as_deref()), (Exercise::Done, Some("run")));
        let yesterday = extract("yesterday I went for a run");
        assert_eq!((yesterday.exercise, yesterday.day_offset), (Exercise::Done, -1));
        assert_eq!(extract("was going to swim but it got cancelled").exercise, Exercise::None);
        assert_eq!(extract("ran 5k this morning, yoga later").exercise, Exercise::Done, "done beats planned");
        // Last night's sleep belongs to today's check-in.
        assert_eq!(extract("slept badly last night").day_offset, 0);
        assert_eq!(extract("was tired yesterday but today I feel great").day_offset, 0);
    }

    #[test]
    fn idioms_are_not_exercise() {
        for text in ["running late again", "ran out of milk", "had to run errands", "it all worked out in the end"] {
            assert_eq!(extract(text).exercise, Exercise::Unknown, "{text}");
        }
    }

    #[test]
    fn slang_and_emoji() {
        for (text, mood) in [
            ("knackered", "exhausted"),
            ("totally wiped", "exhausted"),
            ("zonked", "exhausted"),
            ("so hangry", "irritable"),
            ("😴", "tired"),
            ("🥱", "tired"),
            ("😫", "exhausted"),
            ("😊", "happy"),
            ("🙂", "content"),
            ("😢", "sad"),
        ] {
            assert_eq!(extract(text).mood.as_deref(), Some(mood), "{text}");
        }
        assert_eq!(extract("so hangry").hunger, Hunger::Hungry);
        let c = extract("smashed my workout 💪");
        assert_eq!((c.exercise, c.valence), (Exercise::Done, Valence::Positive));
        assert_eq!(extract("crushed it").valence, Valence::Positive);
        let c = extract("🏃 this morning, 🥗 for lunch, 💧💧");
        assert_eq!(c.exercise, Exercise::Done);
        assert_eq!(c.meals, vec![meal(MealKind::Lunch, MealStatus::Eaten)]);
        assert_eq!(c.water, Some(2.0));
        assert!(extract("🍕").meals.contains(&meal(MealKind::Meal, MealStatus::Eaten)));
        assert!(!extract("☕").pillars.contains(&Pillar::Hydration), "coffee is not water");
    }

    #[test]
    fn intensifiers_move_levels() {
        assert_eq!(extract("a bit stressed").stress, Level::Medium);
        assert_eq!(extract("so stressed").stress, Level::High);
        assert_eq!(extract("slightly tired").energy, Level::Medium);
        assert_eq!(extract("really tired").energy, Level::Low);
    }

    #[test]
    fn numbers_in_digits_and_words() {
        assert_eq!(extract("slept 5 hours").sleep_hours, Some(5.0));
        assert_eq!(extract("6h of sleep").sleep_hours, Some(6.0));
        assert_eq!(extract("slept six and a half hours").sleep_hours, Some(6.5));
        assert_eq!(extract("slept 5-6 hours").sleep_hours, Some(5.5));
        assert_eq!(extract("in bed by 11, up at 6").sleep_hours, Some(7.0));
        assert_eq!(extract("worked 10 hours").sleep_hours, None, "hours of work are not sleep");
        assert_eq!(extract("3 glasses of water").water, Some(3.0));
        assert_eq!(extract("two litres of water").water, Some(8.0));
        assert_eq!(extract("drank water").water, Some(1.0));
        assert_eq!(extract("no water all day").water, Some(0.0));
        assert_eq!(extract("3 cups of coffee").water, None);
        assert_eq!(extract("need to drink more water").water, None, "a plan is not a glass");
        assert_eq!(extract("slept 4 hours").sleep_quality, SleepQuality::Poor, "short sleep implies a poor night");
    }

    #[test]
    fn meals_eaten_skipped_and_not_yet() {
        assert_eq!(extract("haven't eaten").meals, vec![meal(MealKind::Meal, MealStatus::Skipped)]);
        assert_eq!(extract("haven't eaten").hunger, Hunger::Hungry);
        assert_eq!(extract("skipped breakfast").meals, vec![meal(MealKind::Breakfast, MealStatus::Skipped)]);
        assert_eq!(extract("had a salad for lunch").meals, vec![meal(MealKind::Lunch, MealStatus::Eaten)]);
        assert_eq!(extract("snacked on nuts").meals, vec![meal(MealKind::Snack, MealStatus::Eaten)]);
        assert!(extract("dinner with friends later").meals.is_empty(), "a planned meal is not eaten yet");
        assert!(extract("went for a walk at lunch").meals.is_empty(), "lunch as a time of day");
    }

    #[test]
    fn crisis_language_is_flagged_and_hyperbole_is_not() {
        for text in [
            "I want to kill myself",
            "i don't want to be here anymore",
            "thinking about suicide",
            "I've been self-harming again",
            "everyone would be better off without me",
            "I just want to die",
        ] {
            assert!(extract(text).crisis, "{text}");
        }
        for text in [
            "this deadline is killing me",
            "I could kill for a coffee",
            "dying of laughter",
            "killed it at the gym",
            "I'm dying for a nap",
            "suicide sprints at practice",
            "cut myself chopping onions",
        ] {
            assert!(!extract(text).crisis, "{text}");
        }
    }

    #[test]
    fn idioms_sarcasm_and_ratings_of_things() {
        // Idioms of mood say how the writer feels without a mood word.
        assert_eq!(rules("in a really good place right now").valence, Valence::Positive);
        assert_eq!(rules("not in a good place today").valence, Valence::Negative);
        assert_eq!(rules("honestly in a bit of a funk").valence, Valence::Negative);
        // A glowing opener before a mishap is sarcasm; before good news it is not.
        assert_eq!(rules("oh good, the printer is broken again").valence, Valence::Negative);
        assert_eq!(rules("oh good, the sun is out").valence, Valence::Positive);
        // A rating word before a thing rates the thing.
        assert_eq!(rules("lovely walk by the river").valence, Valence::Unknown);
        assert_eq!(rules("best sleep in ages").valence, Valence::Unknown);
        assert_eq!(rules("feeling strong today").valence, Valence::Unknown);
        // "not bad" is mildly good; "not too bad" stays in the middle.
        assert_eq!(rules("not bad!").valence, Valence::Positive);
        assert_eq!(rules("not too bad").valence, Valence::Neutral);
    }

    #[test]
    fn stress_without_a_stress_word_and_its_intensity() {
        for text in ["can't stop overthinking", "so behind on everything", "my mind won't shut off", "so nervous"] {
            let c = rules(text);
            // Stress words are also negative valence (docs/labelling.md).
            assert_eq!((c.stress, c.valence), (Level::High, Valence::Negative), "{text}");
        }
        for text in ["a little worried", "work stresses me a bit", "a touch of stress before the meeting"] {
            assert_eq!(rules(text).stress, Level::Medium, "{text}");
        }
        for text in ["not worried at all", "zero worries", "feeling grounded", "stress is gone after the holiday"] {
            assert_eq!(rules(text).stress, Level::Low, "{text}");
        }
    }

    #[test]
    fn a_crisis_message_gets_no_pillars() {
        assert!(extract("I want to end my life, can't sleep").pillars.is_empty());
    }

    #[test]
    fn intentions_are_the_users_own_plans() {
        assert_eq!(extract("going to bed early").intentions, vec!["go to bed early"]);
        assert_eq!(extract("will call mum").intentions, vec!["call mum"]);
        assert_eq!(extract("I'll call mum and go to bed early").intentions, vec!["call mum", "go to bed early"]);
        assert!(extract("it's going to be a long day").intentions.is_empty());
        assert!(extract("was going to run but didn't").intentions.is_empty());
        assert!(extract("I want to die").intentions.is_empty());
    }

    #[test]
    fn mood_prefers_what_follows_but() {
        // The rule tables; the model weighs their answer with the words (see model.rs).
        let c = rules("tired but happy");
        assert_eq!((c.mood.as_deref(), c.valence), (Some("happy"), Valence::Positive));
        let c = rules("slightly tired but ok");
        assert_eq!((c.mood.as_deref(), c.valence), (Some("okay"), Valence::Neutral));
        assert_eq!(extract("spent the evening reading").mood, None, "'spent' is not a feeling there");
        assert_eq!(extract("good sleep").mood, None, "'good' names the sleep, not the user");
    }

    #[test]
    fn someone_elses_state_is_not_the_users() {
        let c = extract("my kid was sick so I was up all night");
        assert_eq!((c.mood, c.sleep_quality), (None, SleepQuality::Poor));
        assert_eq!(extract("my partner is so stressed").stress, Level::Unknown);
        assert_eq!(extract("I've been drinking more water lately").water, None, "a habit is not today's glass");
    }

    #[test]
    fn tracker_style_answers() {
        let c = rules("Sleep: 6h. Mood: meh. Energy: low. Stress: high. Water: 5 glasses");
        assert_eq!(c.sleep_hours, Some(6.0));
        assert_eq!(c.mood.as_deref(), Some("meh"));
        assert_eq!((c.energy, c.stress, c.water), (Level::Low, Level::High, Some(5.0)));
    }

    #[test]
    fn deterministic_and_total() {
        for text in ["", "   ", "?!", "🙂🙂", "a".repeat(10_000).as_str(), "ünïcödé ✓ 日本語"] {
            assert_eq!(extract(text), extract(text));
        }
        assert_eq!(extract(""), CheckIn::default());
    }
}
