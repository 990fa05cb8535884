//! Wellbeing pillars a message touches, from its fields and its words.

use std::sync::LazyLock;

use regex::Regex;

use super::text::re;
use crate::checkin::{CheckIn, Exercise, Hunger, Level, Pillar, SleepQuality};

/// Words that touch a pillar even when no field captures them ("called mum", "deadline").
const WORDS: &[(Pillar, &str)] = &[
    (
        Pillar::Sleep,
        r"sleep|slept|sleeping|asleep|stayed up|staying up|sleepy|nap|napped|napping|insomnia|bed|bedtime|woke|waking|kip|shut-eye|early night|rested|overslept|night's|all-nighter",
    ),
    (
        Pillar::Nutrition,
        r"ate|eat|eaten|eating|food|meal|meals|breakfast|lunch|dinner|snack|snacks|snacked|hungry|starving|diet|vegetables|veggies|fruit|salad|pizza|sugar|junk food|takeaway|cooked|cooking|appetite|protein|calories|hangry|peckish",
    ),
    (
        Pillar::PhysicalActivity,
        r"exercise|exercised|workout|worked out|gym|run|ran|running|jog|jogged|walk|walked|walking|yoga|pilates|swim|swam|swimming|cycling|bike|hike|hiked|steps|training|stretch|stretched|sport|active|lifting|weights",
    ),
    (
        Pillar::Stress,
        r"stress|stressed|stressful|anxious|anxiety|overwhelmed|panic|panicking|worried|worry|tense|pressure|frazzled|burntout|relax|relaxed|calm|meditate|meditated|meditation|breathing practice|mindfulness|nervous|on edge",
    ),
    (
        Pillar::Social,
        r"friends?|mates?|buddy|family|mum|mom|dad|mother|father|parents|sister|brother|siblings?|grandma|gran|nan|grandpa|kids?|son|daughter|children|partner|wife|husband|boyfriend|girlfriend|bf|gf|fiancée?|a date|date night|lads|the guys|the girls|teammates|team mates|party|hung out|hang out|hanging out|met up|meet up|catch up|caught up|visited|visit|guests|lonely|loneliness|alone|isolated|social|socialise|socialize|pub|drinks with|coffee with|dinner with|lunch with|brunch with|chat with|chatted with|team dinner|colleagues? (?:over|for) (?:lunch|dinner|drinks)",
    ),
    (
        Pillar::WorkBalance,
        r"job|office|boss|manager|meetings?|deadlines?|project|clients?|emails?|inbox|shift|overtime|workload|coworkers?|standup|presentation|interview|commute|commuting|lunch break|work-life|work|worked|working|career|promotion|wfh|working late|worked late|work late|at work|from work|the work|much work|of work|work is|work was|work's|busy at work|workday|work day|back-to-back|logged off|day off|holiday|vacation|annual leave|pto|9 to 5|burntout|swamped|slammed|snowed under|hours at",
    ),
    (Pillar::Hydration, r"water|hydrated|hydrating|hydration|dehydrated|thirsty|waterdrop|h2o"),
    (
        Pillar::Purpose,
        r"purpose|meaning|meaningful|meaningless|pointless|fulfilling|fulfilled|unfulfilled|goals?|volunteer|volunteered|volunteering|journal|journaled|journalled|journaling|journalling|gratitude|achievement|progress|learning|learned|learnt|studied|studying|online course|a course|hobby|painting|guitar|piano|practised|practiced|side project|passion|values|direction|stuck in a rut|spiritual|church|prayed|pray|mission|growth|creative",
    ),
];

/// Time references that name a pillar's word without touching it: "run after work", "walk at lunch".
static TIME_REF_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:after|before|to|from) work\b|\bwork(?:ed|ing|s)? out\b|\b(?:at|before|after|by|until|till|during|around) (?:lunch|lunchtime|dinner|breakfast)\b|\bfood bank\b",
    )
});

static WORD_RES: LazyLock<Vec<(Pillar, Regex)>> =
    LazyLock::new(|| WORDS.iter().map(|(p, w)| (*p, re(&format!(r"\b(?:{w})\b")))).collect());

/// A crisis message is about safety, not pillars: none are inferred from it.
pub(crate) fn pillars(text: &str, c: &CheckIn) -> Vec<Pillar> {
    let mut out: Vec<Pillar> = Vec::new();
    let mut add = |p: Pillar| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    if c.sleep_quality != SleepQuality::Unknown || c.sleep_hours.is_some() {
        add(Pillar::Sleep);
    }
    if c.hunger != Hunger::Unknown || !c.meals.is_empty() {
        add(Pillar::Nutrition);
    }
    if c.exercise != Exercise::Unknown || c.activity.is_some() {
        add(Pillar::PhysicalActivity);
    }
    if c.stress != Level::Unknown {
        add(Pillar::Stress);
    }
    if c.water.is_some() {
        add(Pillar::Hydration);
    }
    let text = TIME_REF_RE.replace_all(text, " ");
    for (pillar, re) in WORD_RES.iter() {
        if re.is_match(&text) {
            add(*pillar);
        }
    }
    out.sort();
    out
}
