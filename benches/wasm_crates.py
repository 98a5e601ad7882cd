#!/usr/bin/env python3
"""Bytes of a WASM file by the crate they come from, from twiggy's CSV.

Run by `scripts/size --twiggy`: reads `twiggy top -f csv` on stdin and
prints two Markdown tables, the largest items and the largest crates, of
what the browser runs: custom sections (names, wasm-bindgen's metadata),
and wasm-bindgen's `__wbindgen_describe` functions, which wasm-bindgen and
wasm-opt strip, are left out. An item's crate is the
first path segment of its demangled name (`<tachys::view::X as T>::f`
counts for tachys); data segments, tables and unnamed items are grouped by
kind.
"""

import csv
import re
import sys

DISAMBIGUATOR = re.compile(r"\[[0-9a-f]{16}\]")
SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?=::)")


def crate_of(name):
    name = DISAMBIGUATOR.sub("", name)
    if name.startswith("data["):
        return "(data segments)"
    if name.startswith("code["):
        return "(unnamed code)"
    match = SEGMENT.search(name.lstrip("<&*( ").removeprefix("dyn ").removeprefix("mut "))
    if match:
        return match.group(0)
    if name.startswith(("elem[", "table[", "global[", "import", "export", "type[")) or "section" in name:
        return "(wasm structure)"
    return f"(other: {name[:40]})"


def main():
    rows = [
        row for row in csv.DictReader(sys.stdin)
        if not row["Name"].startswith(("custom section", '"'))
        and "__wbindgen_describe" not in row["Name"]
    ]
    total = sum(int(row["ShallowSize"]) for row in rows)
    by_crate = {}
    for row in rows:
        crate = crate_of(row["Name"])
        by_crate[crate] = by_crate.get(crate, 0) + int(row["ShallowSize"])
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(f"| Item | Bytes | Share of {total:,} |")
    print("|---|---|---|")
    for row in sorted(rows, key=lambda r: -int(r["ShallowSize"]))[:limit]:
        name = row["Name"].replace("|", "\\|")
        name = name if len(name) <= 110 else name[:107] + "..."
        print(f"| `{name}` | {int(row['ShallowSize']):,} | {int(row['ShallowSize']) / total:.1%} |")
    print()
    print(f"| Crate | Bytes | Share of {total:,} |")
    print("|---|---|---|")
    for crate, size in sorted(by_crate.items(), key=lambda kv: -kv[1])[:limit]:
        print(f"| `{crate}` | {size:,} | {size / total:.1%} |")


if __name__ == "__main__":
    main()
