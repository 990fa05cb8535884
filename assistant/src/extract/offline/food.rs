//! Hunger, meals and water.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{Clause, FOODS, Rules, abandoned, future, negated, number, re};
use crate::checkin::{Hunger, Meal, MealKind, MealStatus};

const HUNGRY: Option<Hunger> = Some(Hunger::Hungry);
const NOT_HUNGRY: Option<Hunger> = Some(Hunger::NotHungry);

const HUNGER: &[(&str, Option<Hunger>, Option<Hunger>)] = &[
    (
        "hungry|starving|starved|famished|ravenous|peckish|hangry|stomach (?:is )?(?:growling|rumbling)|need (?:some )?food|could eat|craving food|need (?:my )?(?:lunch|dinner|breakfast|a snack|to eat|something to eat)",
        HUNGRY,
        NOT_HUNGRY,
    ),
    // Not having eaten yet is the everyday way of saying one is hungry.
    (
        r"(?:haven't|have not|hadn't|not) (?:eaten|had a bite|had anything to eat|had any food)(?: (?:anything|yet|all day|since|today|a thing|at all|much|properly)\b|$)|nothing to eat|no food (?:all day|yet|today)|forgot to eat",
        HUNGRY,
        None,
    ),
    (
        r"(?:i'm|i am|feel|feeling|so|too|pretty|very|really|totally|completely|already|now|still|properly) (?:full|stuffed)|^(?:full|stuffed)|no appetite|lost my appetite|not much (?:of an )?appetite|ate too much|overate|over-ate|satisfied",
        NOT_HUNGRY,
        HUNGRY,
    ),
    // Cravings and no time to eat are hunger too.
    (
        r"craving|snacky|could (?:murder|eat) a|feening|no time to eat|(?:only|nothing but) (?:had )?coffee|appetite is back",
        HUNGRY,
        None,
    ),
    // A big meal says the user is not hungry now; so does being unable to eat.
    (
        r"(?:big|huge|filling|hearty|proper|massive|large|heavy|giant) (?:\w+ ){0,2}(?:breakfast|lunch|dinner|meal|brunch|bowl|plate|snack|stew|feast)|ate (?:a ton|so much|loads|a lot|way too much)|too (?:nervous|anxious|sick|upset) to eat|can't eat|appetite is gone|kills my appetite|^ful$|full from|good on food",
        NOT_HUNGRY,
        None,
    ),
];

static HUNGER_RULES: LazyLock<Rules<Hunger>> = LazyLock::new(|| Rules::new(HUNGER));

pub(crate) fn hunger(clauses: &[Clause]) -> Hunger {
    let hits = HUNGER_RULES.scan(clauses);
    // "full of joy" is not about food.
    let mut hits = hits.iter().filter(|h| !clauses[h.clause].text[h.end..].starts_with(" of"));
    hits.next_back().map_or(Hunger::Unknown, |h| h.value)
}

static MEAL_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(breakfast|brunch|lunch|lunchtime|dinner|snacks?|snacked|snacking)\b"));
/// What may stand between the meals of one list ("breakfast, lunch or dinner").
static LIST_GLUE_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:\s*(?:,|and|or|nor|&|the|my|a|any|no|even)\s*)+$"));
/// Verbs and phrases that say a meal did not happen.
static SKIP_BEFORE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:skip|skipped|skipping|skips|missed|miss|missing|forgot|forgotten|forget|no time for|passed on|pass on|without|never got|didn't get|couldn't get|instead of|not had|haven't had|too busy for|no chance for)\b(?:\s+\w+){0,4}\s*$",
    )
});
static SKIP_AFTER_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(?:was |got )?(?:skipped|missed|didn't happen|never happened|nope|none|nothing|not yet|isn't happening|wasn't happening|- nothing|: nothing)\b",
    )
});
/// The meal names a time, not a meal: "walked at lunch", "hungry before dinner".
static TIME_REF_BEFORE_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:before|by|until|till|til|at|during|around|over|on my|on the|near|through)\s*$"));
static TIME_REF_AFTER_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:break|time|meeting|hour|slot)\b"));
/// Past eating verbs: a meal with one of these happened even in a clause about later.
static FOOD_RE: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"\b(?:{})\b", FOODS.join("|"))));
static ATE_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:ate|eaten|had|grabbed|enjoyed|finished|made|cooked|devoured|ordered|got)\b"));

fn meal_kind(word: &str) -> MealKind {
    match word {
        "breakfast" | "brunch" => MealKind::Breakfast,
        "lunch" | "lunchtime" => MealKind::Lunch,
        "dinner" => MealKind::Dinner,
        _ => MealKind::Snack,
    }
}

/// Generic eating: "ate", "haven't eaten", "had pizza".
static ATE_GENERIC_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b(?:ate|eaten|eat|eating)\b|\b(?:had|drank|grabbed|got)\b.* and (?:a |an |some )?(?:{0})\b|\b(?:had|grabbed|got|made|cooked|ordered|enjoyed|munched|devoured|having|drank)(?: \w+){{0,4}} (?:{0}|fast food|junk food|bite|something)\b",
        FOODS.join("|")
    ))
});
static NOT_ATE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:nothing to eat|no food|skipped (?:a |my |all )?meals?|skipping meals|missed (?:a )?meals?|forgot to eat|not eaten)\b",
    )
});

static YESTERDAY_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:yesterday|yesterday's)\b"));

/// Meals mentioned with what happened to them, in message order; one entry per kind (the last
/// word on it wins). A generic "ate" is dropped when a named meal already says as much. When the
/// message is about today, yesterday's meals are left out.
pub(crate) fn meals(clauses: &[Clause], today: bool) -> Vec<Meal> {
    let mut found: Vec<Meal> = Vec::new();
    let mut push = |meal: Meal| {
        found.retain(|m| m.meal != meal.meal);
        found.push(meal);
    };
    for clause in clauses {
        let t = clause.text.as_str();
        if today && YESTERDAY_RE.is_match(t) {
            continue;
        }
        let plan = (clause.plan || future(t) || super::text::wish(t)) && !ATE_RE.is_match(t) && !negated(t);
        let matches: Vec<_> = MEAL_RE.find_iter(t).collect();
        let mut i = 0;
        let mut named_in_clause = false;
        // Words before a meal reach back only to the previous meal: in "skipped lunch, pasta
        // for dinner" the skipping is lunch's alone.
        let mut segment_start = 0;
        while i < matches.len() {
            // A list of meals shares the words in front of its first member.
            let mut j = i;
            while j + 1 < matches.len() && LIST_GLUE_RE.is_match(&t[matches[j].end()..matches[j + 1].start()]) {
                j += 1;
            }
            let before = &t[segment_start..matches[i].start()];
            let after = &t[matches[j].end()..];
            // "a burrito at lunch" is lunch eaten; "walked at lunch" is a time of day.
            let time_ref = TIME_REF_BEFORE_RE.is_match(before) && !ATE_RE.is_match(before) && !FOOD_RE.is_match(before)
                || TIME_REF_AFTER_RE.is_match(after);
            let since = before.trim_end().ends_with("since") || before.trim_end().ends_with("after");
            let skipped = SKIP_BEFORE_RE.is_match(before)
                || negated(before)
                || SKIP_AFTER_RE.is_match(after)
                || abandoned(before);
            let status = if since {
                Some(MealStatus::Eaten)
            } else if skipped {
                Some(MealStatus::Skipped)
            } else if plan || time_ref {
                None
            } else {
                Some(MealStatus::Eaten)
            };
            named_in_clause = true;
            if let Some(status) = status {
                for m in &matches[i..=j] {
                    push(Meal { meal: meal_kind(m.as_str()), status });
                }
            }
            segment_start = matches[j].end();
            i = j + 1;
        }
        if named_in_clause {
            continue;
        }
        if NOT_ATE_RE.is_match(t) {
            push(Meal { meal: MealKind::Meal, status: MealStatus::Skipped });
        } else if let Some(m) = ATE_GENERIC_RE.find(t) {
            let before = &t[..m.start()];
            if negated(before) || abandoned(before) {
                push(Meal { meal: MealKind::Meal, status: MealStatus::Skipped });
            } else if !plan && !super::text::wish(t) && !super::text::habit(t) && m.as_str() != "eat" {
                push(Meal { meal: MealKind::Meal, status: MealStatus::Eaten });
            }
        }
    }
    let named_eaten = found.iter().any(|m| m.meal != MealKind::Meal && m.status == MealStatus::Eaten);
    found.retain(|m| !(m.meal == MealKind::Meal && m.status == MealStatus::Eaten && named_eaten));
    found
}

/// An amount with a unit: "3 glasses", "2 litres", "500 ml", "a bottle".
static AMOUNT_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d+(?:\.\d+)?) ?(glasses|cups|bottles|litres|ml|pints|oz)\b(?: of (\w+))?"));
static WATER_WORD_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:water|h2o|hydrated|hydrating|hydration)\b"));
static OTHER_DRINK_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:coffee|coffees|tea|teas|wine|beer|beers|juice|soda|coke|milk|cocktails?|smoothies?|kombucha|lager|cider|espresso|latte|lattes|energy drinks?|booze|alcohol|vodka|gin|whisky|prosecco)\b",
    )
});
/// Drinking water without an amount: one glass, the data model's convention.
static PLAIN_WATER_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:drank|drunk|had|drinking|sipped|drink|sipping|having|got)(?: some| a bit of| a little| more| a sip of| a drop of| any| enough)? water\b|\bhydrated\b",
    )
});
/// Vague plenty ("loads of water"): known to be some, not how much.
static VAGUE_WATER_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:lots|loads|plenty|tons|heaps|a lot|litres|gallons) of water\b|\bwell hydrated\b"));
static NO_WATER_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:no water|zero water|not a drop|forgot to drink(?: any)?(?: water)?|haven't (?:drunk|had|drank)(?: any)? water|didn't (?:drink|have)(?: any)? water|no h2o|not had any water|not drunk any water)\b",
    )
});
static WATERDROP_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\bwaterdrop\b"));

/// Glasses of water in one unit: a glass or cup is 250 ml, a bottle 500 ml, a pint 568 ml.
fn glasses(amount: f64, unit: &str) -> f64 {
    let g = match unit {
        "glasses" | "cups" => amount,
        "bottles" => amount * 2.0,
        "litres" => amount * 4.0,
        "ml" => amount / 250.0,
        "pints" => amount * 568.0 / 250.0,
        "oz" => amount / 8.0,
        _ => amount,
    };
    (g * 2.0).round() / 2.0
}

/// Glasses of water drunk: stated amounts are summed, a plain "drank water" is 1, "no water"
/// is 0; plans ("need to drink more water") and vague plenty say nothing.
pub(crate) fn water(clauses: &[Clause]) -> Option<f64> {
    let mut total: Option<f64> = None;
    let mut drops = 0.0;
    let add = |g: f64, total: &mut Option<f64>| *total = Some(total.unwrap_or(0.0) + g);
    for clause in clauses {
        let t = clause.text.as_str();
        drops += WATERDROP_RE.find_iter(t).count() as f64;
        let reported = t.contains("drank") || t.contains("had");
        if (future(t) || super::text::wish(t)) && !reported || super::text::habit(t) {
            continue;
        }
        if NO_WATER_RE.is_match(t) {
            add(0.0, &mut total);
            continue;
        }
        let mut amount_found = false;
        for c in AMOUNT_RE.captures_iter(t) {
            let about_water = match c.get(3).map(|m| m.as_str()) {
                Some("water" | "h2o") => true,
                Some(_) => false,
                None => {
                    WATER_WORD_RE.is_match(t)
                        || (matches!(&c[2], "litres" | "ml" | "bottles") && !OTHER_DRINK_RE.is_match(t))
                }
            };
            if !about_water || negated(&t[..c.get(0).map_or(0, |m| m.start())]) {
                continue;
            }
            if let Some(n) = number(&c[1]) {
                add(glasses(n, &c[2]), &mut total);
                amount_found = true;
            }
        }
        // Vague plenty ("loads of water") is some water, amount unknown: no number is invented.
        if amount_found || VAGUE_WATER_RE.is_match(t) {
            continue;
        }
        if let Some(m) = PLAIN_WATER_RE.find(t) {
            add(if negated(&t[..m.start()]) { 0.0 } else { 1.0 }, &mut total);
        }
    }
    // Each 💧 is a glass, when the words give no amount.
    total.or((drops > 0.0).then_some(drops))
}
