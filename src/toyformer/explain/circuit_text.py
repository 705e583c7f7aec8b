"""Sentences about circuits, groups of heads that share a job, and heads described by what their
attention does; each built from the measurements of ``circuit``, ``groups`` and ``describe``."""

from __future__ import annotations

from toyformer.explain.describe import KINDS, phrase

NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
ROLE_TEXT = {"self": "a head that attends to its own position", "previous": "a previous-token head",
             "first": "a first-token (sink) head", "mirror": "a mirror head", "same_token": "a same-token head",
             "induction": "an induction head", "same_place": "a same-digit-place head",
             "alignment": "a cross-attention alignment head", "uniform": "a uniform (averaging) head"}
MAX_NODES = 8  # the circuit's nodes described in sentences (the most often kept)
READS = {"q": "queries", "k": "keys", "v": "values", "mlp": "input", "output": "output", "memory": "output"}


def article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (by its first letter: ``an induction``, ``a previous``)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def role_text(role: str) -> str:
    """``an induction head``: the role as a noun phrase with its article."""
    return ROLE_TEXT.get(role, f"{article(role)} {role.replace('_', ' ')} head")


def plural(role: str) -> str:
    """``induction heads``: the role's noun phrase in the plural, without its article."""
    text = role_text(role).split(" ", 1)[1]
    if text.startswith("head that attends"):
        return "heads that attend" + text.removeprefix("head that attends")
    return text.replace(" head", " heads", 1)


def number(k: int) -> str:
    return NUMBERS[k] if k < len(NUMBERS) else str(k)


def listing(items: list) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def description(row: dict) -> str | None:
    """``attends 3 positions back (mass 0.97)`` for a head whose attention one rule describes."""
    stats = row.get("attention") or {}
    kind = stats.get("describes")
    return None if kind is None else f"{phrase(kind, stats[kind])} (mass {stats[kind]['mass']:.2f})"


def depends(row: dict, measure: str = "exact_match") -> str:
    """What the head's effect depends on: the answers with its attention replaced by each rule."""
    tried = row.get("depends_on") or {}
    stats = row.get("attention") or {}
    if not tried:
        return ""
    name = measure.replace("_", " ")
    ablated = row["ablated"][measure]
    best = max(tried, key=lambda k: tried[k][measure])
    parts = [f"{phrase(k, stats[k]).removeprefix('attends ')}: {tried[k][measure]:.3f}" for k in KINDS if k in tried]
    text = f" With its attention replaced by one rule, {name} is {listing(parts)} (ablated: {ablated:.3f})"
    gained = tried[best][measure] - ablated
    full = max(tried[best][measure], ablated)
    if gained > 0.0 and tried[best][measure] >= ablated + 0.9 * (full - ablated) and gained >= 0.01:
        text += f": its effect depends on the {'token' if best == 'token' else best}."
    else:
        text += ": no one rule brings the answers back."
    return text


def group_sentences(groups: list[dict]) -> list[str]:
    """One sentence per group whose joint ablation changes the answers."""
    out = []
    for g in groups:
        if not g.get("used"):
            continue
        m = g["by_method"][g["method"]]
        name = g["measure"].replace("_", " ")
        base = g["baseline"][g["measure"]]
        heads = f"{g['module']} heads {listing(g['heads'])}"
        if g["kind"] == "role":
            what = plural(g["label"])
        else:
            what = "heads that " + phrase(g["kind"], {g["kind"]: g["value"]}).replace("attends", "attend", 1)
        worst = min(m["alone"], key=lambda r: r[g["measure"]])
        all_k = "both" if len(g["heads"]) == 2 else f"all {number(len(g['heads']))}"
        joint = f"{base:.3f} -> {m['joint'][g['measure']]:.3f}"
        if g["redundant"]:
            alone = (f"{name} unchanged at {base:.3f}" if worst[g["measure"]] >= base else
                     f"{name} at most {base:.3f} -> {worst[g['measure']]:.3f}")
            out.append(f"{heads} are {what} that do one job together: any one can be removed ({alone}), {all_k} "
                       f"together: {joint} ({g['method']} ablation).")
        elif g.get("backed_up"):
            b = g["backed_up"]
            out.append(f"{heads} ({what}) share one job: {_heads(b['backups'])} change nothing alone but back up "
                       f"{_heads(b['heads'])}: ablating {_heads(b['heads'])} gives {base:.3f} -> "
                       f"{b['joint'][g['measure']]:.3f}, {all_k} together: {joint} ({g['method']} ablation); one at a "
                       f"time at most {base:.3f} -> {worst[g['measure']]:.3f}.")
        else:
            out.append(f"{heads} ({what}) ablated together change {name} {joint} ({g['method']} ablation); one at a "
                       f"time at most {base:.3f} -> {worst[g['measure']]:.3f}.")
    return out


def _heads(heads: list) -> str:
    return f"head{'s' if len(heads) > 1 else ''} {listing(heads)}"


def circuit_sentences(c: dict, roles: list[dict] | None = None) -> list[str]:
    """The circuit under each ablation, its cost, and what each of its nodes reads and feeds."""
    out = []
    total = len(c["edges"]) if c["separable"] else len(c["nodes"])
    unit = "edges" if c["separable"] else "nodes"
    name = c["measure"].replace("_", " ")
    for method, f in c["by_method"].items():
        nodes = [n for n in f["nodes"] if n not in f["backups"]]
        size = f"{len(f['kept'])} of {total} {unit}" + (f" ({len(nodes)} nodes)" if c["separable"] else "")
        text = (f"Under {method} ablation a circuit of {size} keeps {name} {f['faithful']:.3f} with everything else "
                f"ablated (the model: {f['intact']:.3f}; faithful from {f['target']:.3f}): "
                f"{'faithful' if f['is_faithful'] else 'not faithful'}; ablating only the circuit")
        if f["backups"]:
            text += f" and its backups {listing(f['backups'])}, which take over when it is ablated,"
        text += (f" gives {f['ablated']:.3f} (everything ablated: {f['floor']:.3f}): "
                 f"{'complete' if f['complete'] else 'not complete'}.")
        out.append(text)
    cost = c["cost"]
    how = "ranked by EAP-IG" if c["separable"] else "ranked by ablating each node"
    out.append(f"The circuits were {how} and confirmed by path patching: {cost['forward']} forward and "
               f"{cost['backward']} backward passes over {cost['examples']} examples.")
    if not c["separable"]:
        out.append("This model normalises after every branch (post-norm): its residual stream is not a sum of its "
                   "parts, so the circuit is a set of nodes, not of edges.")
    return out + _structure(c, roles or [])


def _structure(c: dict, roles: list[dict]) -> list[str]:
    """What each node of the circuit (over every method) reads, and what reads it."""
    u = c["circuit"]
    if not u["edges"]:
        return []
    every = set(c["by_method"])
    by_name = {f"{r['module']} head {r['head']}": r for r in roles}
    out = []
    nodes = [n for n in u["nodes"] if n["name"] not in ("input", "output", "encoder input", "decoder input")]
    shown = sorted(nodes, key=lambda n: -len(n["methods"]))[:MAX_NODES]
    for node in nodes:
        if node not in shown:
            continue
        ins = [e for e in u["edges"] if e["to"] == node["name"]]
        outs = [e for e in u["edges"] if e["from"] == node["name"]]
        what = node["name"]
        r = by_name.get(node["name"])
        if r is not None and r["role"] != "mixed":
            what += f", {role_text(r['role'])},"
        elif r is not None and description(r):
            what += f", which {description(r)},"
        reads = listing([f"{_source(e['from'])} through its {READS[e['channel']]}{_only(e, every)}" for e in ins]) \
            if ins else "nothing the input changes"
        fed = listing([f"{_target(e)}{_only(e, every)}" for e in outs]) if outs else None
        when = "" if set(node["methods"]) == every else f" (under {listing(node['methods'])} ablation)"
        backup = f" It is a backup under {listing(node['backup_in'])} ablation." if node.get("backup_in") else ""
        verb = "reads" if len(outs) == 1 else "read"
        out.append(f"In the circuit{when}, {what} reads {reads}" + (f"; {fed} {verb} it." if fed else ".") + backup)
    if len(nodes) > len(shown):
        out.append(f"The circuits have {len(nodes) - len(shown)} more nodes, kept under fewer ablations (explain.json "
                   "has every edge).")
    return out


def _source(name: str) -> str:
    return "the input tokens" if name.endswith("input") and "blocks" not in name else name


def _target(e: dict) -> str:
    if e["channel"] == "output":
        return "the output"
    if e["channel"] == "memory":
        return "the encoder's output"
    return e["to"] if e["channel"] == "mlp" else f"{e['to']} ({READS[e['channel']]})"


def _only(e: dict, every: set) -> str:
    return "" if set(e["methods"]) == every else f" ({'/'.join(e['methods'])} only)"
