"""Writes the passed tests of a JUnit XML report (pytest's, go-junit's) one a line, sorted; prints the counts.

usage: junit-passed.py REPORT.xml OUT.passed
"""
import sys
import xml.etree.ElementTree as ET

try:
    cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
except (OSError, ET.ParseError) as e:
    print(f"   no report ({e}): the suite did not run", file=sys.stderr)
    cases = []
passed, total = [], 0
for case in cases:
    total += 1
    if not any(child.tag in ("failure", "error", "skipped") for child in case):
        passed.append(f'{case.get("classname")}::{case.get("name")}')
with open(sys.argv[2], "w") as f:
    f.write("".join(p + "\n" for p in sorted(passed)))
print(f"   {len(passed)} passed of {total}")
