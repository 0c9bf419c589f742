"""Shape of the code: lines, long files, long functions, module imports against the data flow.

Usage: python3 tools/code_stats.py [REPO]   (default: the repository this file is in)

Reads Rust sources under src/ and ldm/src/ as text (no build). Reports
- lines of Rust (code + comments, tests included) and files over 700 lines;
- the longest functions (brace-matched from `fn` to its closing brace);
- `crate::X` arrows between top-level modules of src/ that the layering (ALLOWED, below)
  does not allow, and import cycles between files of one module
  (`use super::x` / `crate::m::x` pairs that point both ways);
- `Result<_, String>` in library code and `eprintln!` outside the CLI.
"""
import re


def count_string_results(text):
    """`Result<T, String>` whose error type (the second top-level argument) is `String`."""
    n = 0
    for m in re.finditer(r"\bResult<", text):
        depth, args, cur = 1, [], ""
        for ch in text[m.end():m.end() + 400]:
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
                if depth == 0:
                    args.append(cur.strip())
                    break
            elif ch == "," and depth == 1:
                args.append(cur.strip())
                cur = ""
                continue
            cur += ch
        if len(args) == 2 and args[1] == "String":
            n += 1
    return n
import sys
from pathlib import Path

# Who may import whom. Shared leaves (plain data types, file formats, machine facts) may be
# used by anyone and use only each other. The stages, in data-flow order, may use the stages
# before them. `cohort` samples subjects from the pipeline's cohort section into the anatomy's
# requests; `pipeline` composes every stage's own config types into the language (one
# definition per parameter), so it sits above the stages; `lab` (model training and
# evaluation tools), `engine` and `cli` sit at the top. An arrow up is any other import.
SHARED = ["volume", "bounds", "sys", "rng", "io"]
STAGES = ["anatomy", "tissue", "generate", "acquire", "trial"]
ALLOWED = {m: set(SHARED) for m in SHARED}
for i, m in enumerate(STAGES):
    ALLOWED[m] = set(SHARED) | set(STAGES[:i])
ALLOWED["pipeline"] = set(SHARED) | set(STAGES)
ALLOWED["cohort"] = set(SHARED) | {"pipeline", "anatomy"}
TOP = {"lab", "engine", "cli", "main", "lib"}

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
files = sorted(list((root / "src").rglob("*.rs")) + list((root / "ldm" / "src").rglob("*.rs")))


def top_module(p: Path) -> str:
    rel = p.relative_to(root)
    parts = rel.parts
    if parts[0] == "ldm":
        return "ldm"
    name = parts[1]
    return name[:-3] if name.endswith(".rs") else name


total = 0
long_files = []
functions = []
arrows_up = []
string_results = 0
eprints = 0
edges = {}
fn_re = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)")
for f in files:
    text = f.read_text()
    lines = text.split("\n")
    total += len(lines)
    rel = str(f.relative_to(root))
    if len(lines) > 700:
        long_files.append((len(lines), rel))
    # Functions: from the `fn` line to the brace that closes its body.
    for i, line in enumerate(lines):
        m = fn_re.match(line)
        if not m:
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            for ch in lines[j]:
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
            if started and depth <= 0:
                break
            if not started and lines[j].rstrip().endswith(";"):
                break
            j += 1
        if started:
            functions.append((j - i + 1, f"{rel}:{i + 1} {m.group(6)}"))
    # Library code without tests and comments (doc links are not imports).
    lib_text = "\n".join(
        line.split("//")[0] for line in text.split("#[cfg(test)]")[0].split("\n")
    )
    if top_module(f) not in ("cli", "main") and f.name != "tests.rs":
        string_results += count_string_results(lib_text)
        eprints += lib_text.count("eprintln!")
    me = top_module(f)
    for used in set(re.findall(r"crate::(\w+)", lib_text)):
        if me == "ldm" or me in TOP or used == me:
            continue
        if used not in ALLOWED.get(me, set()):
            arrows_up.append(f"{rel} uses crate::{used}")
    # File-level edges inside one module, for cycles.
    stem = f.stem if f.stem != "mod" else f.parent.name
    uses = set(re.findall(r"super::(\w+)", lib_text))
    for first, second in re.findall(r"crate::(\w+)(?:::(\w+))?", lib_text):
        # `crate::x` names a file in ldm (one folder); in src a module, whose files are
        # the next segment when the module is this file's own.
        if me == "ldm":
            uses.add(first)
        elif first == me and second:
            uses.add(second)
    for used in uses - {stem}:
        edges.setdefault((str(f.parent.relative_to(root)), stem), set()).add(used)

cycles = set()
for (d, a), targets in edges.items():
    for b in targets:
        if a in edges.get((d, b), set()):
            cycles.add(f"{d}: {min(a, b)} <-> {max(a, b)}")

print(f"Rust lines: {total} in {len(files)} files")
print(f"files over 700 lines: {len(long_files)}")
for n, r in sorted(long_files, reverse=True):
    print(f"  {n:5d} {r}")
print("longest functions:")
for n, r in sorted(functions, reverse=True)[:8]:
    print(f"  {n:5d} {r}")
print(f"import arrows up the data flow: {len(set(arrows_up))}")
for a in sorted(set(arrows_up)):
    print(f"  {a}")
print(f"import cycles between files: {len(cycles)}")
for c in sorted(cycles):
    print(f"  {c}")
print(f"Result<_, String> in library code: {string_results}")
print(f"eprintln! outside the CLI: {eprints}")
