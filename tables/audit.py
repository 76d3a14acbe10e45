"""Audit the papers' numbers: prose claims against table cells, Δ rows against their tables, and
results quoted by two papers against each other.

    python -m tables.audit --specs tables/specs --claims tables/claims --md tables/audit.md --csv tables/audit.csv \
        --discrepancies tables/discrepancies.yaml --discrepancies-csv tables/discrepancies.csv

It reads every spec and claims file present and reports; it never changes a paper number. With
`--discrepancies`, the register of differences between each paper and its authors' code
(tables/discrepancies.py) is validated against the specs and the config files and rendered as the
report's "Paper versus code" section.
Sentences that rank methods without a number are read from tables/claims/rankings/
(tables/audit_rankings.py).
Verdicts: `consistent`, `inconsistent` (under every reasonable reading), `ambiguous` (a cell is
illegible or not reported, or the sentence has readings with different verdicts, each shown), `used
for reconstruction` (the claim's quote is the one a cell was reconstructed from: circular, not
evidence).
"""
from __future__ import annotations

import argparse
import ast
import datetime
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core import io
from core.errors import SuiteError
from tables import discrepancies as register
from tables.audit_findings import (AMBIGUOUS, CIRCULAR, CONSISTENT, CSV_COLUMNS, INCONSISTENT, ROUNDING_TOLERANCE,
                                   Finding, fmt as _fmt)
from tables.audit_rankings import ranking_checks
from tables.schema import Claim, Spec, SpecError, load_all_specs, load_claims, resolve_ref, safe_eval


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip()


def _substitute(expression: str, values: list) -> str:
    return re.sub(r"c\[(\d+)\]", lambda m: _fmt(values[int(m.group(1))]), expression)


def _verdict(computed, stated, tolerance: float) -> str:
    if isinstance(stated, bool) or isinstance(computed, bool):
        return CONSISTENT if bool(computed) == bool(stated) else INCONSISTENT
    if isinstance(stated, (int, float)) and isinstance(computed, (int, float)):
        return CONSISTENT if abs(computed - stated) <= tolerance + 1e-9 else INCONSISTENT
    if isinstance(stated, list) and isinstance(computed, (list, tuple)):
        ok = len(stated) == len(computed) and all(abs(a - b) <= tolerance + 1e-9 for a, b in zip(computed, stated))
        return CONSISTENT if ok else INCONSISTENT
    return CONSISTENT if computed == stated else INCONSISTENT


_OPS = {ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b, ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b, ast.Eq: lambda a, b: a == b}
_SYMBOL = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "=="}


def _indices(node: ast.AST, n: int) -> list[int] | None:
    """The cell indices a `c[i]`, `c[a:b]` or `c` node stands for (None for anything else)."""
    if isinstance(node, ast.Name) and node.id == "c":
        return list(range(n))
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "c":
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
            return [node.slice.value]
        if isinstance(node.slice, ast.Slice) and node.slice.step is None:
            lo = node.slice.lower.value if isinstance(node.slice.lower, ast.Constant) else 0
            hi = node.slice.upper.value if isinstance(node.slice.upper, ast.Constant) else n
            return list(range(n))[lo:hi]
    return None


def _aggregate(node: ast.AST, n: int) -> tuple[str, list[int]] | None:
    """('max' | 'min', cell indices) for `max(c[1:])`, `min(c[0], c[1])`, ...; None otherwise."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("max", "min"):
        idx = [_indices(a, n) for a in node.args]
        if all(i is not None for i in idx):
            return node.func.id, [j for i in idx for j in i]
    return None


def breaking_cells(expression: str, refs: list[str], values: list, where: str) -> list[str]:
    """The comparisons of an ordering expression that fail, naming the cells that break it.

    A conjunction is split into its terms, a chain `a < b < c` into its links; a term comparing one
    cell with the max (min) of others names each of those others that is not below (above) it."""
    n = len(values)
    short = [ref.split("/", 2)[-1] for ref in refs]
    tree = ast.parse(expression, mode="eval").body
    terms = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    out = []
    for term in terms:
        links = [(l, op, r) for l, op, r in zip([term.left, *term.comparators], term.ops, term.comparators)
                 ] if isinstance(term, ast.Compare) and all(type(o) in _OPS for o in term.ops) else None
        if links is None:
            if not safe_eval(ast.unparse(term), {"c": values}, where):
                out.append(f"{_substitute(ast.unparse(term), values)} is false")
            continue
        for left, op, right in links:
            # "x above all of them": x > max(...), max(...) < x; "all of them above x": min(...) > x, x < min(...)
            flipped = type(op) in (ast.Lt, ast.LtE)
            single, agg = (right, _aggregate(left, n)) if flipped else (left, _aggregate(right, n))
            if agg is None or agg[0] != "max":
                single, agg = (left, _aggregate(right, n)) if flipped else (right, _aggregate(left, n))
                if agg is not None and agg[0] != "min":
                    agg = None
            if agg is not None and _indices(single, n) and len(_indices(single, n)) == 1 and type(op) != ast.Eq or (
                    agg is not None and agg[0] == "max" and type(op) == ast.Eq):
                i = _indices(single, n)[0]
                x = values[i]
                strict = type(op) in (ast.Gt, ast.Lt)
                for j in agg[1]:
                    if j == i:
                        continue
                    beaten = values[j] < x if agg[0] == "max" else values[j] > x
                    if not (beaten or (not strict and values[j] == x)):
                        out.append(f"{short[j]} {_fmt(values[j])} vs {short[i]} {_fmt(x)}")
                continue
            text = f"{ast.unparse(left)} {_SYMBOL[type(op)]} {ast.unparse(right)}"
            if not safe_eval(text, {"c": values}, where):
                idx = sorted({k for side in (left, right) for k in (_indices(side, n) or [])})
                named = ", ".join(f"{short[k]} {_fmt(values[k])}" for k in idx)
                out.append(f"{_substitute(text, values)} is false" + (f" ({named})" if named else ""))
    return out


def check_claim(claim: Claim, specs: dict[str, Spec]) -> Finding:
    where = f"claims/{claim.paper}.yaml: claim '{claim.id}'"
    cells = [resolve_ref(specs, ref, where)[4] for ref in claim.cells]
    base = dict(paper=claim.paper, check="claim", id=claim.id, location=claim.location, quote=claim.quote,
                cells="; ".join(claim.cells), stated=_fmt(claim.stated))
    for ref, cell in zip(claim.cells, cells):
        if cell.legibility == "reconstructed" and cell.quote and (
                _squash(claim.quote) in _squash(cell.quote) or _squash(cell.quote) in _squash(claim.quote)):
            return Finding(**base, computed="", verdict=CIRCULAR,
                           arithmetic=f"{ref} = {cell.derivation} was reconstructed from this sentence")
    missing = [f"{ref} is {cell.legibility.replace('_', ' ')}" for ref, cell in zip(claim.cells, cells)
               if cell.value is None]
    if missing:
        return Finding(**base, computed="", verdict=AMBIGUOUS, arithmetic="; ".join(missing))
    values = [cell.value for cell in cells]
    readings = [claim.expression] + claim.alternatives
    results = []
    for expr in readings:
        computed = safe_eval(expr, {"c": values}, where)
        if isinstance(computed, float):
            computed = round(computed, 6)
        results.append((expr, computed, _verdict(computed, claim.stated, claim.tolerance)))
    arithmetic = " | ".join(f"{_substitute(e, values)} = {_fmt(v)}" for e, v, _ in results)
    if claim.stated is True:
        broken = [(k, breaking_cells(e, claim.cells, values, where)) for k, (e, v, _) in enumerate(results, 1)
                  if v is not True]
        arithmetic += "".join(f"; reading {k} broken by: " + "; ".join(b) for k, b in broken if b)
    verdicts = {v for _, _, v in results}
    verdict = verdicts.pop() if len(verdicts) == 1 else AMBIGUOUS
    if verdict == AMBIGUOUS:
        arithmetic += " (readings disagree: " + ", ".join(f"{e}: {v}" for e, _, v in results) + ")"
    tol = f" (tolerance {claim.tolerance:g})" if not isinstance(claim.stated, bool) else ""
    return Finding(**base, computed=_fmt(results[0][1]), verdict=verdict, arithmetic=arithmetic + tol)


def internal_checks(spec: Spec) -> list[Finding]:
    """Each printed value of a derived (Δ) row against its expression on the other rows."""
    out = []
    for part in spec.parts:
        for row in part.rows:
            if row.derived is None:
                continue
            names = sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", row.derived)) - {"abs", "min", "max", "round"})
            for col in part.value_columns:
                cell = row.cells[col.name]
                if cell.legibility == "not_reported":
                    continue
                ref = f"{spec.key}/{part.id}/{row.id}/{col.name}"
                operands = {n: part.row(n).cells[col.name].value for n in names}
                base = dict(paper=spec.paper, check="internal", id=ref, location=spec.title,
                            quote=f"row {row.labels} = {row.derived}", cells=ref, stated=_fmt(cell.value))
                if cell.value is None or any(v is None for v in operands.values()):
                    out.append(Finding(**base, computed="", verdict=AMBIGUOUS,
                                       arithmetic="a printed value or an operand is illegible or not reported"))
                    continue
                computed = safe_eval(row.derived, operands, ref)
                expr = row.derived
                for n, v in operands.items():
                    expr = re.sub(rf"\b{n}\b", _fmt(v), expr)
                verdict = CONSISTENT if abs(computed - cell.value) <= ROUNDING_TOLERANCE else INCONSISTENT
                out.append(Finding(**base, computed=_fmt(round(computed, 4)), verdict=verdict,
                                   arithmetic=f"{expr} = {_fmt(round(computed, 4))} vs printed {_fmt(cell.value)}"))
    return out


# Label columns that print a row's input modality (MaCLR's "Modality", Controllable Augmentations' "Mod."),
# with the same letters: V visual, A audio, T text, F flow.
MODALITY_LABELS = ("modality", "mod")
SETTING_NAMES = {"pretrain": "pretraining data", "backbone": "backbone", "input": "input size",
                 "protocol": "protocol (frozen or fine-tuned)", "modality": "modality"}


@dataclass
class Quote:
    paper: str
    ref: str
    work: str
    eval: str | None
    metric: str
    setting: dict
    value: float
    labels: dict


def _quotes(specs: dict[str, Spec]) -> list[Quote]:
    """Every legible cell that reports a named work's result: quoted rows, and each paper's own method rows."""
    out = []
    for spec in specs.values():
        for part, row, col, cell in spec.cells():
            if cell.value is None:
                continue
            if row.quoted is not None:
                setting = dict(row.setting)
                ev = setting.pop("eval", None)
                ev = ev.get(col.name) if isinstance(ev, dict) else ev
                work = row.work
            elif row.reproduce is not None and row.reproduce["method"] == spec.paper:
                setting = {"pretrain": row.reproduce["pretrain"], "protocol": row.reproduce["protocol"]}
                ev = (row.reproduce.get("eval") or {}).get(col.name)
                work = spec.paper
            else:
                continue
            if col.protocol:
                setting["protocol"] = col.protocol
            for name in MODALITY_LABELS:
                if row.labels.get(name):
                    setting["modality"] = re.sub(r"\s+", "", str(row.labels[name])).upper()
            out.append(Quote(spec.paper, f"{spec.key}/{part.id}/{row.id}/{col.name}", work, ev or col.eval,
                             col.metric, setting, cell.value, dict(row.labels)))
    return out


# Label columns that print a row's backbone.
BACKBONE_LABELS = ("arch", "architecture", "network", "backbone")


def _printed(q: Quote, key: str) -> str:
    """A setting as the row prints it, in one spelling: the backbone label ("R(2+1)D-18" -> r2plus1d18)
    where the table prints one, the input's spatial size ("32x8x224^2", "16x112x112", "224^2" -> 224)."""
    value = str(q.setting[key])
    if key == "backbone":
        label = next((q.labels[n] for n in BACKBONE_LABELS if q.labels.get(n)), None)
        value = re.sub(r"[^a-z0-9]", "", str(label).lower().replace("(2+1)", "2plus1")) if label else value
    if key == "input":
        side = re.search(r"(\d+)(?:\^2|x\1)?\s*$", value)
        value = side.group(1) if side else value
    return value


def _agree(x: str, y: str) -> bool:
    """Equal, or one only leaves out the other's depth or subset number (r3d vs r3d34, yt8m vs yt8m_1)."""
    short, long = sorted((x, y), key=len)
    return long.startswith(short) and re.fullmatch(r"_?\d*", long[len(short):]) is not None


def _conflicts(a: Quote, b: Quote) -> list[str]:
    """The setting keys both quotes print and print differently."""
    return sorted(k for k in set(a.setting) & set(b.setting) if not _agree(_printed(a, k), _printed(b, k)))


def _comparable(a: Quote, b: Quote) -> bool:
    """A paper's own number against another paper's quote of it counts only under the same protocol."""
    return not ((a.paper == a.work or b.paper == b.work) and not ("protocol" in a.setting and "protocol" in b.setting))


def _setting_finding(a: Quote, b: Quote, conflicts: list[str], partnered: set[str]) -> Finding | None:
    """Two papers' quotes of one work on one evaluation whose printed settings differ.

    The same number under two settings is one result labelled two ways (`inconsistent`). Different
    numbers under settings that differ in anything but the protocol and pretraining data, where
    neither quote has a counterpart in the other paper (same setting, or same number), are the only
    possible pairing: two runs of the work or one label misprinted (`ambiguous`). Otherwise they are
    two different results of the work."""
    same_number = abs(a.value - b.value) <= ROUNDING_TOLERANCE
    if not same_number and ({"protocol", "pretrain"} & set(conflicts) or a.ref in partnered or b.ref in partnered):
        return None
    verdict = INCONSISTENT if same_number else AMBIGUOUS
    differs = "; ".join(f"{SETTING_NAMES.get(k, k)}: {a.paper} {_printed(a, k)}, {b.paper} {_printed(b, k)}" for k in conflicts)
    printed = " vs ".join(f"{q.paper} prints {_fmt(q.value)} as " + ", ".join(f"{k}={v}" for k, v in q.labels.items())
                          for q in (a, b))
    why = ("the same number under two printed settings" if same_number else
           "different numbers and settings, and no same-setting quote in either paper: two runs, or one label misprinted")
    return Finding(paper=f"{a.paper}+{b.paper}", check="cross_paper_setting", id=f"{a.work}/{a.eval}/{a.metric}",
                   location=f"{a.ref} vs {b.ref}", quote=f"{a.work} on {a.eval} ({a.metric}): {differs}",
                   cells=f"{a.ref}; {b.ref}", computed=_fmt(a.value), stated=_fmt(b.value), verdict=verdict,
                   arithmetic=f"{why}. {printed}")


def cross_paper_checks(specs: dict[str, Spec]) -> list[Finding]:
    """One cited work on one evaluation and metric, as two papers print it.

    Quotes whose printed settings agree (where both give them) are compared on their numbers
    (`cross_paper`). Quotes whose settings differ are compared on the setting (`cross_paper_setting`,
    see _setting_finding): a result quoted with two different settings is a finding of its own."""
    groups: dict[tuple, list[Quote]] = {}
    for q in _quotes(specs):
        groups.setdefault((q.work, q.eval, q.metric), []).append(q)
    out = []
    for (work, ev, metric), quotes in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        pairs = [(a, b) for a, b in itertools.combinations(quotes, 2) if a.paper != b.paper and _comparable(a, b)]
        # a quote with a counterpart in the other paper (same setting or same number): its other
        # pairings there are other results of the work
        partnered = {(q.ref, other.paper) for a, b in pairs
                     if not _conflicts(a, b) or abs(a.value - b.value) <= ROUNDING_TOLERANCE
                     for q, other in ((a, b), (b, a))}
        for a, b in pairs:
            conflicts = _conflicts(a, b)
            if conflicts:
                found = _setting_finding(a, b, conflicts, {r for r, p in partnered if p in (a.paper, b.paper)
                                                           and r in (a.ref, b.ref)})
                if found:
                    out.append(found)
                continue
            shared = set(a.setting) & set(b.setting)
            verdict = CONSISTENT if abs(a.value - b.value) <= ROUNDING_TOLERANCE else INCONSISTENT
            setting = ", ".join(f"{k}={a.setting[k]}" for k in sorted(shared))
            if verdict == INCONSISTENT and "backbone" not in shared:
                verdict = AMBIGUOUS  # the numbers differ, but one paper does not say which backbone it quotes
                setting += "; backbone not given by both"
            out.append(Finding(paper=f"{a.paper}+{b.paper}", check="cross_paper", id=f"{work}/{ev}/{metric}",
                               location=f"{a.ref} vs {b.ref}", quote=f"{work} on {ev} ({metric}; {setting or 'no shared setting keys'})",
                               cells=f"{a.ref}; {b.ref}", computed=_fmt(a.value), stated=_fmt(b.value), verdict=verdict,
                               arithmetic=f"{a.paper} prints {_fmt(a.value)}, {b.paper} prints {_fmt(b.value)}: "
                                          f"difference {_fmt(round(a.value - b.value, 4))}"))
    return out


def audit(specs_dir, claims_dir) -> list[Finding]:
    specs = load_all_specs(specs_dir)
    findings = []
    for path in sorted(Path(claims_dir).glob("*.yaml")):
        findings += [check_claim(c, specs) for c in load_claims(path)]
    for spec in specs.values():
        findings += internal_checks(spec)
    findings += ranking_checks(claims_dir, specs)
    findings += cross_paper_checks(specs)
    return findings


def markdown(findings: list[Finding], date: str, discrepancies: list | None = None) -> str:
    counts = pd.Series([f.verdict for f in findings]).value_counts().to_dict() if findings else {}
    lines = ["# Audit of the papers' numbers", "", f"- generated: {date}",
             "- verdicts: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())),
             "- by check: " + "; ".join(
                 f"{check}: " + ", ".join(f"{k} {v}" for k, v in sorted(group.value_counts().to_dict().items()))
                 for check, group in pd.Series([f.verdict for f in findings], index=[f.check for f in findings],
                                               dtype=object).groupby(level=0)) if findings else "- by check: none",
             "- checks: `claim` (a sentence of the paper against its tables), `ranking` (a sentence that ranks "
             "methods without a number, on each reasonable reading's comparison set; the rows that break it are "
             "listed), `internal` (a table's Δ row against its other rows), `cross_paper` (one cited result as "
             "printed by two papers), `cross_paper_setting` (the setting two papers print for one cited result).",
             "- paper numbers are as transcribed in tables/specs; this report never changes them.", ""]
    order = {INCONSISTENT: 0, AMBIGUOUS: 1, CIRCULAR: 2, CONSISTENT: 3}
    papers = sorted({f.paper for f in findings if "+" not in f.paper})
    sections = [(p, [f for f in findings if f.paper == p]) for p in papers]
    sections.append(("cross-paper", [f for f in findings if f.check.startswith("cross_paper")]))
    for title, items in sections:
        if not items:
            continue
        lines += [f"## {title}", "", "| verdict | check | id | where | quote | computed | stated | arithmetic |",
                  "|---|---|---|---|---|---|---|---|"]
        for f in sorted(items, key=lambda f: (order.get(f.verdict, 9), f.check, f.id)):
            cells = [f.verdict, f.check, f.id, f.location, f.quote, f.computed, f.stated, f.arithmetic]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines.append("")
    if discrepancies:
        lines += register.markdown_section(discrepancies)
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--specs", default="tables/specs", help="folder of table specs")
    ap.add_argument("--claims", default="tables/claims", help="folder of claims files")
    ap.add_argument("--md", help="Markdown report")
    ap.add_argument("--csv", help="CSV report, one row per check")
    ap.add_argument("--discrepancies", help="register of paper-versus-code differences (tables/discrepancies.yaml)")
    ap.add_argument("--discrepancies-csv", help="CSV of the register, one row per entry")
    ap.add_argument("--root", default=".", help="repository root the register's config switches are relative to")
    args = ap.parse_args(argv)
    for name in ("specs", "claims"):
        if not Path(getattr(args, name)).is_dir():
            ap.error(f"--{name}: no such folder {getattr(args, name)}")
    if args.discrepancies and not Path(args.discrepancies).is_file():
        ap.error(f"--discrepancies: no such file {args.discrepancies}")
    if args.discrepancies_csv and not args.discrepancies:
        ap.error("--discrepancies-csv needs --discrepancies")
    try:
        findings = audit(args.specs, args.claims)
        entries = None
        if args.discrepancies:
            spec_ids = {p.stem for p in Path(args.specs).glob("*.yaml")}
            entries = register.load_discrepancies(args.discrepancies, spec_ids, args.root)
    except (SpecError, SuiteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    report = markdown(findings, datetime.date.today().isoformat(), entries)
    if args.md:
        io.write_text(args.md, report)
    if args.csv:
        io.write_csv(args.csv, pd.DataFrame([f.__dict__ for f in findings], columns=CSV_COLUMNS))
    if args.discrepancies_csv:
        io.write_csv(args.discrepancies_csv, register.frame(entries))
    if not args.md and not args.csv:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
