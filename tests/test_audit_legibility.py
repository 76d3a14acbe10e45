"""One legibility standard for every spec: a digit sequence under LaTeX or markup decoration (`\\bar`,
`\\overline`, `\\underline`, `<u>`, `^{-}`, a dash that is a table rule) is legible exactly when its
digits are, so no spec reads a decorated number one way and the same decoration another way."""
import re
from pathlib import Path


from tables.schema import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "tables" / "specs").glob("*.yaml"))
DECORATIONS = {  # name -> pattern whose group 1 is what the decoration covers
    "bar": r"\\bar\{([^{}]*)\}", "overline": r"\\overline\{([^{}]*)\}", "underline": r"\\underline\{([^{}]*)\}",
    "u": r"<u>(.*?)</u>", "superscript-minus": r"()\^\{-\}",
}
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def undecorate(printed: str) -> tuple[str, set[str]]:
    """What a printed cell reads with its decorations taken off, and which decorations it had."""
    text, found = printed.strip(), set()
    for name, pattern in DECORATIONS.items():
        text, n = re.subn(pattern, r"\1", text)
        if n:
            found.add(name)
    text = text.replace("$", "").replace(" ", "") if found else text.replace("$", "")
    if found and re.fullmatch(r"[-–—]+.*|.*[-–—]+", text):
        text, found = text.strip("-–—"), found | {"rule-dash"}
    return text.strip(), found


def test_undecorate():
    assert undecorate(r"$5\bar{2}.\bar{7}$") == ("52.7", {"bar"})
    assert undecorate(r"$-\bar{27.5}$") == ("27.5", {"bar", "rule-dash"})
    assert undecorate("2^{-}") == ("2", {"superscript-minus"})
    assert undecorate("<u>80 0</u>") == ("800", {"u"})  # digits, but the decimal point is lost: not a number as printed
    assert undecorate("80 0") == ("80 0", set())
    assert undecorate("1.18×") == ("1.18×", set())


def _decorated(spec):
    """(where, printed, reading, decorations, legible value or None) of every decorated cell and label."""
    for part, row, col, cell in spec.cells():
        if cell.printed:
            reading, found = undecorate(cell.printed)
            if found:
                yield f"{spec.key}/{part.id}/{row.id}/{col.name}", cell.printed, reading, found, cell.value
        for name, printed in row.printed_labels.items():
            reading, found = undecorate(printed)
            if found:
                yield f"{spec.key}/{part.id}/{row.id}/label {name}", printed, reading, found, row.labels.get(name)


def test_one_reading_of_each_decoration_everywhere():
    """Each decorated cell or label whose digits form a number reads as that number, in every spec;
    one whose digits do not is illegible. A decoration read as legible in one place and illegible
    in another with a number underneath fails here."""
    ways: dict[str, set[str]] = {}
    wrong = []
    for path in SPECS:
        for where, printed, reading, found, value in _decorated(load_spec(path)):
            is_number = NUMBER.fullmatch(reading) is not None and not re.search(r"\d\s+\d", printed)
            legible = value is not None
            for name in found:
                ways.setdefault(name, set()).add(f"{'legible' if legible else 'illegible'} number" if is_number else "no number")
            if is_number and not legible:
                wrong.append(f"{where}: {printed!r} reads {reading} but is illegible")
            elif is_number and str(value) != reading and not (
                    isinstance(value, float) and abs(value - float(reading)) < 1e-9):
                wrong.append(f"{where}: {printed!r} reads {reading} but is transcribed {value!r}")
            elif not is_number and "label" in where.rsplit("/", 1)[-1]:
                if str(value).replace(" ", "") != reading:
                    wrong.append(f"{where}: {printed!r} reads {reading} but is transcribed {value!r}")
            elif not is_number and legible:
                wrong.append(f"{where}: {printed!r} has no number under its decoration but is {value!r}")
    assert not wrong, wrong
    assert ways, "no decorated cell found: the specs' printed forms changed?"
    both = {name: w for name, w in ways.items() if {"legible number", "illegible number"} <= w}
    assert not both, f"decorations read both ways: {both}"
