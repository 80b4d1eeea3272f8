"""Test reports for machines: JUnit XML (CI systems read it) and JSON.

JUnit XML is written with the standard library's ElementTree: the format is a handful of
elements, not worth a dependency.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tether.evals.runner import CaseResult


def write_junit(results: Sequence[CaseResult], path: Path) -> None:
    suites = ET.Element("testsuites", name="tether prompt tests")
    by_prompt: dict[str, list[CaseResult]] = {}
    for result in results:
        by_prompt.setdefault(f"{result.prompt}@{result.version}", []).append(result)
    for name, cases in by_prompt.items():
        failures = sum(1 for c in cases if not c.passed)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(cases)),
            failures=str(failures),
            errors="0",
            time=f"{sum(c.latency_s for c in cases):.3f}",
        )
        for case in cases:
            element = ET.SubElement(
                suite, "testcase", classname=name, name=case.case, time=f"{case.latency_s:.3f}"
            )
            failed = [a for a in case.assertions if not a.outcome.passed]
            if failed:
                failure = ET.SubElement(
                    element, "failure", message=f"{len(failed)} assertion(s) failed"
                )
                failure.text = "\n".join(f"{a.label}: {a.outcome.detail}" for a in failed)
            ET.SubElement(element, "system-out").text = case.raw
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def write_json(results: Sequence[CaseResult], path: Path) -> None:
    payload = {
        "passed": all(r.passed for r in results),
        "cases": len(results),
        "failed": sum(1 for r in results if not r.passed),
        "results": [{**asdict(r), "passed": r.passed} for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
