"""Checks the values in a run's metrics.jsonl, for CI: that a stage did what it should, not
only that it ran.

    python3 scripts/check_metrics.py RUN/metrics.jsonl --last-step 20 --below loss=8.5
    python3 scripts/check_metrics.py RUN/metrics.jsonl --split valid --between disc_auc=0,1
    python3 scripts/check_metrics.py RUN/metrics.jsonl --same-train OTHER/metrics.jsonl

Every line must be JSON and every number in it finite. `--split` (default valid) picks the
last record of that split for `--below KEY=V`, `--above KEY=V` and `--between KEY=LO,HI`;
`--last-step N` wants the last train record at step N; `--first-loss V,TOL` wants the first
train record's loss within TOL of V (an untrained model's ln of its class count, say);
`--same-train OTHER` wants the train
losses (timings aside) equal to OTHER's, record for record, over the shorter of the two,
with at least one record on each side. Exits 1 naming what failed.
"""

import argparse
import json
import math
import sys


def records(path):
    out = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}:{number}: not JSON ({e})")
            for key, value in record.items():
                if isinstance(value, float) and not math.isfinite(value):
                    fail(f"{path}:{number}: {key} is {value}")
            out.append(record)
    if not out:
        fail(f"{path}: no records")
    return out


def fail(message):
    print(f"check_metrics: {message}", file=sys.stderr)
    sys.exit(1)


def pairs(items, parse):
    for item in items or []:
        key, _, value = item.partition("=")
        yield key, parse(value)


def train_losses(path):
    return [(r["step"], r["loss"]) for r in records(path) if r["split"] == "train"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("metrics")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--last-step", type=int)
    parser.add_argument("--below", action="append")
    parser.add_argument("--above", action="append")
    parser.add_argument("--between", action="append")
    parser.add_argument("--first-loss")
    parser.add_argument("--same-train")
    args = parser.parse_args()

    all_records = records(args.metrics)
    of_split = [r for r in all_records if r["split"] == args.split]
    last = of_split[-1] if of_split else None

    def value(key):
        if last is None:
            fail(f"{args.metrics}: no {args.split} record")
        if key not in last:
            fail(f"{args.metrics}: {key} missing from the last {args.split} record: {last}")
        return last[key]

    for key, bound in pairs(args.below, float):
        if not value(key) < bound:
            fail(f"{args.metrics}: {args.split} {key} = {value(key)}, not below {bound}")
    for key, bound in pairs(args.above, float):
        if not value(key) > bound:
            fail(f"{args.metrics}: {args.split} {key} = {value(key)}, not above {bound}")
    for key, (low, high) in pairs(args.between, lambda v: tuple(map(float, v.split(",")))):
        if not low <= value(key) <= high:
            fail(f"{args.metrics}: {args.split} {key} = {value(key)}, not in [{low}, {high}]")
    if args.last_step is not None:
        train = [r for r in all_records if r["split"] == "train"]
        if not train or train[-1]["step"] != args.last_step:
            got = train[-1]["step"] if train else None
            fail(f"{args.metrics}: last train step {got}, wanted {args.last_step}")
    if args.first_loss:
        want, tolerance = map(float, args.first_loss.split(","))
        train = [r for r in all_records if r["split"] == "train"]
        if not train or abs(train[0]["loss"] - want) > tolerance:
            got = train[0]["loss"] if train else None
            fail(f"{args.metrics}: first train loss {got}, wanted {want} ± {tolerance}")
    if args.same_train:
        ours, theirs = train_losses(args.metrics), train_losses(args.same_train)
        n = min(len(ours), len(theirs))
        if n == 0:
            fail(f"no train records to compare in {args.metrics} and {args.same_train}")
        for a, b in zip(ours[:n], theirs[:n]):
            if a != b:
                fail(f"train (step, loss) {a} in {args.metrics}, {b} in {args.same_train}")
        print(f"check_metrics: {n} train losses equal")


if __name__ == "__main__":
    main()
