"""The instances of a read with a deadline's unrequested ones held as IPs behave as the list of
every instance would, in every place that reads them."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from cli_devops.health import Thresholds, by_service, outliers, summarize_services
from cli_devops.model import Instance, InstanceList
from cli_devops.reports import instances_report

ips = st.ip_addresses().map(str)
read = st.builds(
    Instance,
    ip=ips,
    service=st.sampled_from([None, "Api", "Db"]),
    cpu=st.sampled_from([None, 10.0, 99.0]),
    memory=st.sampled_from([None, 20.0]),
    error=st.sampled_from([None, "timed out after 5s", "deadline of 2s reached"]),
)


@given(st.lists(read, max_size=8), st.lists(ips, max_size=8), st.sampled_from(["r", "x"]))
def test_an_instance_list_is_the_list_of_its_instances(requested, unrequested, reason):
    listed = InstanceList(requested, unrequested, reason)
    whole = requested + [Instance(ip, None, None, None, reason) for ip in unrequested]
    assert list(listed) == whole
    assert listed == whole
    assert len(listed) == len(whole)
    assert [listed[i] for i in range(-len(whole), len(whole))] == whole * 2
    assert listed[1:3] == whole[1:3]
    assert list(listed.unread()) == [i for i in whole if i.error is not None]
    assert listed.errors() == Counter(i.error for i in whole)
    assert by_service(listed) == by_service(whole)
    assert outliers(listed) == outliers(whole)
    thresholds = Thresholds()
    assert summarize_services(listed, thresholds) == summarize_services(whole, thresholds)
    assert list(instances_report(listed, thresholds).records) == list(
        instances_report(whole, thresholds).records
    )
