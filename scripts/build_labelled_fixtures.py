"""Writes the small labelled files under tests/fixtures/labelled/ that the fine-tuning tests
and CI read: topic-classified sentences as CSV (with quoted commas and quotes), topic pairs as
JSON lines (classed by the second text), and names tagged as people or places as CoNLL columns. Seeded; run from the crate
root: python3 scripts/build_labelled_fixtures.py"""
import csv
import json
import random

rng = random.Random(7)
OUT = "tests/fixtures/labelled/"

TOPICS = {
    "animals": [
        "The {a} chased the {b} across the field",
        "A young {a} slept beside the {b} all afternoon",
        "Farmers say the {a} is calmer than the {b}",
        "We watched a {a} and a {b} at the river, quietly",
    ],
    "food": [
        "She baked {a} bread with {b} for the guests",
        "The soup needs more {a} and a little {b}",
        "He ordered {a}, then shared the {b} with everyone",
        "Fresh {a} tastes better with warm {b}",
    ],
    "weather": [
        "Heavy {a} is expected tonight, followed by {b}",
        "The morning brought {a} and a cold {b}",
        "After the {a} cleared, the {b} returned",
        "Sailors feared the {a} more than the {b}",
    ],
}
WORDS = {
    "animals": ["dog", "cat", "horse", "fox", "rabbit", "goat", "sheep", "owl"],
    "food": ["garlic", "butter", "cheese", "honey", "rice", "pepper", "apples", "salt"],
    "weather": ["rain", "snow", "wind", "fog", "thunder", "frost", "sunshine", "hail"],
}


def sentence(topic):
    a, b = rng.sample(WORDS[topic], 2)
    text = rng.choice(TOPICS[topic]).format(a=a, b=b) + "."
    if rng.random() < 0.15:
        text = f'"{text}" they said'
    return text


def write_csv(path, n):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        for _ in range(n):
            topic = rng.choice(sorted(TOPICS))
            w.writerow([sentence(topic), topic])


write_csv(OUT + "topics.csv", 96)
write_csv(OUT + "topics-test.csv", 24)

# Pairs whose class is the second text's topic, the first drawn apart from it: a model learns
# them only by reading segment B.
with open(OUT + "pairs.jsonl", "w") as f:
    for _ in range(96):
        first, second = rng.choice(sorted(TOPICS)), rng.choice(sorted(TOPICS))
        line = {"text": sentence(first), "text_pair": sentence(second), "label": second}
        f.write(json.dumps(line) + "\n")

PEOPLE = ["Alice", "Omar", "Mei", "John", "Priya", "Lukas", "Sofia", "Kwame"]
PLACES = ["Paris", "Lagos", "Lima", "Oslo", "Kyoto", "Cairo", "Quebec", "Dublin"]
FRAMES = [
    ["{p}", "moved", "to", "{l}", "last", "year", "."],
    ["In", "{l}", ",", "{p}", "opened", "a", "bakery", "."],
    ["{p}", "and", "{q}", "met", "in", "{l}", "."],
    ["The", "train", "from", "{l}", "carried", "{p}", "home", "."],
]
with open(OUT + "names.conll", "w") as f:
    f.write("-DOCSTART- -X- O O\n\n")
    for _ in range(96):
        p, q = rng.sample(PEOPLE, 2)
        place = rng.choice(PLACES)
        for word in rng.choice(FRAMES):
            token = word.format(p=p, q=q, l=place)
            tag = "B-PER" if word in ("{p}", "{q}") else "B-LOC" if word == "{l}" else "O"
            f.write(f"{token} NNP O {tag}\n")
        f.write("\n")
