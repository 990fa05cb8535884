"""Hydration reminder: a concrete suggestion and a schedule of sips for the rest of the day.

Plain arithmetic on what the user said; no LLM, no network, no secrets.
"""

import re

name = "hydration"
description = (
    "Hydration reminder. Given the user's message and, if known, the hours since they last drank "
    "water, returns a concrete suggestion (how much to drink now) and a schedule of sips until "
    "the evening. Use it when someone mentions forgetting to drink, thirst, headache or a hot day."
)
input_schema = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "What the user said"},
        "hours_since_water": {
            "type": "number",
            "minimum": 0,
            "maximum": 48,
            "description": "Hours since the user last drank water, when known",
        },
        "now": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "description": "Local time, HH:MM"},
        "until": {
            "type": "string",
            "pattern": "^[0-2][0-9]:[0-5][0-9]$",
            "description": "When to stop the schedule (an hour before bed), HH:MM; default 21:00",
        },
    },
    "additionalProperties": False,
}
required_secrets = []

SIGNALS = {
    "headache": ("headache", "head hurts", "migraine"),
    "thirst": ("thirsty", "dry mouth", "parched"),
    "heat": ("hot day", "heat", "sweating", "sweaty"),
    "exercise": ("workout", "run ", "ran ", "gym", "training", "hike"),
    "forgot": ("forgot to drink", "haven't drunk", "havent drunk", "no water", "didn't drink", "didnt drink"),
}
TRIGGERS = ("water", "drink", "thirst", "hydrat", "headache", "dehydrat")

GLASS_ML = 250
SIP_ML = 150
HOURLY_ML = 200
# Catching up is spread over this many half-hour steps rather than drunk at once.
CATCH_UP_STEPS = 4


def match(context):
    text = str(context.get("text", "")).lower()
    return any(word in text for word in TRIGGERS)


def _minutes(hhmm):
    hours, minutes = hhmm.split(":")
    return (int(hours) % 24) * 60 + int(minutes)


def _hhmm(minutes):
    minutes %= 24 * 60
    return "{:02d}:{:02d}".format(minutes // 60, minutes % 60)


def _hours_from_text(text):
    found = re.search(r"(\d+(?:\.\d+)?)\s*(?:h\b|hours?|hrs?)", text)
    if found:
        return min(float(found.group(1)), 48.0)
    if "all day" in text or "whole day" in text:
        return 10.0
    if "since morning" in text or "since breakfast" in text:
        return 6.0
    if "since lunch" in text:
        return 4.0
    return None


async def run(context, llm, secrets):
    text = str(context.get("text", "")).lower()
    signals = [kind for kind, words in SIGNALS.items() if any(w in text for w in words)]
    hours = context.get("hours_since_water")
    if hours is None:
        hours = _hours_from_text(text)
    if hours is None:
        hours = 6.0 if "forgot" in signals else 3.0
    hours = float(hours)

    if hours >= 6 or ("headache" in signals and hours >= 3):
        urgency = "high"
    elif hours >= 3 or signals:
        urgency = "medium"
    else:
        urgency = "low"

    first = GLASS_ML + (50 if {"heat", "exercise"} & set(signals) else 0)
    catch_up = min(int(hours * 100) // CATCH_UP_STEPS // 10 * 10, 250)

    now = _minutes(context.get("now", "12:00"))
    until = _minutes(context.get("until", "21:00"))
    if until <= now:
        until = now + 60
    schedule = [{"time": _hhmm(now), "ml": first, "note": "now"}]
    t = now
    # Only a real deficit gets catch-up sips; otherwise the steady rhythm starts an hour from now.
    steps = CATCH_UP_STEPS if catch_up >= 50 else 0
    for _ in range(steps):
        if t + 30 > until:
            break
        t += 30
        schedule.append({"time": _hhmm(t), "ml": max(catch_up, SIP_ML), "note": "catch up"})
    while t + 60 <= until:
        t += 60
        schedule.append({"time": _hhmm(t), "ml": HOURLY_ML, "note": "steady"})
    total = sum(step["ml"] for step in schedule)

    suggestion = "Drink a glass of water ({} ml) now".format(first)
    if urgency == "high":
        suggestion += ", then small sips every half hour rather than a lot at once"
    else:
        suggestion += ", then keep a bottle in sight and sip through the afternoon"
    if "headache" in signals:
        suggestion += ". Headaches often ease within an hour of drinking; if it stays, rest and check in again"
    suggestion += "."

    return {
        "suggestion": suggestion,
        "urgency": urgency,
        "hours_since_water": hours,
        "signals": signals,
        "total_ml": total,
        "schedule": schedule,
    }


examples = [
    {
        "input": {"text": "forgot to drink water all day, headache", "now": "16:00"},
        "expect": {
            "urgency": "high",
            "suggestion": {"$contains": "glass of water"},
            "signals": ["headache", "forgot"],
            "schedule": {"$len_min": 4},
            "total_ml": {"$min": 1000},
        },
    },
    {
        "input": {"text": "had some water at lunch", "hours_since_water": 1, "now": "14:00", "until": "16:00"},
        "expect": {"urgency": "low", "schedule": [{"time": "14:00", "ml": 250, "note": "now"},
                                                  {"time": "15:00", "ml": 200, "note": "steady"},
                                                  {"time": "16:00", "ml": 200, "note": "steady"}]},
    },
    {
        "input": {"text": "thirsty after the gym", "now": "10:00", "until": "11:00"},
        "expect": {"urgency": "medium", "schedule": {"$len_min": 2}, "suggestion": "300 ml"},
    },
]
