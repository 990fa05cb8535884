"""Sleep wind-down planner: given a target bedtime, a timed plan for the evening before it.

The plan itself is fixed arithmetic; when the assistant's LLM gateway is there, one short
personal line is added through `llm.complete("chat", ...)`, and the plan stands without it.
"""

import re

from wellbeing_host.api import HostError

name = "sleep_winddown"
description = (
    "Sleep wind-down planner. Given a target bedtime (HH:MM, or words like '11pm' in the text) and "
    "optionally the current time, returns a timed wind-down plan: caffeine cut-off, screens off, "
    "dim lights, a calming routine and lights out. Use it when someone is tired, sleeps badly or "
    "wants to get to bed on time."
)
input_schema = {
    "type": "object",
    "properties": {
        "bedtime": {"type": "string", "pattern": "^[0-2]?[0-9]:[0-5][0-9]$", "description": "Target bedtime, HH:MM"},
        "now": {"type": "string", "pattern": "^[0-2]?[0-9]:[0-5][0-9]$", "description": "Local time now, HH:MM"},
        "text": {"type": "string", "description": "What the user said (a bedtime may be read from it)"},
    },
    "additionalProperties": False,
}
required_secrets = []

DEFAULT_BEDTIME = "23:00"
# Caffeine's half-life is about five to six hours, so the cut-off sits eight hours before bed.
CAFFEINE_CUTOFF_MIN = 8 * 60
# Minutes before bedtime for each step of the routine, longest lead first.
STEPS = [
    (90, "Finish work and chores; write tomorrow's top three tasks on paper so they can wait"),
    (60, "Screens off or on night mode; dim the lights"),
    (45, "Warm shower or bath; lay out clothes for the morning"),
    (30, "Read something on paper or stretch gently"),
    (10, "Slow breathing: in for 4, hold for 7, out for 8, four rounds"),
    (0, "Lights out"),
]
TRIGGERS = ("tired", "bed", "insomnia", "sleep", "exhausted", "awake at")


def match(context):
    text = str(context.get("text", "")).lower()
    return any(word in text for word in TRIGGERS)


def _minutes(hhmm):
    hours, minutes = hhmm.split(":")
    return (int(hours) % 24) * 60 + int(minutes)


def _hhmm(minutes):
    minutes %= 24 * 60
    return "{:02d}:{:02d}".format(minutes // 60, minutes % 60)


def _bedtime_from_text(text):
    clock = re.search(r"\b([01]?[0-9]|2[0-3]):([0-5][0-9])\b", text)
    if clock:
        return "{:02d}:{}".format(int(clock.group(1)), clock.group(2))
    spoken = re.search(r"\b(1[0-2]|[1-9])(?::([0-5][0-9]))?\s*(am|pm)\b", text)
    if spoken:
        hour = int(spoken.group(1)) % 12 + (12 if spoken.group(3) == "pm" else 0)
        return "{:02d}:{}".format(hour, spoken.group(2) or "00")
    if "midnight" in text:
        return "00:00"
    return None


async def run(context, llm, secrets):
    text = str(context.get("text", "")).lower()
    bedtime = context.get("bedtime") or _bedtime_from_text(text) or DEFAULT_BEDTIME
    bed = _minutes(bedtime)
    now = _minutes(context["now"]) if context.get("now") else None
    # Minutes until bed, across midnight; None when the time now is unknown.
    left = None if now is None else (bed - now) % (24 * 60)

    plan = []
    skipped = 0
    for lead, step in STEPS:
        if left is not None and lead > left:
            skipped += 1
            continue
        plan.append({"time": _hhmm(bed - lead), "minutes_before_bed": lead, "step": step})

    if left is not None and left < 10:
        summary = "It's nearly bedtime: skip the routine, dim the lights and go straight to bed."
        plan = [{"time": _hhmm(bed), "minutes_before_bed": 0, "step": "Lights out"}]
    elif skipped:
        summary = "A shortened wind-down for {} ({} steps left, {} already past).".format(
            _hhmm(bed), len(plan), skipped
        )
    else:
        summary = "A 90-minute wind-down for lights out at {}.".format(_hhmm(bed))

    result = {
        "bedtime": _hhmm(bed),
        "caffeine_cutoff": _hhmm(bed - CAFFEINE_CUTOFF_MIN),
        "summary": summary,
        "plan": plan,
    }
    try:
        result["tip"] = await llm.complete(
            "chat",
            "In one short, warm sentence, encourage someone to follow a wind-down routine "
            "for a {} bedtime. No medical advice.".format(_hhmm(bed)),
            max_tokens=60,
        )
    except HostError:
        pass  # no gateway, or it refused: the plan is complete without the tip
    return result


examples = [
    {
        "input": {"bedtime": "22:30", "now": "20:00"},
        "expect": {
            "bedtime": "22:30",
            "caffeine_cutoff": "14:30",
            "plan": {"$len_min": 6},
            "summary": "90-minute",
        },
    },
    {
        "input": {"text": "so tired, want to be in bed by 11pm", "now": "22:20"},
        "expect": {
            "bedtime": "23:00",
            "plan": [
                {"time": "22:30", "minutes_before_bed": 30},
                {"time": "22:50", "minutes_before_bed": 10},
                {"time": "23:00", "step": "Lights out"},
            ],
            "summary": "shortened",
        },
    },
    {
        "input": {"bedtime": "00:15", "now": "00:10"},
        "expect": {"plan": {"$len_max": 1}, "summary": "nearly bedtime"},
    },
    {
        "input": {"bedtime": "23:00"},
        "llm_reply": "You've earned a calm evening.",
        "expect": {"tip": "calm evening", "plan": {"$len_min": 6}},
    },
]
