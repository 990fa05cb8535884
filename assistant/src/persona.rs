//! Which persona speaks: the registry of known Personas, the active one (or the built-in
//! default), check-in prompt choice, and the tone-aware reply templates used without an LLM.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rand::Rng;
use rand::seq::IndexedRandom;
use wellbeing_crds::Persona;
use wellbeing_crds::persona::{CheckInSchedule, ModelPreferences, PersonaSpec, RequiredField, TimeWindow};

use crate::checkin::{CheckIn, Exercise, Hunger, Level, MealStatus, SleepQuality, Valence};

/// Name of the built-in persona used when no Persona is active.
pub const DEFAULT_PERSONA_NAME: &str = "builtin-default";

/// Check-in prompts used when the active persona lists none.
pub const BUILTIN_PROMPTS: &[&str] = &[
    "Hey! How are you doing right now? Energy, mood, food, sleep: whatever's on your mind.",
    "Quick check-in: how's your day going so far?",
    "How are you feeling at the moment? Eaten anything, moved at all, slept OK?",
    "Time for a little check-in. How's your energy and mood right now?",
    "Hi! What's the state of things today: tired, wired, hungry, great?",
];

/// The built-in persona's system prompt.
const DEFAULT_SYSTEM_PROMPT: &str = "You are a friendly personal wellbeing assistant. You help one person notice \
how they are doing (mood, energy, sleep, food, water, movement, stress) and keep up the habits they care about. \
You are supportive and practical, never preachy. You do not diagnose or give medical advice.";

/// The persona used when none is active: warm tone, check-ins 09:00 to 21:00 in `time_zone`,
/// asking about mood, sleep and energy.
pub fn default_persona(time_zone: &str) -> Persona {
    Persona::new(
        DEFAULT_PERSONA_NAME,
        PersonaSpec {
            display_name: "Wellbeing assistant".to_string(),
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_string(),
            tone: "warm, brief, encouraging".to_string(),
            active: true,
            check_ins: CheckInSchedule {
                time_zone: time_zone.to_string(),
                windows: vec![TimeWindow { start: "09:00".to_string(), end: "21:00".to_string() }],
                per_day: 3,
                min_gap_minutes: 90,
                quiet_days: Vec::new(),
                channel: Default::default(),
                prompts: Vec::new(),
            },
            required_fields: vec![RequiredField::Mood, RequiredField::Sleep, RequiredField::Energy],
            models: ModelPreferences::default(),
            crisis_resources: Vec::new(),
        },
    )
}

/// Why the active persona is the one it is (for `/readyz` and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonaSource {
    /// Exactly one known Persona has `spec.active: true`.
    Active,
    /// No Persona is active: the built-in default speaks.
    Default,
    /// Two or more are active: none is routed to, the built-in default speaks.
    Conflict,
}

/// The persona that shapes the next interaction.
#[derive(Clone, Debug)]
pub struct ActivePersona {
    pub persona: Arc<Persona>,
    pub source: PersonaSource,
    /// `namespace/name` of every active Persona when `source` is `Conflict`.
    pub conflicting: Vec<String>,
}

impl ActivePersona {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.persona.metadata.name.as_deref().unwrap_or(DEFAULT_PERSONA_NAME)
    }

    /// `generation-hash`, recorded with every interaction this persona shapes.
    pub fn version(&self) -> String {
        self.persona.version()
    }

    pub fn spec(&self) -> &PersonaSpec {
        &self.persona.spec
    }

    /// Whether the built-in default is speaking (no active persona, or a conflict).
    pub fn is_default(&self) -> bool {
        self.source != PersonaSource::Active
    }

    /// The persona's time zone; UTC when it does not parse (the CRD validates only non-emptiness).
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.persona.spec.check_ins.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn tone(&self) -> Tone {
        Tone::parse(&self.persona.spec.tone)
    }
}

/// Known Personas, kept current by whoever watches them (a kube reflector in the cluster, the
/// manifests folder in embedded mode). Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct PersonaRegistry {
    inner: Arc<RwLock<Inner>>,
}

struct Inner {
    personas: BTreeMap<String, Arc<Persona>>,
    default: Arc<Persona>,
}

impl std::fmt::Debug for PersonaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("PersonaRegistry").field("personas", &inner.personas.keys().collect::<Vec<_>>()).finish()
    }
}

impl Default for PersonaRegistry {
    fn default() -> Self {
        PersonaRegistry::new(default_persona("UTC"))
    }
}

fn key(persona: &Persona) -> String {
    format!(
        "{}/{}",
        persona.metadata.namespace.as_deref().unwrap_or(""),
        persona.metadata.name.as_deref().unwrap_or("")
    )
}

impl PersonaRegistry {
    /// An empty registry that falls back to `default`.
    pub fn new(default: Persona) -> PersonaRegistry {
        PersonaRegistry {
            inner: Arc::new(RwLock::new(Inner { personas: BTreeMap::new(), default: Arc::new(default) })),
        }
    }

    // A panic while holding the lock cannot leave the map half-updated (every write is a single
    // insert/remove/swap), so a poisoned lock is safe to keep using.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replace everything known (a reflector's initial list, a re-read of the manifests folder).
    pub fn replace_all(&self, personas: Vec<Persona>) {
        let map = personas.into_iter().map(|p| (key(&p), Arc::new(p))).collect();
        self.write().personas = map;
    }

    /// Add or update one Persona.
    pub fn upsert(&self, persona: Persona) {
        self.write().personas.insert(key(&persona), Arc::new(persona));
    }

    /// Forget one Persona by namespace (empty for none) and name.
    pub fn remove(&self, namespace: Option<&str>, name: &str) {
        self.write().personas.remove(&format!("{}/{}", namespace.unwrap_or(""), name));
    }

    /// Every known Persona.
    pub fn all(&self) -> Vec<Arc<Persona>> {
        self.read().personas.values().cloned().collect()
    }

    /// The single active Persona, or the built-in default (also when two are active).
    pub fn active(&self) -> ActivePersona {
        let inner = self.read();
        let active: Vec<(&String, &Arc<Persona>)> = inner.personas.iter().filter(|(_, p)| p.spec.active).collect();
        match active.as_slice() {
            [(_, persona)] => {
                ActivePersona { persona: Arc::clone(persona), source: PersonaSource::Active, conflicting: Vec::new() }
            }
            [] => ActivePersona {
                persona: Arc::clone(&inner.default),
                source: PersonaSource::Default,
                conflicting: Vec::new(),
            },
            many => ActivePersona {
                persona: Arc::clone(&inner.default),
                source: PersonaSource::Conflict,
                conflicting: many.iter().map(|(k, _)| k.trim_start_matches('/').to_string()).collect(),
            },
        }
    }
}

/// Pick one check-in prompt: uniformly among the persona's prompts, or the built-ins.
pub fn choose_prompt(spec: &PersonaSpec, rng: &mut impl Rng) -> String {
    let own: Vec<&str> = spec.check_ins.prompts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect();
    let pool: &[&str] = if own.is_empty() { BUILTIN_PROMPTS } else { &own };
    pool.choose(rng).copied().unwrap_or(BUILTIN_PROMPTS[0]).to_string()
}

/// The register the offline templates speak in, read from the persona's free-text `tone`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// "warm", "kind", "encouraging" (the default).
    Warm,
    /// "playful", "fun", "cheeky", "casual".
    Playful,
    /// "direct", "brief", "concise", "no-nonsense", "matter-of-fact".
    Direct,
    /// "calm", "gentle", "soft", "soothing".
    Calm,
}

impl Tone {
    /// The first tone word that names a register wins; anything unknown is warm.
    pub fn parse(tone: &str) -> Tone {
        for word in tone.to_lowercase().split(|c: char| !c.is_alphanumeric() && c != '-') {
            match word {
                "playful" | "fun" | "funny" | "cheeky" | "casual" | "silly" => return Tone::Playful,
                "direct" | "concise" | "no-nonsense" | "matter-of-fact" | "blunt" | "terse" => return Tone::Direct,
                "calm" | "gentle" | "soft" | "soothing" | "quiet" => return Tone::Calm,
                "warm" | "kind" | "encouraging" | "friendly" => return Tone::Warm,
                _ => {}
            }
        }
        Tone::Warm
    }
}

/// What the check-in says, as short phrases: states ("tired", "hungry") then events ("slept
/// badly", "skipped breakfast").
pub fn describe(c: &CheckIn) -> (Vec<String>, Vec<String>) {
    let mut states = Vec::new();
    let mut events = Vec::new();
    match c.energy {
        Level::Low => states.push("tired".to_string()),
        Level::High => states.push("full of energy".to_string()),
        _ => {}
    }
    match c.stress {
        Level::High => states.push("stressed".to_string()),
        Level::Low => states.push("fairly relaxed".to_string()),
        _ => {}
    }
    if c.hunger == Hunger::Hungry {
        states.push("hungry".to_string());
    }
    if let Some(mood) = c.mood.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        let mood = mood.to_lowercase();
        let redundant = states.iter().any(|s| s == &mood)
            || (mood == "tired" && c.energy == Level::Low)
            || (mood == "stressed" && c.stress == Level::High);
        if !redundant && mood.len() <= 24 {
            states.insert(0, format!("feeling {mood}"));
        }
    } else {
        match c.valence {
            Valence::Positive => states.insert(0, "in a good mood".to_string()),
            Valence::Negative => states.insert(0, "having a rough time".to_string()),
            _ => {}
        }
    }
    match (c.sleep_quality, c.sleep_hours) {
        (SleepQuality::Poor, Some(h)) => events.push(format!("slept badly (about {})", hours(h))),
        (SleepQuality::Poor, None) => events.push("slept badly".to_string()),
        (SleepQuality::Good, Some(h)) => events.push(format!("slept well (about {})", hours(h))),
        (SleepQuality::Good, None) => events.push("slept well".to_string()),
        (_, Some(h)) => events.push(format!("got about {} of sleep", hours(h))),
        (_, None) => {}
    }
    for meal in &c.meals {
        let name = serde_json::to_value(meal.meal).ok().and_then(|v| v.as_str().map(str::to_string));
        let name = name.unwrap_or_default();
        match (meal.status, name.as_str()) {
            (MealStatus::Skipped, "meal") => events.push("haven't eaten".to_string()),
            (MealStatus::Skipped, n) => events.push(format!("skipped {n}")),
            (MealStatus::Eaten, "meal") => events.push("had something to eat".to_string()),
            (MealStatus::Eaten, n) => events.push(format!("had {n}")),
        }
    }
    if let Some(w) = c.water {
        if w == 0.0 {
            events.push("haven't had any water".to_string());
        } else {
            events.push(format!("had {} of water", count(w, "glass", "glasses")));
        }
    }
    let activity = c.activity.as_deref().map(str::trim).filter(|a| !a.is_empty());
    match (c.exercise, activity) {
        (Exercise::Done, Some(a)) => events.push(format!("got {} in", activity_phrase(a, "some"))),
        (Exercise::Done, None) => events.push("got some exercise in".to_string()),
        (Exercise::Planned, Some(a)) => events.push(format!("are planning {}", activity_phrase(a, "some"))),
        (Exercise::Planned, None) => events.push("are planning to move later".to_string()),
        (Exercise::None, _) => events.push("haven't exercised".to_string()),
        (Exercise::Unknown, _) => {}
    }
    (states, events)
}

/// "a run", "a gym session", "some yoga": countable activities get "a", the rest `mass`.
fn activity_phrase(activity: &str, mass: &str) -> String {
    const MASS: &[&str] = &["yoga", "pilates", "cardio", "crossfit", "tai chi", "exercise", "weights", "hiit"];
    let a = activity.to_lowercase();
    if a == "gym" {
        "a gym session".to_string()
    } else if a.ends_with("ing") || MASS.contains(&a.as_str()) {
        format!("{mass} {a}")
    } else {
        let article = if a.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {a}")
    }
}

fn hours(h: f64) -> String {
    count(h, "hour", "hours")
}

fn count(n: f64, one: &str, many: &str) -> String {
    let shown = if n.fract() == 0.0 { format!("{n:.0}") } else { format!("{n:.1}") };
    if n == 1.0 { format!("{shown} {one}") } else { format!("{shown} {many}") }
}

/// "a", "a and b", "a, b and c".
pub fn join_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// "Sounds like you're tired, hungry and slept badly." `None` when nothing was understood.
pub fn summary(c: &CheckIn) -> Option<String> {
    let (states, events) = describe(c);
    if states.is_empty() && events.is_empty() {
        return None;
    }
    let all: Vec<String> = states.iter().chain(events.iter()).cloned().collect();
    let lead = if states.is_empty() { "you" } else { "you're" };
    Some(format!("{lead} {}", join_list(&all)))
}

/// One small, practical nudge (never a diagnosis), or none.
fn nudge(c: &CheckIn, tone: Tone) -> Option<&'static str> {
    let skipped_meal = c.meals.iter().any(|m| m.status == MealStatus::Skipped);
    let ate = c.meals.iter().any(|m| m.status == MealStatus::Eaten);
    Some(if c.hunger == Hunger::Hungry || (skipped_meal && !ate) {
        match tone {
            Tone::Playful => "Feed the human soon, okay? 🍽️",
            Tone::Direct => "Eat something soon.",
            Tone::Calm => "When you can, a proper meal might help.",
            Tone::Warm => "Maybe grab something to eat when you get a moment.",
        }
    } else if c.stress == Level::High {
        match tone {
            Tone::Playful => "Maybe a five-minute walk to shake it off?",
            Tone::Direct => "A short break could help.",
            Tone::Calm => "A few slow breaths or a short walk might take the edge off.",
            Tone::Warm => "A short break or a little walk might take the edge off.",
        }
    } else if c.sleep_quality == SleepQuality::Poor || c.energy == Level::Low {
        match tone {
            Tone::Playful => "An early night could work wonders. 😴",
            Tone::Direct => "Consider an early night.",
            Tone::Calm => "Go easy on yourself today; an early night might help.",
            Tone::Warm => "Go easy on yourself today, and maybe aim for an early night.",
        }
    } else if c.water == Some(0.0) {
        match tone {
            Tone::Playful => "Water break! 💧",
            Tone::Direct => "Drink some water.",
            Tone::Calm => "A glass of water might feel good.",
            Tone::Warm => "A glass of water might be nice.",
        }
    } else if c.exercise == Exercise::Done {
        match tone {
            Tone::Playful => "Look at you go! 💪",
            Tone::Direct => "Good work.",
            Tone::Calm => "That's lovely to hear.",
            Tone::Warm => "Nice work getting moving!",
        }
    } else {
        return None;
    })
}

/// The offline reply: an opener in the persona's tone, what was understood, one nudge.
pub fn template_reply(c: &CheckIn, tone: Tone) -> String {
    let opener = match tone {
        Tone::Playful => "Got it! 🙌",
        Tone::Direct => "Noted.",
        Tone::Calm => "Thank you for sharing.",
        Tone::Warm => "Thanks for checking in.",
    };
    let mut out = opener.to_string();
    match summary(c) {
        Some(s) => {
            out.push_str(" Sounds like ");
            out.push_str(&s);
            out.push('.');
        }
        None => out.push_str(match tone {
            Tone::Direct => " Logged.",
            _ => " I've logged it.",
        }),
    }
    if let Some(n) = nudge(c, tone) {
        out.push(' ');
        out.push_str(n);
    }
    out
}

/// The question for each field a persona can require.
fn field_question(field: &str) -> &'static str {
    match field {
        "mood" => "how are you feeling overall",
        "energy" => "how's your energy",
        "stress" => "how stressed are you feeling",
        "sleep" => "how did you sleep",
        "hunger" => "have you eaten",
        "meals" => "what have you eaten so far today",
        "water" => "how much water have you had",
        "exercise" => "how are you feeling about exercise today",
        _ => "anything else you'd like to add",
    }
}

/// The one follow-up question about the first (at most two) missing fields.
pub fn followup_question(missing: &[String], tone: Tone) -> Option<String> {
    let asked: Vec<String> = missing.iter().take(2).map(|f| field_question(f).to_string()).collect();
    if asked.is_empty() {
        return None;
    }
    let mut question = join_list(&asked);
    if let Some(first) = question.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Some(match tone {
        Tone::Playful => format!("One more thing: {}? 🤔", lowercase_first(&question)),
        Tone::Direct => format!("{question}?"),
        Tone::Calm => format!("If you'd like to share: {}?", lowercase_first(&question)),
        Tone::Warm => format!("And {}?", lowercase_first(&question)),
    })
}

fn lowercase_first(s: &str) -> String {
    let mut out = s.to_string();
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkin::{Exercise, Meal, MealKind};
    use rand::SeedableRng;

    fn persona(name: &str, active: bool) -> Persona {
        let mut p = default_persona("Europe/Berlin");
        p.metadata.name = Some(name.to_string());
        p.metadata.namespace = Some("wb".to_string());
        p.spec.active = active;
        p
    }

    #[test]
    fn one_active_persona_is_routed_to() {
        let reg = PersonaRegistry::default();
        assert_eq!(reg.active().source, PersonaSource::Default);
        assert_eq!(reg.active().name(), DEFAULT_PERSONA_NAME);
        reg.replace_all(vec![persona("coach", true), persona("quiet", false)]);
        let a = reg.active();
        assert_eq!((a.source, a.name()), (PersonaSource::Active, "coach"));
        assert!(!a.is_default());
        assert_eq!(a.time_zone(), chrono_tz::Europe::Berlin);
    }

    #[test]
    fn two_active_personas_mean_none_and_the_default_speaks() {
        let reg = PersonaRegistry::default();
        let clone = reg.clone();
        clone.upsert(persona("coach", true));
        clone.upsert(persona("buddy", true));
        let a = reg.active();
        assert_eq!(a.source, PersonaSource::Conflict);
        assert!(a.is_default());
        assert_eq!(a.conflicting, vec!["wb/buddy".to_string(), "wb/coach".to_string()]);
        reg.remove(Some("wb"), "buddy");
        assert_eq!(reg.active().name(), "coach");
        reg.replace_all(Vec::new());
        assert_eq!(reg.active().source, PersonaSource::Default);
    }

    #[test]
    fn prompts_come_from_the_persona_or_the_builtins() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut spec = default_persona("UTC").spec;
        for _ in 0..20 {
            assert!(BUILTIN_PROMPTS.contains(&choose_prompt(&spec, &mut rng).as_str()));
        }
        spec.check_ins.prompts = vec!["A?".to_string(), "B?".to_string(), "  ".to_string()];
        let picked: std::collections::BTreeSet<String> = (0..50).map(|_| choose_prompt(&spec, &mut rng)).collect();
        assert_eq!(picked, ["A?".to_string(), "B?".to_string()].into_iter().collect());
    }

    #[test]
    fn tone_words_pick_a_register() {
        assert_eq!(Tone::parse("warm, brief, encouraging"), Tone::Warm);
        assert_eq!(Tone::parse("Playful and cheeky"), Tone::Playful);
        assert_eq!(Tone::parse("no-nonsense"), Tone::Direct);
        assert_eq!(Tone::parse("gentle"), Tone::Calm);
        assert_eq!(Tone::parse("pirate"), Tone::Warm);
    }

    #[test]
    fn the_template_acknowledges_what_was_understood() {
        let c = CheckIn {
            energy: Level::Low,
            hunger: Hunger::Hungry,
            sleep_quality: SleepQuality::Poor,
            meals: vec![Meal { meal: MealKind::Meal, status: MealStatus::Skipped }],
            ..Default::default()
        };
        let reply = template_reply(&c, Tone::Warm);
        assert!(reply.contains("Sounds like you're tired, hungry, slept badly and haven't eaten."), "{reply}");
        assert!(reply.contains("something to eat"), "{reply}");
        let direct = template_reply(&c, Tone::Direct);
        assert!(direct.starts_with("Noted."), "{direct}");
        assert_ne!(reply, direct);
        assert_eq!(template_reply(&CheckIn::default(), Tone::Warm), "Thanks for checking in. I've logged it.");
        let run = CheckIn { exercise: Exercise::Done, activity: Some("run".into()), ..Default::default() };
        assert!(template_reply(&run, Tone::Warm).contains("you got a run in"));
        let yoga = CheckIn { exercise: Exercise::Planned, activity: Some("yoga".into()), ..Default::default() };
        assert!(template_reply(&yoga, Tone::Warm).contains("you are planning some yoga"));
    }

    #[test]
    fn follow_up_asks_about_the_first_missing_fields() {
        let q = followup_question(&["exercise".to_string()], Tone::Warm).unwrap();
        assert_eq!(q, "And how are you feeling about exercise today?");
        let q = followup_question(&["sleep".into(), "energy".into(), "water".into()], Tone::Direct).unwrap();
        assert_eq!(q, "How did you sleep and how's your energy?");
        assert!(followup_question(&[], Tone::Warm).is_none());
    }
}
