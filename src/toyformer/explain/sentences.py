"""The account in plain sentences: each one built from the measurements of ``explain`` and
citing them. A head's role is called *used* only when ablating it changes exact match or token
accuracy by at least ``USED``; a pattern seen in a head whose ablation changes nothing is
reported as not used.

>>> print("\\n".join(sentences(toyformer.explain.explain("runs/rev"))))     # doctest: +SKIP
reverse (tagger), step 600, 512 test examples: exact match 1.000, token accuracy 1.000, loss 0.004.
encoder.blocks.0.attn head 1 is a mirror head (score 0.93); ablating it (mean) changes exact match 1.000 -> 0.004 ...
"""

from __future__ import annotations

from toyformer.explain.ablation import effect, worst
from toyformer.explain.circuit_text import circuit_sentences, depends, description, group_sentences, role_text
from toyformer.explain.phases import GENERALISED, KEY_SHARE
from toyformer.explain.probes import READABLE, readable_from

USED = 0.01  # an ablation that changes exact match or token accuracy by this much changes the answers
TARGET_TEXT = {"position": "The position", "token": "The input token", "previous_token": "The previous input token",
               "mirror_token": "The token at the mirrored position", "answer": "The answer token"}


def sentences(r: dict) -> list[str]:
    """Every sentence of the account of one explained run (``explain``'s result)."""
    out = _header(r)
    if r.get("ablation"):
        out += _components(r)
    if r.get("groups"):
        out += group_sentences(r["groups"])
    if r.get("circuit"):
        out += circuit_sentences(r["circuit"], r.get("roles"))
    if r.get("probes"):
        out += _probes(r["probes"])
    if r.get("lens"):
        out += _lens(r["lens"])
    if r.get("dla"):
        out += _dla(r["dla"])
    if r.get("patching"):
        out += _patching(r["patching"])
    if r.get("phases"):
        out += _phases(r["phases"])
    if r.get("fourier"):
        out += _fourier(r["fourier"])
    if r.get("over_training"):
        out += _over_training(r["over_training"])
    return out


def _header(r: dict) -> list[str]:
    b = (r.get("ablation") or {}).get("baseline")
    nums = "" if b is None else (f", {r['ablation']['n']} test examples: exact match {b['exact_match']:.3f}, "
                                 f"token accuracy {b['token_acc']:.3f}, loss {b['loss']:.3f}")
    out = [f"{r['task']} ({r['layout']}), step {r['step']}{nums}."]
    if not r.get("finished", True):
        out.append(f"The run is not finished: explained from its last checkpoint, step {r['step']}.")
    return out


def _change(row: dict, base: dict) -> str:
    text = f"exact match {base['exact_match']:.3f} -> {row['exact_match']:.3f}"
    same = row["token_acc"] == row["exact_match"] and base["token_acc"] == base["exact_match"]  # one-token answers
    if abs(row["d_token_acc"]) >= USED and not same:
        text += f", token accuracy {base['token_acc']:.3f} -> {row['token_acc']:.3f}"
    return text


def _components(r: dict) -> list[str]:
    ab = r["ablation"]
    rows, base = ab["rows"], ab["baseline"]
    names = list(dict.fromkeys(row["component"] for row in rows))
    biggest = {name: worst(rows, name) for name in names}
    used = [name for name in names if effect(biggest[name])[0] >= USED]
    roles = {f"{x['module']} head {x['head']}": x for x in r.get("roles") or []}
    out = []
    for name, role in roles.items():
        w = biggest.get(name)
        if role["role"] == "mixed" or w is None:
            continue
        what = role_text(role["role"])
        does = description(role)
        stats = role.get("attention") or {}
        if does and stats[stats["describes"]]["mass"] >= role["score"]:  # a fixed rule fits it better still
            what += f" that {does}"
        if name in used:
            out.append(f"{name} is {what} (score {role['score']:.2f}); ablating it ({w['method']}) changes "
                       f"{_change(w, base)}.")
        else:
            out.append(f"{name} looks like {what} (score {role['score']:.2f}), but no ablation of it changes "
                       f"exact match or token accuracy by {USED} or more (at most {effect(w)[0]:.3f}): not used.")
    for name in used:
        if name in roles and roles[name]["role"] != "mixed":
            continue
        w = biggest[name]
        if name in roles and roles[name].get("best") is not None:
            role = roles[name]
            does = description(role)
            does = f"it {does}; " if does else ""
            out.append(f"{name} fits no single pattern (best: {role['best']} {role['score']:.2f}) but is used: "
                       f"{does}ablating it ({w['method']}) changes {_change(w, base)}.{depends(role)}")
        elif name in roles and description(roles[name]):
            out.append(f"{name} fits no named pattern but is used: it {description(roles[name])}; ablating it "
                       f"({w['method']}) changes {_change(w, base)}.{depends(roles[name])}")
        else:
            out.append(f"{name} is used: ablating it ({w['method']}) changes {_change(w, base)}.")
    unused = [n for n in names if n not in used]
    if used and unused:
        top = max((biggest[n] for n in unused), key=lambda w: effect(w)[0])
        out.append(f"Every other component changes exact match and token accuracy by at most {effect(top)[0]:.3f} when "
                   f"ablated (largest: {top['component']}, {top['method']}).")
    if not used:
        top = biggest[names[0]]
        out.append(f"No single component changes the answers when ablated: the largest change of exact match or "
                   f"token accuracy is {effect(top)[0]:.3f} ({top['component']}, {top['method']}).")
    elif unused:
        shown = ", ".join(unused[:6]) + (f" and {len(unused) - 6} more" if len(unused) > 6 else "")
        out.append(f"{len(unused)} of {len(names)} components can each be removed with the answers changing by less "
                   f"than {USED}: {shown}.")
    return out


def _probes(rows: list[dict]) -> list[str]:
    out = []
    for stream in dict.fromkeys(r["stream"] for r in rows):
        for target in dict.fromkeys(r["target"] for r in rows if r["stream"] == stream):
            mine = sorted((r for r in rows if r["stream"] == stream and r["target"] == target),
                          key=lambda r: r["layer"])
            first = readable_from(rows, stream, target)
            text = TARGET_TEXT.get(target, target)
            chance = mine[0]["chance"]
            best = max(mine, key=lambda r: r["accuracy"])
            if first is None and best["accuracy"] >= READABLE:
                at = [str(r["layer"]) for r in mine if r["accuracy"] >= READABLE]
                last = mine[-1]
                out.append(f"{text} is linearly readable in the {stream} at layer{'s' if len(at) > 1 else ''} "
                           f"{', '.join(at)} (held-out probe accuracy up to {best['accuracy']:.2f}) but no longer at "
                           f"the last layer, {last['layer']} ({last['accuracy']:.2f}; chance {chance:.2f}).")
            elif first is None:
                out.append(f"{text} is not linearly readable in the {stream} (best held-out probe accuracy "
                           f"{best['accuracy']:.2f} at layer {best['layer']}; chance {chance:.2f}).")
            elif first == 0:
                out.append(f"{text} is linearly readable in the {stream} from the embeddings on (layer 0: held-out "
                           f"probe accuracy {mine[0]['accuracy']:.2f}; chance {chance:.2f}).")
            else:
                at, before = mine[first], mine[first - 1]
                out.append(f"{text} becomes linearly readable in the {stream} at layer {first} (held-out probe "
                           f"accuracy {at['accuracy']:.2f}; layer {first - 1}: {before['accuracy']:.2f}; chance "
                           f"{chance:.2f}).")
    return out


def _lens(rows: list[dict]) -> list[str]:
    final = rows[-1]
    first = None
    for r in rows:
        readable = r["exact_match"] >= READABLE * final["exact_match"]
        first = (r["layer"] if first is None else first) if readable else None
    if final["exact_match"] < USED or first is None:
        return [f"The logit lens finds no layer of the {final['stream']} where the read-out gets answers right "
                f"(exact match at the last layer {final['exact_match']:.3f})."]
    if first == 0:
        return [f"The read-out applied to the {final['stream']} embeddings already gives exact match "
                f"{rows[0]['exact_match']:.3f} (final {final['exact_match']:.3f})."]
    return [f"The logit lens reads the answer from {final['stream']} layer {first} on (exact match "
            f"{rows[first]['exact_match']:.3f}; layer {first - 1}: {rows[first - 1]['exact_match']:.3f}; final "
            f"{final['exact_match']:.3f})."]


def _dla(d: dict) -> list[str]:
    if "skipped" in d:
        return [f"Direct logit attribution does not apply: {d['skipped']}."]
    top = [r for r in d["rows"] if r["kind"] != "bias"][:2]
    if not top:
        return []
    more = f", then {top[1]['component']} ({top[1]['contribution']:+.2f})" if len(top) > 1 else ""
    return [f"The largest direct contribution to the correct answer's centred logit ({d['total']:.2f} on average) "
            f"comes from {top[0]['component']} ({top[0]['contribution']:+.2f}){more}."]


def _patching(p: dict) -> list[str]:
    grid = p["residual"]
    cells = [(v, i, j) for i, row in enumerate(grid["restored"]) for j, v in enumerate(row) if v is not None]
    head = max((h for h in p["heads"] if h["restored"] is not None), key=lambda h: h["restored"], default=None)
    if not cells:
        return [f"Activation patching found no difference to restore: the clean and corrupted runs give the clean "
                f"answer log-probability {p['clean_logprob']:.3f} and {p['corrupt_logprob']:.3f}."]
    v, i, j = max(cells)
    out = [f"Patching one clean activation into the corrupted run (answer log-probability {p['corrupt_logprob']:.3f}, "
           f"clean {p['clean_logprob']:.3f}) restores most from {grid['layers'][i]} at position {j} ({v:.2f} of the "
           "way)."]
    if head is not None:
        out.append(f"Of the heads, {head['component']} restores most ({head['restored']:.2f}).")
    return out


def _phases(ph: dict) -> list[str]:
    if ph["evaluations"] < 2:
        return []
    m, g, w = ph["memorised"], ph["generalised"], ph["widest_gap"]
    metric = ph["metric"].replace("_", " ")
    if ph["grokked"]:
        return [f"The run memorised before it generalised: at step {m['step']} training {metric} was {m['train']:.2f} "
                f"and validation {m['val']:.2f}; validation reached {g['val']:.2f} at step {g['step']}, "
                f"{g['step'] - m['step']} steps later (grokking)."]
    if m is not None:
        return [f"The run memorised without generalising: from step {m['step']} training {metric} was {m['train']:.2f} "
                f"and validation {m['val']:.2f}, and validation never reached {GENERALISED}."]
    gap = f"the widest gap between training and validation {metric} was {w['train'] - w['val']:.2f} (step {w['step']})"
    if g is not None:
        return [f"No memorisation phase: validation {metric} reached {g['val']:.2f} at step {g['step']} and {gap}; "
                f"not grokking."]
    return [f"Validation {metric} never reached {GENERALISED}, and {gap}."]


def _fourier(f: dict) -> list[str]:
    n = len(f["shares"])
    if not f["key_frequencies"]:
        return [f"The number embeddings have no dominant frequency: the largest holds {max(f['shares']):.0%} of the "
                f"non-constant energy over {n} frequencies (key: at least {KEY_SHARE / n:.0%})."]
    keys = ", ".join(map(str, f["key_frequencies"]))
    return [f"The number embeddings concentrate on frequencies {keys} ({f['key_share']:.0%} of the non-constant energy "
            f"over {n} frequencies); keeping only those in the logits gives loss {f['restricted_loss']:.3f} (the "
            f"model: {f['loss']:.3f}), removing them gives {f['excluded_loss']:.3f} on the training pairs (chance "
            f"{f['chance_loss']:.3f})."]


def _over_training(ot: dict) -> list[str]:
    out = []
    for h in ot["heads"]:
        if h["role"] != "mixed" and h["appeared_at"] is not None:
            out.append(f"{h['module']} head {h['head']} became {role_text(h['role'])} at step "
                       f"{h['appeared_at']} (score {h['scores'][-1]:.2f} at the end).")
    firsts: dict = {}
    for p in ot["probes"]:
        if p["readable_from"] is not None:
            key = (p["stream"], p["target"])
            if key not in firsts or p["readable_from"] < firsts[key]["readable_from"]:
                firsts[key] = p
    for (stream, target), p in firsts.items():
        out.append(f"{TARGET_TEXT.get(target, target)} became readable in the {stream} at step {p['readable_from']} "
                   f"(layer {p['layer']}, probe accuracy {p['accuracy'][-1]:.2f} at the end).")
    return out
