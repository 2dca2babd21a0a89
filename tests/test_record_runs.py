"""An instance report's records held as runs write exactly what record-by-record writing does,
whatever the fields hold (a service named like the IP mark, quotes, percent signs, non-ASCII)."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import example, given
from hypothesis import strategies as st

from cli_devops.environment import Environment
from cli_devops.health import Thresholds, outliers
from cli_devops.model import Instance
from cli_devops.render import write_report
from cli_devops.render.csv_out import csv_cell
from cli_devops.render.report import INSTANCE_FIELDS
from cli_devops.render.runs import MARK, RecordRuns
from cli_devops.render.table import format_cell, plain_table
from cli_devops.reports import instance_record, instances_report

ips = st.ip_addresses().map(str)
fields = st.tuples(
    st.one_of(st.none(), st.sampled_from(["Api", MARK, f"{MARK}{MARK}", '%s"\\', "é"])),
    st.one_of(st.none(), st.sampled_from([10.0, 95.5])),
    st.one_of(st.none(), st.sampled_from([20.0, 99.0])),
    st.one_of(st.none(), st.sampled_from(["timed out after 5s", "deadline of 2s reached", "%"])),
)
runs = st.lists(st.tuples(st.lists(ips, min_size=1, max_size=5), fields), max_size=6)


def _fleet(drawn: list[tuple[list[str], tuple[object, ...]]]) -> list[Instance]:
    return [Instance(ip, *values) for addresses, values in drawn for ip in addresses]  # type: ignore[arg-type]


def _written(instances: list[Instance], output: str) -> str:
    env = Environment(stdout=io.StringIO(), stdout_isatty=False, width=100)
    write_report(instances_report(instances, Thresholds()), output, env)  # type: ignore[arg-type]
    return env.stdout.getvalue()  # type: ignore[attr-defined,no-any-return]


@given(runs)
@example([(["10.0.0.1", "10.0.0.2"], (MARK, None, None, "x"))])
@example([(["10.0.0.1", "::1"], (None, None, None, "deadline of 2s reached"))])
def test_json_of_runs_is_json_of_each_record(drawn):
    instances = _fleet(drawn)
    flagged = outliers(instances)
    records = [instance_record(i, Thresholds(), outlier=i.ip in flagged) for i in instances]
    expected = "[\n" + ",\n".join("  " + json.dumps(r) for r in records) + "\n]\n"
    assert _written(instances, "json") == (expected if records else "[]\n")


@given(runs)
@example([(["10.0.0.1", "10.0.0.2"], ('%s"\\', 10.0, 20.0, None))])
def test_csv_of_runs_is_csv_of_each_record(drawn):
    instances = _fleet(drawn)
    flagged = outliers(instances)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INSTANCE_FIELDS)
    for i in instances:
        record = instance_record(i, Thresholds(), outlier=i.ip in flagged)
        writer.writerow([csv_cell(record[field]) for field in INSTANCE_FIELDS])
    assert _written(instances, "csv") == out.getvalue()


@given(runs)
def test_runs_are_a_sequence_of_the_records(drawn):
    instances = _fleet(drawn)
    report = instances_report(instances, Thresholds())
    assert isinstance(report.records, RecordRuns)
    flagged = outliers(instances)
    records = [instance_record(i, Thresholds(), outlier=i.ip in flagged) for i in instances]
    assert list(report.records) == records
    assert len(report.records) == len(records)
    assert [report.records[i] for i in range(-len(records), len(records))] == records * 2


@given(runs, st.booleans())
@example([(["10.0.0.1", "10.0.0.22"], (None, None, None, None))], True)
@example([(["10.0.0.1", "1.2.3.4"], ("Api", 10.0, 20.0, None))], False)
def test_a_plain_table_of_runs_is_the_table_of_each_record(drawn, headers):
    instances = _fleet(drawn)
    report = instances_report(instances, Thresholds())
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), stdout_isatty=False)
    write_report(report, "table", env, headers=headers)
    rows = [[format_cell(r.get(c.key), c) for c in report.columns] for r in list(report.records)]
    expected = plain_table(report.columns, rows, headers=headers) if rows else ""
    assert env.stdout.getvalue() == expected  # type: ignore[attr-defined]
