"""Host labels: the CPU model and the features that pick oneDNN's kernels."""

from __future__ import annotations

from pipeline import host

ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx avx2 fma

processor\t: 1
model name\t: another CPU
"""


def test_the_first_cpu_gives_the_name_family_model_and_vector_level():
    assert host.describe(ZEN3) == ("AMD EPYC", "family 25 model 1, avx2")
    zen4 = ZEN3.replace("model\t\t: 1", "model\t\t: 17").replace("avx2 fma", "avx2 avx512f avx512bw")
    assert host.label(*host.describe(zen4)) == "AMD EPYC (family 25 model 17, avx512)"
    assert host.describe("model name\t: Some CPU\n") == ("Some CPU", "")
    assert host.describe("") == ("unknown", "")


def test_same_host_compares_features_only_where_both_labels_have_them():
    zen3, zen4 = "AMD EPYC (family 25 model 1, avx2)", "AMD EPYC (family 25 model 17, avx512)"
    assert host.same_host(zen3, zen3) and not host.same_host(zen3, zen4)
    assert host.same_host("AMD EPYC", zen4)  # a record without features: the name decides
    assert not host.same_host("Intel(R) Xeon(R) Processor", zen3)
    assert not host.same_host("AMD EPYC", "AMD EPYC 7B13 (family 25 model 1, avx2)")  # another name
